"""Encryption at rest as a service: data-key lifecycle, data subjects, crypto-shredding.

Key hierarchy: the master key (outside the database) wraps the *fields* data keys and the
*blind-index* key; the current fields key encrypts secrets stored in columns and wraps
each data subject's own key; a subject key encrypts that person's personal fields.
Rotating the fields key therefore re-encrypts secrets and re-wraps subject keys, and
erasing a person deletes one wrapped key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from amanat.kernel.clock import Clock
from amanat.kernel.errors import Conflict, DomainError, InvalidInput, NotFound
from amanat.kernel.ids import new_id
from amanat.kernel.masking import redact_text
from amanat.kernel.names import same_person_name
from amanat.kernel.pakistan import parse_cnic, parse_iban, parse_raast_id
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import SYSTEM, Actor
from amanat.platform.crypto.field_cipher import FieldContext, KeyUnavailable
from amanat.platform.db.ports import TransactionFactory
from amanat.platform.invalidation.ports import ChangeFeed, NoChangeFeed
from amanat.platform.protection.ports import (
    DATA_KEYS_CHANGED,
    DataKey,
    EncryptedColumn,
    FieldEncryptor,
    HolderLookup,
    ProtectionTx,
    SubjectRecord,
)

FIELDS = "fields"
BLIND_INDEX = "blind_index"
SUBJECT = "subject"

_NORMALIZE: dict[str, Callable[[str], str]] = {
    "iban": lambda v: parse_iban(v).value,
    "raast_id": lambda v: parse_raast_id(v).value,
    "cnic": lambda v: parse_cnic(v).value,
}

# How long a process may keep writing under the fields key it last read when it cannot
# hear of a rotation at once (SQLite, or PostgreSQL while its change feed is down). With a
# live feed (PostgreSQL LISTEN/NOTIFY) a rotation is heard when it commits. A key is
# retired only once its successor has been active for twice this long, so no process can
# still be writing under it.
ACTIVE_KEY_MAX_AGE = timedelta(seconds=10)

# The personal identifiers a partner may read back in clear, by name.
REVEALABLE_FIELDS = ("iban", "raast_id", "cnic")

# The platform's own columns encrypted under a *fields* key; each capability registers
# its own (registry.add_encrypted_columns), so rotation and key status cover them all.
PLATFORM_ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (
    EncryptedColumn("data_keys", "id", "wrapped_key"),
    EncryptedColumn("idempotency_keys", "id", "response_body"),
)


def _name_keys(
    cipher: FieldEncryptor,
    found: Iterable[Mapping[tuple[str, str], Sequence[SubjectRecord]]],
) -> Iterator[str]:
    """The data key of the first stored name that matching each holder will decrypt (the
    newest record; a name that differs makes the match read on, key by key)."""
    for by_pair in found:
        for records in by_pair.values():
            first = next(
                (r.name_enc for r in records if r.erased_at is None and r.name_enc is not None),
                None,
            )
            if first is None:
                continue
            try:
                yield cipher.key_id_of(first)
            except ValueError:
                continue  # its decryption says what is wrong with it


@dataclass(frozen=True, slots=True)
class SubjectDetails:
    """A data subject's personal fields in clear, for their owner only."""

    id: str
    partner_id: str
    name: str | None
    iban: str | None
    raast_id: str | None
    cnic: str | None
    bank_code: str | None
    iban_last4: str | None
    erased: bool


@dataclass(frozen=True, slots=True)
class KeyStatus:
    key: DataKey
    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class DataProtectionService:
    def __init__(
        self,
        transactions: TransactionFactory[ProtectionTx],
        clock: Clock,
        cipher: FieldEncryptor,
        columns: Sequence[EncryptedColumn] = PLATFORM_ENCRYPTED_COLUMNS,
        feed: ChangeFeed | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tx = transactions
        self._feed: ChangeFeed = feed or NoChangeFeed()
        self._monotonic = monotonic
        # The active fields key as last read: (id, feed epoch then, monotonic time then).
        self._active_fields: tuple[str, int, float] | None = None
        self._feed.subscribe(DATA_KEYS_CHANGED, self._on_key_changed)
        self._columns = tuple(dict.fromkeys(columns))
        self._clock = clock
        self.cipher = cipher
        # The blind-index key is never rotated (every stored index would stop matching), so
        # once found it is remembered instead of read in a transaction of its own per lookup.
        self._blind_index_key: str | None = None

    # -- data keys --------------------------------------------------------------------

    async def _active(self, tx: ProtectionTx, purpose: str) -> DataKey | None:
        for key in await tx.data_keys.keys(purpose):
            if key.status == "active":
                return key
        return None

    async def _create_key(self, tx: ProtectionTx, purpose: str) -> DataKey:
        key_id = new_id("data_key")
        wrapped = await self.cipher.new_wrapped_key(key_id)
        key = DataKey(
            id=key_id,
            purpose=purpose,
            wrapped_key=wrapped,
            master_key_id=self.cipher.master_key_id,
            status="active",
            created_at=self._clock.now(),
        )
        await tx.data_keys.add_key(key)
        return key

    async def ensure_keys(self, actor: Actor) -> None:
        async with self._tx.write() as tx:
            for purpose in (FIELDS, BLIND_INDEX):
                if await self._active(tx, purpose) is None:
                    key = await self._create_key(tx, purpose)
                    await audit.record(
                        tx,
                        self._clock,
                        actor,
                        "data_key.created",
                        target_type="data_key",
                        target_id=key.id,
                        payload={"purpose": purpose},
                    )

    async def _active_id(self, purpose: str) -> str:
        async with self._tx.read() as tx:
            key = await self._active(tx, purpose)
        if key is None:
            # First use on a fresh database: make the keys (under the write lock).
            await self.ensure_keys(SYSTEM)
            async with self._tx.read() as tx:
                key = await self._active(tx, purpose)
        if key is None:
            raise Conflict(f"No active {purpose} data key could be created.")
        return key.id

    async def active_fields_key(self) -> str:
        """The key new secrets are sealed under; read from the database only when the
        one in memory may be stale (see :data:`ACTIVE_KEY_MAX_AGE`)."""
        cached = self._cached_fields_key()
        if cached is not None:
            return cached
        self._feed.start()
        epoch = self._feed.epoch(DATA_KEYS_CHANGED)
        key_id = await self._active_id(FIELDS)
        self._active_fields = (key_id, epoch, self._monotonic())
        return key_id

    def _on_key_changed(self, key_id: str) -> None:
        if key_id:
            # Retired or shredded in another process: unwrap it afresh if still allowed.
            self.cipher.forget(key_id)

    def _cached_fields_key(self) -> str | None:
        if self._active_fields is None:
            return None
        key_id, epoch, read_at = self._active_fields
        if self._feed.live:
            # Nothing about data keys was announced since it was read, and the feed has
            # not reconnected (which changes the epoch too).
            return key_id if self._feed.epoch(DATA_KEYS_CHANGED) == epoch else None
        if self._monotonic() - read_at < ACTIVE_KEY_MAX_AGE.total_seconds():
            return key_id
        return None

    async def blind_index_key(self) -> str:
        if self._blind_index_key is None:
            self._blind_index_key = await self._active_id(BLIND_INDEX)
        return self._blind_index_key

    async def blind_index_of(self, kind: str, value: str) -> str:
        """The blind index of an identifier (``iban``, ``raast_id``, ``cnic``), normalised
        first, so one account is found however it was written."""
        return await self.cipher.blind_index(
            await self.blind_index_key(), kind, _NORMALIZE[kind](value)
        )

    async def rotate_data_key(self, actor: Actor) -> tuple[DataKey, list[str]]:
        self._active_fields = None
        async with self._tx.write() as tx:
            previous = [k for k in await tx.data_keys.keys(FIELDS) if k.status == "active"]
            for key in previous:
                await tx.data_keys.set_status(key.id, "decrypt_only", None)
            new_key = await self._create_key(tx, FIELDS)
            await audit.record(
                tx,
                self._clock,
                actor,
                "data_key.rotated",
                target_type="data_key",
                target_id=new_key.id,
                payload={"previous": [k.id for k in previous]},
            )
        self._active_fields = None
        return new_key, [k.id for k in previous]

    async def reencrypt(
        self, actor: Actor, *, batch_size: int = 500, max_batches: int | None = None
    ) -> dict[str, int]:
        """Move every ciphertext under a decrypt-only key to the active key.

        Each batch is its own transaction and each row is swapped only if unchanged
        (compare-and-set), so the job can stop anywhere and resume, alongside live traffic.
        """
        active = await self.active_fields_key()
        async with self._tx.read() as tx:
            old_keys = [k.id for k in await tx.data_keys.keys(FIELDS) if k.status == "decrypt_only"]
        moved: dict[str, int] = {}
        batches = 0
        for old in old_keys:
            for column in self._columns:
                while max_batches is None or batches < max_batches:
                    async with self._tx.write() as tx:
                        rows = await tx.data_keys.rows_with_key(column, old, batch_size)
                        for row_id, value in rows:
                            context = FieldContext(column.table, column.column, row_id)
                            plain = await self.cipher.decrypt(value, context=context)
                            fresh = await self.cipher.encrypt(plain, context=context, key_id=active)
                            if await tx.data_keys.replace_value(column, row_id, value, fresh):
                                name = f"{column.table}.{column.column}"
                                moved[name] = moved.get(name, 0) + 1
                    batches += 1
                    if len(rows) < batch_size:
                        break
        if moved:
            async with self._tx.write() as tx:
                await audit.record(
                    tx,
                    self._clock,
                    actor,
                    "data_key.reencrypted",
                    target_type="data_key",
                    target_id=active,
                    payload={"moved": moved, "from": old_keys},
                )
        return moved

    async def retire_unused(self, actor: Actor) -> list[str]:
        retired: list[str] = []
        async with self._tx.write() as tx:
            keys = await tx.data_keys.keys(FIELDS)
            newest = max((k.created_at for k in keys if k.status == "active"), default=None)
            if newest is None or self._clock.now() - newest < 2 * ACTIVE_KEY_MAX_AGE:
                # Another process may still be sealing under the previous key.
                return []
            for key in keys:
                if key.status != "decrypt_only":
                    continue
                in_use = 0
                for column in self._columns:
                    in_use += await tx.data_keys.count_rows(column, key.id)
                if in_use == 0:
                    await tx.data_keys.set_status(key.id, "retired", self._clock.now())
                    self.cipher.forget(key.id)
                    retired.append(key.id)
            if retired:
                await audit.record(
                    tx,
                    self._clock,
                    actor,
                    "data_key.retired",
                    target_type="data_key",
                    target_id=retired[0],
                    payload={"keys": retired},
                )
        return retired

    async def status(self) -> tuple[list[KeyStatus], dict[str, int]]:
        """Fields and blind-index keys with row counts; subject keys counted by status."""
        result: list[KeyStatus] = []
        subjects: dict[str, int] = {}
        async with self._tx.read() as tx:
            for key in await tx.data_keys.keys():
                if key.purpose == SUBJECT:
                    subjects[key.status] = subjects.get(key.status, 0) + 1
                    continue
                rows: dict[str, int] = {}
                if key.purpose == FIELDS:
                    for column in self._columns:
                        count = await tx.data_keys.count_rows(column, key.id)
                        if count:
                            rows[f"{column.table}.{column.column}"] = count
                result.append(KeyStatus(key=key, rows=rows))
        return result, subjects

    # -- secrets under the fields key ---------------------------------------------------

    async def seal(self, value: str, *, table: str, column: str, row_id: str) -> str:
        return await self.cipher.encrypt(
            value,
            context=FieldContext(table, column, row_id),
            key_id=await self.active_fields_key(),
        )

    async def seal_within(
        self, tx: ProtectionTx, value: str, *, table: str, column: str, row_id: str
    ) -> str:
        """:meth:`seal` inside a transaction the caller holds: the active key is read (or,
        on a fresh database, created) in that transaction, never in a second one that would
        wait for the first's write lock."""
        cached = self._cached_fields_key()
        if cached is not None:
            return await self.cipher.encrypt(
                value, context=FieldContext(table, column, row_id), key_id=cached
            )
        key = await self._active(tx, FIELDS)
        if key is None:
            key = await self._create_key(tx, FIELDS)
            await audit.record(
                tx,
                self._clock,
                SYSTEM,
                "data_key.created",
                target_type="data_key",
                target_id=key.id,
                payload={"purpose": FIELDS},
            )
        return await self.cipher.encrypt(
            value, context=FieldContext(table, column, row_id), key_id=key.id
        )

    async def unseal(self, value: str, *, table: str, column: str, row_id: str) -> str:
        return await self.cipher.decrypt(value, context=FieldContext(table, column, row_id))

    # -- data subjects ------------------------------------------------------------------

    async def create_subject(
        self,
        actor: Actor,
        partner_id: str,
        *,
        name: str | None = None,
        iban: str | None = None,
        raast_id: str | None = None,
        cnic: str | None = None,
        subject_id: str | None = None,
    ) -> SubjectRecord:
        """``subject_id``: the record's id when the caller drew it first (a payout batch
        answers its requests before it writes them, payments/service.py)."""
        iban_value = parse_iban(iban) if iban else None
        raast_value = parse_raast_id(raast_id) if raast_id else None
        cnic_value = parse_cnic(cnic) if cnic else None
        subject_id = subject_id or new_id("data_subject")
        key_id = new_id("data_key")
        fields_key = await self.active_fields_key()
        bidx_key = await self.blind_index_key()
        wrapped = await self.cipher.new_subject_key(key_id, fields_key)

        async def enc(column: str, value: str | None) -> str | None:
            if value is None:
                return None
            return await self.cipher.encrypt(
                value, context=FieldContext("data_subjects", column, subject_id), key_id=key_id
            )

        async def bidx(kind: str, value: str | None) -> str | None:
            return await self.cipher.blind_index(bidx_key, kind, value) if value else None

        record = SubjectRecord(
            id=subject_id,
            partner_id=partner_id,
            key_id=key_id,
            name_enc=await enc("name_enc", name.strip() if name else None),
            iban_enc=await enc("iban_enc", iban_value.value if iban_value else None),
            raast_id_enc=await enc("raast_id_enc", raast_value.value if raast_value else None),
            cnic_enc=await enc("cnic_enc", cnic_value.value if cnic_value else None),
            iban_bidx=await bidx("iban", iban_value.value if iban_value else None),
            raast_id_bidx=await bidx("raast_id", raast_value.value if raast_value else None),
            cnic_bidx=await bidx("cnic", cnic_value.value if cnic_value else None),
            bank_code=iban_value.bank_code if iban_value else None,
            iban_last4=iban_value.last4 if iban_value else None,
            created_at=self._clock.now(),
            erased_at=None,
        )
        async with self._tx.write() as tx:
            await tx.data_keys.add_key(
                DataKey(
                    id=key_id,
                    purpose=SUBJECT,
                    wrapped_key=wrapped,
                    master_key_id=self.cipher.master_key_id,
                    status="active",
                    created_at=record.created_at,
                )
            )
            await tx.subjects.add(record)
            await audit.record(
                tx,
                self._clock,
                actor,
                "data_subject.created",
                target_type="data_subject",
                target_id=subject_id,
                payload={
                    "partner_id": partner_id,
                    "fields": [
                        f
                        for f, v in (
                            ("name", name),
                            ("iban", iban),
                            ("raast_id", raast_id),
                            ("cnic", cnic),
                        )
                        if v
                    ],
                },
            )
        return record

    async def subject(self, subject_id: str) -> SubjectRecord | None:
        """The stored record (ciphertexts, blind indexes, masks), as it is now."""
        async with self._tx.read() as tx:
            return await tx.subjects.get(subject_id)

    async def reveal(self, subject_id: str, *, partner_id: str | None) -> SubjectDetails:
        async with self._tx.read() as tx:
            record = await tx.subjects.get(subject_id)
        if record is None or (partner_id is not None and record.partner_id != partner_id):
            raise NotFound(f"No data subject '{subject_id[:40]}'.")
        return await self._details(record)

    async def reveal_audited(
        self, actor: Actor, subject_id: str, *, partner_id: str, fields: tuple[str, ...]
    ) -> SubjectDetails:
        """A partner reads some of its customer's identifiers in clear: one audit record.

        The record (who, which customer, which fields; the actor carries source IP and
        request id, never a value) commits before anything is decrypted, so no clear value
        is ever handed out unrecorded. Fields not asked for come back ``None``.
        """
        unknown = [f for f in fields if f not in REVEALABLE_FIELDS]
        if unknown or not fields:
            raise InvalidInput(
                f"Reveal some of {', '.join(REVEALABLE_FIELDS)}.", code="validation_error"
            )
        async with self._tx.write() as tx:
            record = await tx.subjects.get(subject_id)
            if record is None or record.partner_id != partner_id:
                raise NotFound(f"No data subject '{subject_id[:40]}'.")
            await audit.record(
                tx,
                self._clock,
                actor,
                "data_subject.revealed",
                target_type="data_subject",
                target_id=subject_id,
                payload={"partner_id": partner_id, "fields": sorted(set(fields))},
            )
        details = await self._details(record)
        return SubjectDetails(
            id=details.id,
            partner_id=details.partner_id,
            name=details.name,
            iban=details.iban if "iban" in fields else None,
            raast_id=details.raast_id if "raast_id" in fields else None,
            cnic=details.cnic if "cnic" in fields else None,
            bank_code=details.bank_code,
            iban_last4=details.iban_last4,
            erased=details.erased,
        )

    async def reveal_for_operator(
        self, actor: Actor, subject_id: str, *, fields: tuple[str, ...], reason: str, context: str
    ) -> SubjectDetails:
        """An operator reads some of a person's identifiers in clear, with a reason.

        Like :meth:`reveal_audited`, the audit record (operator, person, fields, reason,
        and ``context``: the transaction the operator was looking at) commits before
        anything is decrypted. The reason is required: "why did you look" is the first
        question a reviewer asks.
        """
        unknown = [f for f in fields if f not in REVEALABLE_FIELDS]
        if unknown or not fields:
            raise InvalidInput(
                f"Reveal some of {', '.join(REVEALABLE_FIELDS)}.", code="validation_error"
            )
        reason = reason.strip()
        if not 10 <= len(reason) <= 500:
            raise InvalidInput(
                "Say why you need to see it (10 to 500 characters): a ticket or case "
                "reference and the question you are answering.",
                code="validation_error",
            )
        async with self._tx.write() as tx:
            record = await tx.subjects.get(subject_id)
            if record is None:
                raise NotFound(f"No data subject '{subject_id[:40]}'.")
            await audit.record(
                tx,
                self._clock,
                actor,
                "data_subject.revealed",
                target_type="data_subject",
                target_id=subject_id,
                payload={
                    "partner_id": record.partner_id,
                    "fields": sorted(set(fields)),
                    # Free text an operator typed: any identifier in it is masked too.
                    "reason": redact_text(reason),
                    "context": context[:80],
                },
            )
        details = await self._details(record)
        return SubjectDetails(
            id=details.id,
            partner_id=details.partner_id,
            name=details.name,
            iban=details.iban if "iban" in fields else None,
            raast_id=details.raast_id if "raast_id" in fields else None,
            cnic=details.cnic if "cnic" in fields else None,
            bank_code=details.bank_code,
            iban_last4=details.iban_last4,
            erased=details.erased,
        )

    async def find_holder(
        self, field: str, value: str, name: str | None, *, partner_id: str
    ) -> SubjectRecord | None:
        """The partner's customer holding this IBAN or Raast ID under this name, if any.

        An identifier alone does not identify a person (a joint account, a mistyped
        number, a recycled mobile number), so a record is only reused when the names match
        too (:func:`amanat.kernel.names.same_person_name`); otherwise the caller makes a new
        customer rather than attach the payment to someone else's record.
        """
        lookup = HolderLookup(partner_id, field, value, name)
        found = (await self.find_holders([lookup]))[lookup]
        if isinstance(found, DomainError):
            raise found
        return found

    async def find_holders(
        self, lookups: Sequence[HolderLookup]
    ) -> dict[HolderLookup, SubjectRecord | DomainError | None]:
        """:meth:`find_holder` for many lookups, in one read of each kind of identifier
        (a batch of payouts to many merchants' customers reads once, not once each). A
        lookup whose identifier is malformed gets its error in its place."""
        outcome: dict[HolderLookup, SubjectRecord | DomainError | None] = {}
        wanted: dict[str, dict[HolderLookup, tuple[str, str]]] = {}
        if not lookups:
            return outcome
        bidx_key = await self.blind_index_key()
        for lookup in lookups:
            try:
                normalized = _NORMALIZE[lookup.field](lookup.value)
            except DomainError as exc:
                outcome[lookup] = exc
                continue
            bidx = await self.cipher.blind_index(bidx_key, lookup.field, normalized)
            wanted.setdefault(lookup.field, {})[lookup] = (lookup.partner_id, bidx)
        found: dict[str, dict[tuple[str, str], list[SubjectRecord]]] = {}
        if wanted:
            async with self._tx.read() as tx:
                for field, pairs in wanted.items():
                    found[field] = await tx.subjects.find_many(field, list(set(pairs.values())))
        # Names are decrypted once the read is over, their data keys not in memory yet
        # read in one statement first.
        await self.cipher.preload(_name_keys(self.cipher, found.values()))
        for field, pairs in wanted.items():
            for lookup, pair in pairs.items():
                outcome[lookup] = await self._same_person(found[field][pair], lookup.name)
        return outcome

    async def _same_person(
        self, records: Sequence[SubjectRecord], name: str | None
    ) -> SubjectRecord | None:
        for record in records:
            if record.erased_at is not None:
                continue
            # Only the name is decrypted: this runs on every payout.
            stored: str | None = None
            if record.name_enc is not None:
                context = FieldContext("data_subjects", "name_enc", record.id)
                try:
                    stored = await self.cipher.decrypt(record.name_enc, context=context)
                except KeyUnavailable:
                    continue  # a shredded key: that person can never be matched again
            if same_person_name(stored, name):
                return record
        return None

    async def _details(self, record: SubjectRecord) -> SubjectDetails:
        async def dec(column: str, value: str | None) -> str | None:
            if value is None or record.erased_at is not None:
                return None
            try:
                return await self.cipher.decrypt(
                    value, context=FieldContext("data_subjects", column, record.id)
                )
            except KeyUnavailable:
                return None

        return SubjectDetails(
            id=record.id,
            partner_id=record.partner_id,
            name=await dec("name_enc", record.name_enc),
            iban=await dec("iban_enc", record.iban_enc),
            raast_id=await dec("raast_id_enc", record.raast_id_enc),
            cnic=await dec("cnic_enc", record.cnic_enc),
            bank_code=record.bank_code,
            iban_last4=record.iban_last4,
            erased=record.erased_at is not None,
        )

    async def search_audited(
        self, actor: Actor, field: str, value: str, *, partner_id: str
    ) -> list[SubjectRecord]:
        """A partner finds its customers by an identifier: one audit record per search.

        A search answers whether a guessed IBAN, Raast ID or CNIC belongs to a customer,
        so each leaves a trace (who, which field, how many matched; the actor carries
        source IP and request id), never the value searched.
        """
        found = await self.find(field, value, partner_id=partner_id)
        async with self._tx.write() as tx:
            await audit.record(
                tx,
                self._clock,
                actor,
                "data_subject.searched",
                target_type="data_subject",
                payload={"partner_id": partner_id, "field": field, "matches": len(found)},
            )
        return found

    async def find(self, field: str, value: str, *, partner_id: str | None) -> list[SubjectRecord]:
        normalized = _NORMALIZE[field](value)
        bidx = await self.cipher.blind_index(await self.blind_index_key(), field, normalized)
        async with self._tx.read() as tx:
            return await tx.subjects.find(partner_id, field, bidx)

    async def erase_subject(self, actor: Actor, subject_id: str, *, reason: str) -> None:
        now = self._clock.now()
        async with self._tx.write() as tx:
            record = await tx.subjects.get(subject_id)
            if record is None:
                raise NotFound(f"No data subject '{subject_id[:40]}'.")
            if record.erased_at is not None:
                raise Conflict("This data subject is already erased.")
            await tx.data_keys.shred(record.key_id, now)
            await tx.subjects.mark_erased(subject_id, now)
            await audit.record(
                tx,
                self._clock,
                actor,
                "data_subject.erased",
                target_type="data_subject",
                target_id=subject_id,
                payload={"reason": reason[:200], "key_id": record.key_id},
            )
        self.cipher.forget(record.key_id)
