"""Reconciliation: import the other side's report, match it against amanat's settled
payments, keep an exceptions queue of breaks, and resolve each break with a reason.

An import is one unit of work: the file's new records, every match, the payments'
progress, the breaks opened and cleared and the audit record commit together, so a crash
leaves either all of it or none. The same file (by SHA-256) twice changes nothing; an
overlapping file adds only the records it has not seen (by external id). Records and
payments that do not match stay open and are matched again by every later import, so a
half that arrives a cycle late still finds its other half. Only a break's resolution
posts to the ledger.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from amanat.kernel.clock import Clock, format_timestamp, karachi_date
from amanat.kernel.errors import Conflict, Contention, InvalidInput, NotFound
from amanat.kernel.ids import new_id
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.ports import UnitOfWork
from amanat.reconciliation.domain.errors import MAX_FILE_ERRORS, FileError, StatementRejected
from amanat.reconciliation.domain.events import PartnerNotice
from amanat.reconciliation.domain.formats import read_records
from amanat.reconciliation.domain.matching import match
from amanat.reconciliation.domain.records import (
    Break,
    Direction,
    ExternalRecord,
    InternalItem,
    Match,
    Outcome,
)
from amanat.reconciliation.domain.sources import SOURCES, Source
from amanat.reconciliation.ports import BreakRow, ImportRow, Ledger, ReconciliationTx

MAX_FILE_BYTES = 200 * 2**20
SYSTEM_ACTOR = "amanat"
LEDGER_CURRENCY = "PKR"
# A statement's dates are within this of today, or it is not this year's statement: a
# typo (31/12/2099) would otherwise make every payment due, or none, for good.
DATES_BEFORE = timedelta(days=400)
DATES_AFTER = timedelta(days=31)
# Widths of the columns the fields are stored in (ISO 20022 allows 35 for the ids).
FIELD_WIDTHS = {"end_to_end_id": 64, "batch_reference": 64, "uetr": 40}
EXTERNAL_ID_WIDTH = 100
REFERENCE_WIDTH = 140


class UnknownSource(InvalidInput):
    code = "unknown_source"


class BreakClosed(Conflict):
    code = "break_already_resolved"


class ResolutionRefused(Conflict):
    code = "resolution_refused"


RESOLUTIONS = ("write_off", "adjustment", "manual_match", "dismiss")

# The kinds a payment of each type is to the platform's account.
DIRECTIONS = {"collection": Direction.CREDIT, "payout": Direction.DEBIT, "refund": Direction.DEBIT}


@dataclass(frozen=True, slots=True)
class ImportResult:
    row: ImportRow
    already_imported: bool
    outcomes: dict[str, int]
    open_breaks: int


def vetted(records: Sequence[ExternalRecord], today: date) -> list[ExternalRecord]:
    """The records as stored, or the whole file refused with every fault located: a
    currency the ledger does not keep, a date no current statement has, an id too long
    to be one. An over-long external id is kept by its digest (it only has to be stable),
    an over-long reference cut to its column."""
    errors: list[FileError] = []
    kept: list[ExternalRecord] = []
    earliest, latest = today - DATES_BEFORE, today + DATES_AFTER
    for record in records:
        where = record.location or "record"
        if record.currency != LEDGER_CURRENCY:
            errors.append(
                FileError(where, f"{record.currency[:3]}: the ledger keeps {LEDGER_CURRENCY} only")
            )
        for day in (record.value_date, record.booking_date):
            if day is not None and not earliest <= day <= latest:
                errors.append(
                    FileError(where, f"the date {day.isoformat()} is not within a year of today")
                )
        ids = [(name, getattr(record, name)) for name in FIELD_WIDTHS]
        ids += [("end_to_end_id", m.end_to_end_id) for m in record.members]
        for name, value in ids:
            if value is not None and len(value) > FIELD_WIDTHS[name]:
                errors.append(
                    FileError(where, f"{name} is longer than {FIELD_WIDTHS[name]} characters")
                )
        if len(errors) >= MAX_FILE_ERRORS:
            raise StatementRejected(errors, truncated=True)
        external_id = record.external_id
        if len(external_id) > EXTERNAL_ID_WIDTH:
            external_id = "h:" + hashlib.sha256(external_id.encode()).hexdigest()
        reference = record.reference
        if reference is not None and len(reference) > REFERENCE_WIDTH:
            reference = reference[:REFERENCE_WIDTH]
        kept.append(replace(record, external_id=external_id, reference=reference))
    if errors:
        raise StatementRejected(errors)
    return kept


def break_key(kind: str, internal_id: str | None, external_id: str | None) -> tuple[str, str, str]:
    return kind, internal_id or "", external_id or ""


def break_view(row: BreakRow, now: datetime) -> dict[str, Any]:
    age = (row.resolved_at or now) - row.opened_at
    return {
        "id": row.id,
        "object": "reconciliation_break",
        "source": row.source,
        "kind": row.kind,
        "status": row.status,
        "amount": row.amount,
        "currency": row.currency,
        "payment_id": row.internal_id,
        "external_id": row.external_id,
        "partner_id": row.partner_id,
        "differences": [
            {"field": field, "ours": ours, "theirs": theirs}
            for field, ours, theirs in row.differences
        ],
        "suggested_cause": row.suggested_cause,
        "age_seconds": int(age.total_seconds()),
        "opened_at": format_timestamp(row.opened_at),
        "import_id": row.import_id,
        "resolution": row.resolution,
        "reason": row.reason,
        "resolved_by": row.resolved_by,
        "resolved_at": format_timestamp(row.resolved_at) if row.resolved_at else None,
        "journal_id": row.journal_id,
        "match_id": row.match_id,
    }


def import_view(row: ImportRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "reconciliation_import",
        "source": row.source,
        "format": row.format,
        "file_name": row.file_name,
        "sha256": row.sha256,
        "size": row.size,
        "records": row.records,
        "new_records": row.new_records,
        "matched": row.matched,
        "breaks_opened": row.breaks_opened,
        "breaks_cleared": row.breaks_cleared,
        "as_of": row.as_of.isoformat() if row.as_of else None,
        "imported_by": row.imported_by,
        "created_at": format_timestamp(row.created_at),
    }


class ReconciliationService:
    def __init__(
        self, transactions: UnitOfWork[ReconciliationTx], clock: Clock, ledger: Ledger
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._ledger = ledger

    @staticmethod
    def source(name: str) -> Source:
        found = SOURCES.get(name)
        if found is None:
            raise UnknownSource(
                f"No reconciliation source named {name[:40]!r}; known: {', '.join(SOURCES)}."
            )
        return found

    # -- amanat's side: every settled payment is expected on the other side ------------

    async def on_payment_changed(self, event: Any, tx: ReconciliationTx) -> None:
        """Payments published a new version of a payment: a settled one is expected in
        every source's report from now on."""
        view = event.view
        direction = DIRECTIONS.get(view.get("type"))
        if view.get("status") != "succeeded" or direction is None:
            return
        now = self._clock.now()
        item = InternalItem(
            payment_id=event.payment_id,
            partner_id=event.partner_id,
            direction=direction,
            amount=int(view["amount"]),
            currency=str(view["currency"]),
            settled_on=karachi_date(now),
            reference=view.get("reference"),
        )
        await tx.recon.add_internal(item, str(view["type"]), now)

    # -- importing ------------------------------------------------------------------------

    async def import_file(
        self, actor: Actor, source_name: str, data: bytes, file_name: str
    ) -> ImportResult:
        source = self.source(source_name)
        if len(data) > MAX_FILE_BYTES:
            raise InvalidInput(
                f"The file is larger than {MAX_FILE_BYTES // 2**20} MB.", code="file_too_large"
            )
        digest = hashlib.sha256(data).hexdigest()
        async with self._tx.read() as tx:
            seen = await tx.recon.import_of(source.name, digest)
        if seen is not None:
            return await self._summary(seen, already_imported=True)
        # Refuses the whole file, or reads all of it; off the event loop, as a big file
        # takes seconds.
        records = await asyncio.to_thread(read_records, data, source.format)
        now = self._clock.now()
        today = karachi_date(now)
        records = vetted(records, today)
        dates = [d for r in records for d in (r.value_date, r.booking_date) if d is not None]
        tolerance = timedelta(days=source.rules.date_tolerance_days)
        import_id = new_id("recon_import")
        async with self._tx.atomic() as tx:
            # One import or resolution of a source at a time, across machines.
            await tx.recon.lock(f"reconciliation:{source.name}")
            if await tx.recon.import_of(source.name, digest) is not None:
                raise Contention("The same file was imported at the same moment.")
            # A payment is due once a statement covers its date (less the tolerance), and
            # never after today; an older statement imported late never makes a due
            # payment undue again.
            covered = [d for d in (await tx.recon.latest_as_of(source.name),) if d is not None]
            if dates:
                covered.append(min(max(dates) - tolerance, today))
            as_of = max(covered) if covered else date.min
            known = await tx.recon.known_external(source.name, [r.external_id for r in records])
            fresh = [r for r in records if r.external_id not in known]
            await tx.recon.add_external(source.name, import_id, fresh, now)
            # The source's reports start with its first dated statement; payments before
            # it are not this source's to confirm.
            if dates:
                since = await tx.recon.source_since(source.name, min(dates), now)
            else:
                since = await tx.recon.known_since(source.name) or today - DATES_BEFORE
            matched, opened, cleared = await self._match(
                tx, actor, source, import_id, since=since, as_of=as_of
            )
            row = ImportRow(
                id=import_id,
                source=source.name,
                format=source.format,
                file_name=file_name[:200],
                sha256=digest,
                size=len(data),
                records=len(records),
                new_records=len(fresh),
                matched=matched,
                breaks_opened=opened,
                breaks_cleared=cleared,
                as_of=None if as_of == date.min else as_of,
                imported_by=actor.id,
                created_at=now,
            )
            if not await tx.recon.add_import(row):
                raise Contention("The same file is being imported right now.")
            await audit.record(
                tx,
                self._clock,
                actor,
                "reconciliation.imported",
                target_type="reconciliation_import",
                target_id=import_id,
                payload={
                    "source": source.name,
                    "file_name": row.file_name,
                    "sha256": digest,
                    "records": len(records),
                    "new_records": len(fresh),
                    "matched": matched,
                    "breaks_opened": opened,
                    "breaks_cleared": cleared,
                },
            )
        return await self._summary(row, already_imported=False)

    async def rematch(self, actor: Actor, source_name: str) -> tuple[int, int, int]:
        """Match what is open again (payments that settled after their report arrived);
        returns (matched, breaks opened, breaks cleared)."""
        source = self.source(source_name)
        async with self._tx.atomic() as tx:
            await tx.recon.lock(f"reconciliation:{source.name}")
            as_of = await tx.recon.latest_as_of(source.name)
            if as_of is None:
                return 0, 0, 0  # nothing imported from this source yet
            since = await tx.recon.source_since(source.name, as_of, self._clock.now())
            return await self._match(tx, actor, source, None, since=since, as_of=as_of)

    async def _match(
        self,
        tx: ReconciliationTx,
        actor: Actor,
        source: Source,
        import_id: str | None,
        *,
        since: date,
        as_of: date,
    ) -> tuple[int, int, int]:
        external = await tx.recon.open_external(source.name)
        internal = {i.payment_id: i for i in await tx.recon.open_internal(source.name, since)}
        named = {
            e2e
            for record in external
            for e2e in (record.end_to_end_id, *(m.end_to_end_id for m in record.members))
            if e2e and e2e not in internal
        }
        # Payments the other side names again after they were matched: duplicates.
        for item in await tx.recon.internal(source.name, sorted(named)):
            internal[item.payment_id] = item
        result = match(internal.values(), external, source.rules, as_of=as_of)
        now = self._clock.now()
        progressed = dict.fromkeys(internal, 0)
        for found in result.matches:
            match_id = new_id("recon_match")
            await tx.recon.add_match(match_id, source.name, import_id, found, actor.id, now)
            if await tx.recon.consume(source.name, found.external_ids, match_id) != len(
                found.external_ids
            ):
                raise Contention("Another import matched these records at the same time.")
            for payment_id, amount in found.allocations:
                progressed[payment_id] = progressed.get(payment_id, 0) + amount
            if found.fees > 0:
                currency = internal[found.allocations[0][0]].currency
                await self._ledger.post_bank_charges(found.fees, currency, match_id)
        changed = [
            replace(internal[pid], matched=internal[pid].matched + amount)
            for pid, amount in progressed.items()
            if amount
        ]
        await tx.recon.save_progress(source.name, changed)
        opened, cleared = await self._sync_breaks(
            tx, source, import_id, result.breaks, internal, now
        )
        return len(result.matches), opened, cleared

    async def _sync_breaks(
        self,
        tx: ReconciliationTx,
        source: Source,
        import_id: str | None,
        found: Sequence[Break],
        internal: dict[str, InternalItem],
        now: datetime,
    ) -> tuple[int, int]:
        """Open a break for each new non-match; clear open ones that no longer hold (their
        other half arrived, or what differed no longer does)."""
        existing = {
            break_key(b.kind, b.internal_id, b.external_id): b
            for b in await tx.recon.open_breaks(source.name)
        }
        current = {break_key(b.kind.value, b.internal_id, b.external_id): b for b in found}
        new_rows: list[BreakRow] = []
        for key, item in current.items():
            if key in existing:
                continue
            partner = internal.get(item.internal_id or "")
            row = BreakRow(
                id=new_id("recon_break"),
                source=source.name,
                kind=item.kind.value,
                status="open",
                amount=item.amount,
                currency=item.currency,
                internal_id=item.internal_id,
                external_id=item.external_id,
                partner_id=partner.partner_id if partner else None,
                differences=[[d.field, d.ours, d.theirs] for d in item.differences],
                suggested_cause=item.suggested_cause[:400],
                import_id=import_id,
                opened_at=now,
                resolved_at=None,
                resolved_by=None,
                resolution=None,
                reason=None,
                journal_id=None,
                match_id=None,
                version=1,
            )
            new_rows.append(row)
            if partner is not None:
                tx.publish(
                    PartnerNotice(
                        partner.partner_id,
                        "reconciliation.break_opened",
                        row.id,
                        _partner_break_view(row, partner),
                    )
                )
        await tx.recon.add_breaks(new_rows)
        opened = len(new_rows)
        cleared = 0
        for key, row in existing.items():
            if key in current:
                continue
            await self._close(
                tx,
                row,
                resolution="cleared",
                reason="No longer differs: its other half arrived or was matched.",
                resolved_by=SYSTEM_ACTOR,
                now=now,
            )
            cleared += 1
        return opened, cleared

    async def _close(
        self,
        tx: ReconciliationTx,
        row: BreakRow,
        *,
        resolution: str,
        reason: str,
        resolved_by: str,
        now: datetime,
        journal_id: str | None = None,
        match_id: str | None = None,
    ) -> BreakRow:
        after = replace(
            row,
            status="resolved",
            resolution=resolution,
            reason=reason,
            resolved_by=resolved_by,
            resolved_at=now,
            journal_id=journal_id,
            match_id=match_id,
            version=row.version + 1,
        )
        if not await tx.recon.close_break(row, after):
            raise BreakClosed("Someone resolved this break at the same moment.")
        return after

    async def _summary(self, row: ImportRow, *, already_imported: bool) -> ImportResult:
        async with self._tx.read() as tx:
            counts = await tx.recon.open_break_counts(row.source)
        outcomes = dict(counts)
        outcomes[Outcome.MATCHED.value] = row.matched
        return ImportResult(row, already_imported, outcomes, sum(counts.values()))

    # -- resolving ------------------------------------------------------------------------

    async def resolve(
        self,
        actor: Actor,
        break_id: str,
        resolution: str,
        reason: str,
        *,
        partner_id: str | None = None,
        counterpart: str | None = None,
    ) -> BreakRow:
        """Resolve an open break: ``write_off`` (the platform absorbs the difference),
        ``adjustment`` (a merchant's balance takes it), or ``manual_match`` (pair it with
        ``counterpart``: a payment id for a record, a record's external id for a payment).
        Each is audited; only the first two post to the ledger."""
        if resolution not in RESOLUTIONS:
            raise InvalidInput(
                f"resolution must be one of {', '.join(RESOLUTIONS)}.", code="invalid_resolution"
            )
        reason = reason.strip()
        if not 3 <= len(reason) <= 500:
            raise InvalidInput(
                "Give a reason of 3 to 500 characters: auditors read it.", code="reason_required"
            )
        now = self._clock.now()
        async with self._tx.atomic() as tx:
            found_break = await tx.recon.get_break(break_id)
            if found_break is None:
                raise NotFound("No such break.")
            # Resolutions and imports of one source never interleave: two manual matches
            # at once cannot both take the same payment's remainder.
            await tx.recon.lock(f"reconciliation:{found_break.source}")
            row = await tx.recon.get_break(break_id, for_update=True)
            if row is None:
                raise NotFound("No such break.")
            if row.status != "open":
                raise BreakClosed(f"Break {row.id} is already {row.resolution}.")
            source = self.source(row.source)
            record = (
                await tx.recon.external(row.source, row.external_id) if row.external_id else None
            )
            item = None
            if row.internal_id:
                found = await tx.recon.internal(row.source, [row.internal_id])
                item = found[0] if found else None
            journal_id = match_id = charged_to = None
            if resolution == "dismiss":
                if row.kind != Outcome.DUPLICATE.value:
                    raise ResolutionRefused(
                        "Only a duplicate report can be dismissed; a difference in money is "
                        "written off, adjusted or matched."
                    )
            elif resolution == "manual_match":
                match_id, record, item = await self._manual_match(
                    tx, actor, source, row, record, item, counterpart, now
                )
            else:
                if resolution == "adjustment":
                    charged_to = row.partner_id or partner_id
                    if charged_to is None:
                        raise ResolutionRefused(
                            "Name the partner whose balance takes this adjustment (partner_id).",
                        )
                    if partner_id is not None and partner_id != charged_to:
                        raise ResolutionRefused(
                            "This break is about another partner's payment: an adjustment "
                            "goes to that partner's balance; leave partner_id out."
                        )
                    if not await self._ledger.has_balance(charged_to):
                        raise ResolutionRefused("That partner has no balance to adjust.")
                delta = _difference(row, record, item, await self._members(tx, row, record))
                if delta == 0:
                    raise ResolutionRefused(
                        "The two sides agree in money; resolve this break with manual_match."
                    )
                journal_id = await self._ledger.post_reconciliation_difference(
                    delta, row.currency, row.id, charged_to=charged_to
                )
            await self._settle_sides(tx, row, record, item, match_id or row.id)
            after = await self._close(
                tx,
                row,
                resolution=resolution,
                reason=reason,
                resolved_by=actor.id,
                now=now,
                journal_id=journal_id,
                match_id=match_id,
            )
            await audit.record(
                tx,
                self._clock,
                actor,
                "reconciliation.break_resolved",
                target_type="reconciliation_break",
                target_id=row.id,
                payload={
                    "kind": row.kind,
                    "resolution": resolution,
                    "reason": reason,
                    "amount": row.amount,
                    "currency": row.currency,
                    "payment_id": after.internal_id,
                    "external_id": after.external_id,
                    "journal_id": journal_id,
                    "match_id": match_id,
                    "charged_to": charged_to,
                },
            )
        return after

    async def _members(
        self, tx: ReconciliationTx, row: BreakRow, record: ExternalRecord | None
    ) -> list[InternalItem]:
        if record is None or not record.members or row.internal_id:
            return []
        ids = [m.end_to_end_id for m in record.members if m.end_to_end_id]
        return [i for i in await tx.recon.internal(row.source, ids) if i.remaining > 0]

    async def _manual_match(
        self,
        tx: ReconciliationTx,
        actor: Actor,
        source: Source,
        row: BreakRow,
        record: ExternalRecord | None,
        item: InternalItem | None,
        counterpart: str | None,
        now: datetime,
    ) -> tuple[str, ExternalRecord, InternalItem]:
        if not counterpart:
            raise ResolutionRefused(
                "Name what this break matches (counterpart): a payment id for a record, "
                "a record's external id for a payment."
            )
        if record is None:
            record = await tx.recon.external(row.source, counterpart)
            if record is None or not await tx.recon.external_is_open(row.source, counterpart):
                raise ResolutionRefused("No open record of this source has that external id.")
        elif item is None:
            found = await tx.recon.internal(row.source, [counterpart])
            item = found[0] if found else None
        if item is None or item.remaining <= 0:
            raise ResolutionRefused("No payment still open for this source has that id.")
        if (
            record.direction is not item.direction
            or record.currency != item.currency
            or abs(record.amount - item.remaining) > source.rules.amount_tolerance
        ):
            raise ResolutionRefused(
                "The record and the payment differ in direction, currency or amount: "
                "resolve the difference with write_off or adjustment instead."
            )
        match_id = new_id("recon_match")
        await tx.recon.add_match(
            match_id,
            row.source,
            None,
            Match(
                rule="manual",
                outcome=Outcome.MATCHED,
                external_ids=(record.external_id,),
                allocations=((item.payment_id, item.remaining),),
                amount=record.amount,
            ),
            actor.id,
            now,
        )
        # The break on the other half (if any) is settled by the same match.
        for other in await tx.recon.open_breaks(row.source):
            if other.id != row.id and (
                other.internal_id == item.payment_id or other.external_id == record.external_id
            ):
                await self._close(
                    tx,
                    other,
                    resolution="cleared",
                    reason=f"Matched by hand with break {row.id}.",
                    resolved_by=actor.id,
                    now=now,
                    match_id=match_id,
                )
        return match_id, record, item

    async def _settle_sides(
        self,
        tx: ReconciliationTx,
        row: BreakRow,
        record: ExternalRecord | None,
        item: InternalItem | None,
        consumed_by: str,
    ) -> None:
        """A resolved break's record and payment are accounted for: neither opens a break
        again."""
        if record is not None:
            await tx.recon.consume(row.source, [record.external_id], consumed_by)
        items = [item] if item is not None else await self._members(tx, row, record)
        await tx.recon.save_progress(row.source, [replace(i, matched=i.amount) for i in items])

    # -- reading --------------------------------------------------------------------------

    async def get_break(self, break_id: str) -> BreakRow:
        async with self._tx.read() as tx:
            row = await tx.recon.get_break(break_id)
        if row is None:
            raise NotFound("No such break.")
        return row

    async def breaks(
        self,
        *,
        status: str | None,
        kind: str | None,
        source: str | None,
        payment_id: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> tuple[list[BreakRow], bool]:
        async with self._tx.read() as tx:
            rows = await tx.recon.breaks(
                status=status,
                kind=kind,
                source=source,
                internal_id=payment_id,
                limit=limit + 1,
                before=before,
            )
        return rows[:limit], len(rows) > limit

    async def imports(self, *, limit: int, before: tuple[datetime, str] | None) -> list[ImportRow]:
        async with self._tx.read() as tx:
            return await tx.recon.imports(limit=limit, before=before)

    async def get_import(self, import_id: str) -> ImportResult:
        async with self._tx.read() as tx:
            row = await tx.recon.get_import(import_id)
        if row is None:
            raise NotFound("No such import.")
        return await self._summary(row, already_imported=True)

    async def matches(
        self, *, import_id: str | None, source: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        async with self._tx.read() as tx:
            return await tx.recon.matches(
                source=source, import_id=import_id, limit=limit, offset=offset
            )

    def now(self) -> datetime:
        return self._clock.now()


PARTNER_CAUSES = {
    Outcome.UNMATCHED_INTERNAL.value: "The bank's or the rail's report does not show this "
    "payment yet; it may arrive in a later report.",
    Outcome.AMOUNT_MISMATCH.value: "The bank's or the rail's report shows this payment "
    "with another amount.",
    Outcome.DUPLICATE.value: "The bank's or the rail's report shows this payment twice.",
}


def _partner_break_view(row: BreakRow, payment: InternalItem) -> dict[str, Any]:
    """What the partner hears: which of its own payments, and what kind of difference;
    never the other side's figures, nor anything of another partner's payments."""
    return {
        "id": row.id,
        "object": "reconciliation_break",
        "kind": row.kind,
        "payment_id": payment.payment_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "explanation": PARTNER_CAUSES.get(
            row.kind, "The bank's or the rail's report differs about this payment."
        ),
        "opened_at": format_timestamp(row.opened_at),
    }


def _signed(direction: Direction, amount: int) -> int:
    return amount if direction is Direction.CREDIT else -amount


def _difference(
    row: BreakRow,
    record: ExternalRecord | None,
    item: InternalItem | None,
    members: Sequence[InternalItem],
) -> int:
    """The other side's figure minus the ledger's, for the platform's account at the
    rail: what posting brings the two in line."""
    theirs = _signed(record.direction, record.amount) if record is not None else 0
    if row.kind == Outcome.DUPLICATE.value:
        return theirs  # the payment was already accounted for once
    ours = 0
    if item is not None:
        ours = _signed(item.direction, item.remaining)
    elif members:
        ours = sum(_signed(m.direction, m.remaining) for m in members)
    return theirs - ours
