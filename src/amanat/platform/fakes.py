"""In-memory stand-ins for the platform's ports: a unit of work, the audit trail, the
outbox, job leases, data keys, data subjects and a field encryptor.

Why this exists: a service's rules (what it checks, what it changes together, what it
refuses and leaves untouched) do not depend on SQL, so they are tested against these fakes
in milliseconds (tests/unit/<capability>/). The database-backed tests stay the proof that
the SQL stores keep the same promises (tests/integration, tests/api); a fake that drifts
from its store is caught there, and every fake is checked against its Protocol by mypy.

The model, kept deliberately small:

- A :class:`FakeDatabase` holds named stores (the tables), each an :class:`InMemoryStore`
  whose state lives in its instance attributes.
- :class:`FakeTransactions` opens transactions over it like ``SqlTransactions``:
  ``write/read/snapshot`` run the domain events published in them (handlers subscribed
  with :meth:`FakeTransactions.subscribe` run in the same transaction, before "commit")
  and then append the queued audit records; ``lookup`` refuses both; inside
  :meth:`FakeTransactions.atomic` every nested call joins the one transaction.
- Rollback: the outermost transaction deep-copies every store's state when it begins and
  puts the copy back if its block (or a handler) raises, so a use case that fails midway
  leaves the stores as they were.
- One writer at a time: a ``write()`` opened while another transaction is open (outside
  ``atomic``) raises, as it would wait on SQLite's lock. Reads may nest; they are not
  rolled back on their own (they should not write).

Each capability's fakes (``amanat.<capability>.fakes``) add its stores and a transaction
class whose typed properties name them, so mypy checks it against the capability's
``...Tx`` protocol.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import count
from typing import Any, ClassVar, Generic, TypeVar

from amanat.kernel.pagination import Page
from amanat.platform.audit.domain import (
    GENESIS_HASH,
    Actor,
    AuditRecord,
    Seal,
    StoredRecord,
    canonical_json,
)
from amanat.platform.audit.ports import AuditRepository
from amanat.platform.crypto.field_cipher import FieldContext, KeyUnavailable
from amanat.platform.jobs.ports import JobsTx, LeaseRepository, OutboxJob, OutboxRepository
from amanat.platform.protection.ports import (
    PER_IDENTIFIER,
    DataKey,
    DataKeyRepository,
    EncryptedColumn,
    FieldEncryptor,
    ProtectionTx,
    SubjectRecord,
    SubjectRepository,
)

MAX_EVENT_ROUNDS = 16


# -- stores and the database ------------------------------------------------------------


class InMemoryStore:
    """A fake store: its state is its instance attributes, copied when a transaction
    begins and restored if it fails. Attributes named in ``_links`` refer to other stores
    (which roll back on their own) and are not copied."""

    _links: ClassVar[tuple[str, ...]] = ()

    def checkpoint(self) -> dict[str, Any]:
        return {
            name: copy.deepcopy(value)
            for name, value in self.__dict__.items()
            if name not in self._links
        }

    def restore(self, state: dict[str, Any]) -> None:
        for name in [n for n in self.__dict__ if n not in self._links]:
            del self.__dict__[name]
        self.__dict__.update(state)


S = TypeVar("S", bound=InMemoryStore)


class FakeDatabase:
    """The stores by name; every transaction of :class:`FakeTransactions` sees them all."""

    def __init__(self, **stores: InMemoryStore) -> None:
        self.audit_log = InMemoryAuditLog()
        self.outbox = InMemoryOutbox()
        self.leases = InMemoryLeases()
        self.stores: dict[str, InMemoryStore] = {
            "audit": self.audit_log,
            "outbox": self.outbox,
            "leases": self.leases,
            **stores,
        }

    def add(self, name: str, store: S) -> S:
        if name in self.stores:
            raise ValueError(f"a store named {name!r} exists")
        self.stores[name] = store
        return store

    def store(self, name: str, kind: type[S]) -> S:
        found = self.stores.get(name)
        if not isinstance(found, kind):
            raise LookupError(f"no {kind.__name__} named {name!r} in this fake database")
        return found

    def checkpoint(self) -> dict[str, dict[str, Any]]:
        return {name: store.checkpoint() for name, store in self.stores.items()}

    def restore(self, state: dict[str, dict[str, Any]]) -> None:
        for name, saved in state.items():
            self.stores[name].restore(saved)

    @contextmanager
    def unchanged(self) -> Iterator[None]:
        """Assert that the block changes no store (for "refused, nothing changed")."""
        before = self.checkpoint()
        try:
            yield
        finally:
            after = self.checkpoint()
            changed = sorted(name for name in before if before[name] != after[name])
            if changed:
                raise AssertionError(f"stores changed: {', '.join(changed)}")


# -- transactions ---------------------------------------------------------------------


class FakeTransaction:
    """What every fake transaction offers: the audit trail and :meth:`publish`. A
    capability's subclass adds typed properties for its stores."""

    def __init__(self, database: FakeDatabase) -> None:
        self.database = database
        self._audit = FakeAuditRepository(database.audit_log)
        self._published: list[object] = []

    @property
    def audit(self) -> FakeAuditRepository:
        return self._audit

    @property
    def outbox(self) -> InMemoryOutbox:
        return self.database.outbox

    @property
    def leases(self) -> InMemoryLeases:
        return self.database.leases

    def publish(self, event: object) -> None:
        self._published.append(event)

    def _take_published(self) -> list[object]:
        events, self._published = self._published, []
        return events


TxT = TypeVar("TxT", bound=FakeTransaction)


class FakeTransactions(Generic[TxT]):
    """A unit of work over a :class:`FakeDatabase` (``write/read/lookup/snapshot`` and
    ``atomic``), with ``SqlTransactions``' semantics; see the module docstring."""

    def __init__(self, database: FakeDatabase, make_tx: Callable[[FakeDatabase], TxT]) -> None:
        self.database = database
        self._make_tx = make_tx
        self._handlers: dict[type, list[Callable[[Any, TxT], Awaitable[None]]]] = {}
        self._ambient: ContextVar[TxT | None] = ContextVar(f"fake_tx_{id(self)}", default=None)
        self._open = 0
        self.commits = 0
        self.rollbacks = 0

    def subscribe(self, event: type, handler: Callable[[Any, TxT], Awaitable[None]]) -> None:
        self._handlers.setdefault(event, []).append(handler)

    def write(self) -> AbstractAsyncContextManager[TxT]:
        return self._joined_or(writes=True, transaction=True)

    def read(self) -> AbstractAsyncContextManager[TxT]:
        return self._joined_or(writes=False, transaction=True)

    def snapshot(self) -> AbstractAsyncContextManager[TxT]:
        return self._joined_or(writes=False, transaction=True)

    def lookup(self) -> AbstractAsyncContextManager[TxT]:
        return self._joined_or(writes=False, transaction=False)

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[TxT]:
        """One write transaction that nested ``write()``/``read()`` calls join."""
        if self._ambient.get() is not None:
            raise RuntimeError("atomic() does not nest")
        async with self._joined_or(writes=True, transaction=True) as tx:
            token = self._ambient.set(tx)
            try:
                yield tx
            finally:
                self._ambient.reset(token)

    @asynccontextmanager
    async def _joined_or(self, *, writes: bool, transaction: bool) -> AsyncIterator[TxT]:
        ambient = self._ambient.get()
        if ambient is not None:
            yield ambient
            return
        if writes and self._open:
            raise RuntimeError(
                "a write transaction was opened while another transaction is open: "
                "on a database it would wait for the first (SQLite: forever)"
            )
        outermost = self._open == 0
        saved = self.database.checkpoint() if outermost else None
        tx = self._make_tx(self.database)
        self._open += 1
        try:
            yield tx
            if transaction:
                await self._handle_published(tx)
                await tx.audit.flush()
            elif tx._published or tx.audit.pending:
                raise RuntimeError("domain events and audit records need a transaction")
        except BaseException:
            if saved is not None:
                self.database.restore(saved)
                self.rollbacks += 1
            raise
        finally:
            self._open -= 1
        if outermost:
            self.commits += 1

    async def _handle_published(self, tx: TxT) -> None:
        for _ in range(MAX_EVENT_ROUNDS):
            events = tx._take_published()
            if not events:
                return
            for event in events:
                for handler in self._handlers.get(type(event), ()):
                    await handler(event, tx)
        raise RuntimeError("domain events kept publishing more events: a handler loop")


def collect_events(transactions: FakeTransactions[Any], *types: type) -> list[Any]:
    """Subscribe a recorder to ``types``; returns the list it fills, in commit order."""
    seen: list[Any] = []

    async def record(event: Any, tx: Any) -> None:
        seen.append(event)

    for kind in types:
        transactions.subscribe(kind, record)
    return seen


# -- the audit trail -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stored:
    record: AuditRecord
    hash: str


class InMemoryAuditLog(InMemoryStore):
    """The hash-chained log itself (records and seals)."""

    def __init__(self) -> None:
        self.records: list[_Stored] = []
        self.seals: list[Seal] = []

    @property
    def actions(self) -> list[str]:
        return [s.record.action for s in self.records]

    def head(self) -> tuple[int, str]:
        if not self.records:
            return 0, GENESIS_HASH
        last = self.records[-1]
        return last.record.seq, last.hash


class FakeAuditRepository:
    """One transaction's view of the audit log: records queued by ``append_at_commit``
    are appended by :meth:`flush`, which the unit of work calls before commit."""

    def __init__(self, log: InMemoryAuditLog) -> None:
        self._log = log
        self._queued: list[dict[str, Any]] = []

    @property
    def pending(self) -> int:
        return len(self._queued)

    async def any_pending(self) -> bool:
        return False  # records are chained as they are flushed: no inbox in memory

    async def chain_pending(self, limit: int) -> int:
        return 0

    async def append(
        self,
        *,
        record_id: str,
        occurred_at: datetime,
        actor: Actor,
        action: str,
        target_type: str | None,
        target_id: str | None,
        payload: dict[str, Any],
    ) -> AuditRecord:
        seq, prev_hash = self._log.head()
        record = AuditRecord(
            seq=seq + 1,
            id=record_id,
            occurred_at=occurred_at,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            payload=json.loads(canonical_json(payload)),
            prev_hash=prev_hash,
        )
        self._log.records.append(_Stored(record, record.compute_hash()))
        return record

    async def append_at_commit(
        self,
        *,
        record_id: str,
        occurred_at: datetime,
        actor: Actor,
        action: str,
        target_type: str | None,
        target_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        self._queued.append(
            {
                "record_id": record_id,
                "occurred_at": occurred_at,
                "actor": actor,
                "action": action,
                "target_type": target_type,
                "target_id": target_id,
                "payload": payload,
            }
        )

    async def flush(self) -> None:
        queued, self._queued = self._queued, []
        for entry in queued:
            await self.append(**entry)

    async def list_records(
        self, limit: int, before_seq: int | None, action: str | None, target_id: str | None
    ) -> Page[AuditRecord]:
        found = [
            s.record
            for s in reversed(self._log.records)
            if (before_seq is None or s.record.seq < before_seq)
            and (not action or s.record.action == action)
            and (not target_id or s.record.target_id == target_id)
        ]
        return Page(items=found[:limit], has_more=len(found) > limit)

    async def stored_records(self, after_seq: int, limit: int) -> list[StoredRecord]:
        return [
            StoredRecord(s.record, s.hash) for s in self._log.records if s.record.seq > after_seq
        ][:limit]

    async def head(self, *, lock: bool = False) -> tuple[int, str]:
        return self._log.head()

    async def add_seal(self, seal: Seal) -> None:
        self._log.seals.append(seal)

    async def seals(self, after_seq: int = 0, up_to: int | None = None) -> list[Seal]:
        return [
            s for s in self._log.seals if s.seq > after_seq and (up_to is None or s.seq <= up_to)
        ]

    async def latest_seal(self) -> Seal | None:
        return max(self._log.seals, key=lambda s: s.seq, default=None)


# -- jobs: the outbox and leases ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FakeJob:
    """An outbox row."""

    id: int
    kind: str
    subject_id: str
    payload: dict[str, Any]
    run_at: datetime
    status: str = "pending"  # pending | done | dead
    attempts: int = 0
    locked_until: datetime | None = None
    locked_by: str | None = None
    last_error: str | None = None


class InMemoryOutbox(InMemoryStore):
    def __init__(self) -> None:
        self.jobs: dict[int, FakeJob] = {}
        self._ids = count(1)

    def checkpoint(self) -> dict[str, Any]:
        # itertools.count cannot be deep-copied; ids only ever grow, like a sequence.
        return {"jobs": dict(self.jobs)}

    def restore(self, state: dict[str, Any]) -> None:
        self.jobs = dict(state["jobs"])

    def pending(self, kind: str | None = None, subject_id: str | None = None) -> list[FakeJob]:
        """Pending jobs (for assertions), oldest first."""
        return sorted(
            (
                j
                for j in self.jobs.values()
                if j.status == "pending"
                and (kind is None or j.kind == kind)
                and (subject_id is None or j.subject_id == subject_id)
            ),
            key=lambda j: (j.run_at, j.id),
        )

    async def enqueue(
        self, kind: str, subject_id: str, payload: dict[str, Any], run_at: datetime
    ) -> None:
        job_id = next(self._ids)
        self.jobs[job_id] = FakeJob(job_id, kind, subject_id, dict(payload), run_at)

    async def claim(
        self, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[OutboxJob]:
        due = [
            j
            for j in self.pending()
            if j.run_at <= now and (j.locked_until is None or j.locked_until < now)
        ][:limit]
        claimed: list[OutboxJob] = []
        for job in due:
            taken = replace(
                job, locked_until=lease_until, locked_by=owner, attempts=job.attempts + 1
            )
            self.jobs[job.id] = taken
            claimed.append(
                OutboxJob(
                    taken.id, taken.kind, taken.subject_id, dict(taken.payload), taken.attempts
                )
            )
        return claimed

    async def finish(self, job_id: int, owner: str, now: datetime) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.locked_by == owner:
            self.jobs[job_id] = replace(job, status="done", locked_until=None)

    async def retry(
        self,
        job_id: int,
        owner: str,
        run_at: datetime,
        error: str,
        now: datetime,
        *,
        dead: bool = False,
    ) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.locked_by == owner and job.status == "pending":
            self.jobs[job_id] = replace(
                job,
                status="dead" if dead else "pending",
                run_at=run_at,
                locked_until=None,
                last_error=error[:500],
            )

    async def pending_count(self, kind: str | None = None) -> int:
        return len(self.pending(kind))


class InMemoryLeases(InMemoryStore):
    def __init__(self) -> None:
        self.leases: dict[str, tuple[str, datetime, str | None]] = {}

    async def acquire(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        held = self.leases.get(name)
        if held is not None and held[1] > now:
            return False
        self.leases[name] = (owner, until, held[2] if held else None)
        return True

    async def finish(
        self, name: str, owner: str, now: datetime, next_free: datetime, outcome: str
    ) -> None:
        held = self.leases.get(name)
        if held is not None and held[0] == owner:
            self.leases[name] = (owner, next_free, outcome[:500])


# -- protection: data keys, subjects, a field encryptor ------------------------------------


class InMemoryDataKeys(InMemoryStore):
    """Data keys. Ciphertexts held in other stores are counted only if registered in
    ``columns`` (EncryptedColumn -> {row id: ciphertext}); rotation is not faked further."""

    def __init__(self) -> None:
        self.keys_by_id: dict[str, DataKey] = {}
        self.columns: dict[EncryptedColumn, dict[str, str]] = {}

    async def add_key(self, key: DataKey) -> None:
        if key.id in self.keys_by_id:
            raise ValueError(f"data key {key.id} exists")
        self.keys_by_id[key.id] = key

    async def get_key(self, key_id: str) -> DataKey | None:
        return self.keys_by_id.get(key_id)

    async def get_keys(self, key_ids: Sequence[str]) -> list[DataKey]:
        return [self.keys_by_id[k] for k in dict.fromkeys(key_ids) if k in self.keys_by_id]

    async def keys(self, purpose: str | None = None) -> list[DataKey]:
        return sorted(
            (k for k in self.keys_by_id.values() if purpose is None or k.purpose == purpose),
            key=lambda k: (k.created_at, k.id),
        )

    async def set_status(self, key_id: str, status: str, at: datetime | None) -> None:
        key = self.keys_by_id[key_id]
        self.keys_by_id[key_id] = replace(key, status=status, retired_at=at or key.retired_at)

    async def shred(self, key_id: str, at: datetime) -> None:
        key = self.keys_by_id[key_id]
        self.keys_by_id[key_id] = replace(key, status="shredded", wrapped_key=None, retired_at=at)

    async def count_rows(self, column: EncryptedColumn, key_id: str) -> int:
        return len(await self.rows_with_key(column, key_id, limit=1 << 30))

    async def rows_with_key(
        self, column: EncryptedColumn, key_id: str, limit: int
    ) -> list[tuple[str, str]]:
        rows = sorted(self.columns.get(column, {}).items())
        return [(r, v) for r, v in rows if FakeFieldEncryptor.key_of(v) == key_id][:limit]

    async def replace_value(self, column: EncryptedColumn, row_id: str, old: str, new: str) -> bool:
        values = self.columns.get(column, {})
        if values.get(row_id) != old:
            return False
        values[row_id] = new
        return True


class InMemorySubjects(InMemoryStore):
    def __init__(self) -> None:
        self.subjects: dict[str, SubjectRecord] = {}

    async def add(self, subject: SubjectRecord) -> None:
        if subject.id in self.subjects:
            raise ValueError(f"data subject {subject.id} exists")
        self.subjects[subject.id] = subject

    async def get(self, subject_id: str) -> SubjectRecord | None:
        return self.subjects.get(subject_id)

    async def find(self, partner_id: str | None, field: str, bidx: str) -> list[SubjectRecord]:
        return [
            s
            for s in self.subjects.values()
            if (partner_id is None or s.partner_id == partner_id)
            and getattr(s, f"{field}_bidx") == bidx
        ]

    async def find_many(
        self, field: str, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[SubjectRecord]]:
        newest_first = sorted(self.subjects.values(), key=lambda s: s.created_at, reverse=True)
        return {
            (partner, bidx): [
                s
                for s in newest_first
                if s.partner_id == partner and getattr(s, f"{field}_bidx") == bidx
            ][:PER_IDENTIFIER]
            for partner, bidx in pairs
        }

    async def mark_erased(self, subject_id: str, at: datetime) -> None:
        self.subjects[subject_id] = replace(self.subjects[subject_id], erased_at=at)


class FakeFieldEncryptor:
    """Reversible, not secret: ``fake1:<key id>:<table/column/row>:<base64 plaintext>``.

    It keeps what matters to a service: a ciphertext only decrypts in the context it was
    made for, a forgotten (shredded) key decrypts nothing (:class:`KeyUnavailable`), and
    blind indexes are deterministic per key."""

    master_key_id = "fake-master"

    def __init__(self) -> None:
        self.forgotten: set[str] = set()

    @staticmethod
    def key_of(ciphertext: str) -> str:
        parts = ciphertext.split(":", 3)
        if len(parts) != 4 or parts[0] != "fake1":
            raise ValueError("not a fake ciphertext")
        return parts[1]

    async def new_wrapped_key(self, key_id: str) -> str:
        return f"wrapped:{self.master_key_id}:{key_id}"

    async def new_subject_key(self, key_id: str, wrapping_key_id: str) -> str:
        return f"wrapped:{wrapping_key_id}:{key_id}"

    def forget(self, key_id: str) -> None:
        self.forgotten.add(key_id)

    async def preload(self, key_ids: Iterable[str]) -> None:
        """Nothing to load: this cipher needs no key material."""

    async def encrypt(self, plaintext: str, *, context: FieldContext, key_id: str) -> str:
        if key_id in self.forgotten:
            raise KeyUnavailable(key_id)
        body = base64.urlsafe_b64encode(plaintext.encode()).decode()
        return f"fake1:{key_id}:{_where(context)}:{body}"

    async def decrypt(self, ciphertext: str, *, context: FieldContext) -> str:
        key_id = self.key_of(ciphertext)
        _, _, where, body = ciphertext.split(":", 3)
        if key_id in self.forgotten:
            raise KeyUnavailable(key_id)
        if where != _where(context):
            raise KeyUnavailable(key_id, "ciphertext does not belong to this field")
        return base64.urlsafe_b64decode(body.encode()).decode()

    def key_id_of(self, ciphertext: str) -> str:
        return self.key_of(ciphertext)

    async def blind_index(self, key_id: str, kind: str, normalized: str) -> str:
        return hashlib.sha256(f"{key_id}|{kind}|{normalized}".encode()).hexdigest()


def _where(context: FieldContext) -> str:
    return f"{context.table}/{context.column}/{context.row_id}"


class FakeProtectionTx(FakeTransaction):
    """A transaction offering what ``ProtectionTx`` and ``JobsTx`` name."""

    @property
    def data_keys(self) -> InMemoryDataKeys:
        return self.database.store("data_keys", InMemoryDataKeys)

    @property
    def subjects(self) -> InMemorySubjects:
        return self.database.store("subjects", InMemorySubjects)


def protection_database(**stores: InMemoryStore) -> FakeDatabase:
    """A database with the platform's stores (audit, outbox, leases, data keys, subjects)
    and ``stores``."""
    return FakeDatabase(data_keys=InMemoryDataKeys(), subjects=InMemorySubjects(), **stores)


# mypy checks each fake against its Protocol here.
_audit: type[AuditRepository] = FakeAuditRepository
_outbox: type[OutboxRepository] = InMemoryOutbox
_leases: type[LeaseRepository] = InMemoryLeases
_data_keys: type[DataKeyRepository] = InMemoryDataKeys
_subjects: type[SubjectRepository] = InMemorySubjects
_cipher: type[FieldEncryptor] = FakeFieldEncryptor
_protection_tx: type[ProtectionTx] = FakeProtectionTx
_jobs_tx: type[JobsTx] = FakeProtectionTx
