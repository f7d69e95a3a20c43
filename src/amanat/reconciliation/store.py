"""Settlements, imported records, matches and breaks in SQL (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.db.dialect import advisory_xact_lock, insert_if_absent, locked
from amanat.platform.db.paging import newest_first
from amanat.reconciliation.domain.records import (
    BatchMember,
    Direction,
    ExternalRecord,
    InternalItem,
    Match,
)
from amanat.reconciliation.domain.settlement import LineKind, SettlementLine
from amanat.reconciliation.ports import (
    BreakRow,
    CycleRow,
    ImportRow,
    SettlementRow,
)
from amanat.reconciliation.tables import (
    recon_breaks,
    recon_external,
    recon_imports,
    recon_internal,
    recon_matches,
    recon_progress,
    recon_sources,
    settlement_cycles,
    settlement_lines,
    settlements,
)

# Bound parameters per statement stay well under SQLite's and asyncpg's limits.
_CHUNK = 500


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqlSettlementRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock(self, key: str) -> None:
        await advisory_xact_lock(self._conn, key)

    async def lock_cycle(self, rail: str, business_date: date) -> CycleRow | None:
        row = (
            await self._conn.execute(
                locked(
                    settlement_cycles.select().where(
                        settlement_cycles.c.rail == rail,
                        settlement_cycles.c.business_date == business_date,
                    ),
                    self._conn,
                )
            )
        ).first()
        return CycleRow(**row._mapping) if row else None

    async def add_cycle(self, cycle: CycleRow) -> bool:
        result = await self._conn.execute(
            insert_if_absent(self._conn, settlement_cycles), asdict(cycle)
        )
        return bool(result.rowcount)

    async def last_cycle(self, rail: str) -> date | None:
        last: date | None = (
            await self._conn.execute(
                sa.select(sa.func.max(settlement_cycles.c.business_date)).where(
                    settlement_cycles.c.rail == rail
                )
            )
        ).scalar_one_or_none()
        return last

    async def previous(
        self, partner_id: str, rail: str, currency: str, before: date
    ) -> SettlementRow | None:
        row = (
            await self._conn.execute(
                settlements.select()
                .where(
                    settlements.c.partner_id == partner_id,
                    settlements.c.rail == rail,
                    settlements.c.currency == currency,
                    settlements.c.business_date < before,
                )
                .order_by(settlements.c.business_date.desc())
                .limit(1)
            )
        ).first()
        return SettlementRow(**row._mapping) if row else None

    async def fees_charged_after(self, partner_id: str, moment: datetime) -> int:
        """Fees of cycles that ended by ``moment`` but were charged after it."""
        total = (
            await self._conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(settlements.c.fees_charged), 0)).where(
                    settlements.c.partner_id == partner_id,
                    settlements.c.window_end <= moment,
                    settlements.c.created_at > moment,
                )
            )
        ).scalar_one()
        return int(total)

    async def add(self, settlement: SettlementRow, lines: Sequence[SettlementLine]) -> None:
        await self._conn.execute(settlements.insert().values(**asdict(settlement)))
        rows = [
            {
                "settlement_id": settlement.id,
                "seq": line.seq,
                "kind": line.kind.value,
                "reference": line.reference,
                "journal_id": line.journal_id,
                "amount": line.amount,
                "fee": line.fee,
                "currency": line.currency,
                "at": line.at,
            }
            for line in lines
        ]
        for chunk in _chunks(rows):
            await self._conn.execute(settlement_lines.insert(), list(chunk))

    async def get(self, settlement_id: str) -> SettlementRow | None:
        row = (
            await self._conn.execute(settlements.select().where(settlements.c.id == settlement_id))
        ).first()
        return SettlementRow(**row._mapping) if row else None

    async def page(
        self,
        partner_id: str | None,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        business_date: date | None = None,
    ) -> list[SettlementRow]:
        query = settlements.select()
        if partner_id is not None:
            query = query.where(settlements.c.partner_id == partner_id)
        if business_date is not None:
            query = query.where(settlements.c.business_date == business_date)
        query = newest_first(query, settlements.c.created_at, settlements.c.id, before)
        rows = await self._conn.execute(query.limit(limit))
        return [SettlementRow(**r._mapping) for r in rows]

    async def lines(
        self, settlement_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[SettlementLine]:
        query = (
            settlement_lines.select()
            .where(
                settlement_lines.c.settlement_id == settlement_id,
                settlement_lines.c.seq > after_seq,
            )
            .order_by(settlement_lines.c.seq)
        )
        if limit is not None:
            query = query.limit(limit)
        rows = await self._conn.execute(query)
        return [
            SettlementLine(
                seq=r.seq,
                kind=LineKind(r.kind),
                reference=r.reference,
                journal_id=r.journal_id,
                amount=int(r.amount),
                fee=int(r.fee),
                currency=r.currency,
                at=r.at,
            )
            for r in rows
        ]


def _external_row(source: str, import_id: str, record: ExternalRecord, at: datetime) -> Any:
    return {
        "source": source,
        "external_id": record.external_id,
        "import_id": import_id,
        "direction": record.direction.value,
        "amount": record.amount,
        "currency": record.currency,
        "value_date": record.value_date,
        "booking_date": record.booking_date,
        "end_to_end_id": record.end_to_end_id,
        "reference": record.reference,
        "batch_reference": record.batch_reference,
        "members": [[m.end_to_end_id, m.reference, m.amount] for m in record.members],
        "fees": record.fees,
        "uetr": record.uetr,
        "location": record.location[:120],
        "match_id": None,
        "created_at": at,
    }


def _external(row: Any) -> ExternalRecord:
    return ExternalRecord(
        external_id=row.external_id,
        direction=Direction(row.direction),
        amount=int(row.amount),
        currency=row.currency,
        value_date=row.value_date,
        booking_date=row.booking_date,
        end_to_end_id=row.end_to_end_id,
        reference=row.reference,
        batch_reference=row.batch_reference,
        members=tuple(BatchMember(e2e, ref, amount) for e2e, ref, amount in row.members),
        fees=int(row.fees),
        uetr=row.uetr,
        location=row.location,
    )


def _internal(row: Any) -> InternalItem:
    return InternalItem(
        payment_id=row.payment_id,
        partner_id=row.partner_id,
        direction=Direction(row.direction),
        amount=int(row.amount),
        currency=row.currency,
        settled_on=row.settled_on,
        reference=row.reference,
        matched=int(row.matched or 0),
    )


class SqlReconciliationRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock(self, key: str) -> None:
        await advisory_xact_lock(self._conn, key)

    async def known_since(self, name: str) -> date | None:
        since: date | None = (
            await self._conn.execute(
                sa.select(recon_sources.c.since).where(recon_sources.c.name == name)
            )
        ).scalar_one_or_none()
        return since

    # -- sources and imports -------------------------------------------------------------

    async def source_since(self, name: str, first_date: date, at: datetime) -> date:
        """The date the source's reports start at, recorded by its first import."""
        await self._conn.execute(
            insert_if_absent(self._conn, recon_sources),
            {"name": name, "since": first_date, "created_at": at},
        )
        since = (
            await self._conn.execute(
                sa.select(recon_sources.c.since).where(recon_sources.c.name == name)
            )
        ).scalar_one()
        return since  # type: ignore[no-any-return]

    async def latest_as_of(self, source: str) -> date | None:
        latest: date | None = (
            await self._conn.execute(
                sa.select(sa.func.max(recon_imports.c.as_of)).where(
                    recon_imports.c.source == source
                )
            )
        ).scalar_one_or_none()
        return latest

    async def import_of(self, source: str, sha256: str) -> ImportRow | None:
        row = (
            await self._conn.execute(
                recon_imports.select().where(
                    recon_imports.c.source == source, recon_imports.c.sha256 == sha256
                )
            )
        ).first()
        return ImportRow(**row._mapping) if row else None

    async def add_import(self, row: ImportRow) -> bool:
        result = await self._conn.execute(insert_if_absent(self._conn, recon_imports), asdict(row))
        return bool(result.rowcount)

    async def get_import(self, import_id: str) -> ImportRow | None:
        row = (
            await self._conn.execute(recon_imports.select().where(recon_imports.c.id == import_id))
        ).first()
        return ImportRow(**row._mapping) if row else None

    async def imports(self, *, limit: int, before: tuple[datetime, str] | None) -> list[ImportRow]:
        query = newest_first(
            recon_imports.select(), recon_imports.c.created_at, recon_imports.c.id, before
        )
        rows = await self._conn.execute(query.limit(limit))
        return [ImportRow(**r._mapping) for r in rows]

    # -- the other side's records --------------------------------------------------------

    async def known_external(self, source: str, external_ids: Sequence[str]) -> set[str]:
        known: set[str] = set()
        for chunk in _chunks(list(external_ids)):
            rows = await self._conn.execute(
                sa.select(recon_external.c.external_id).where(
                    recon_external.c.source == source,
                    recon_external.c.external_id.in_(chunk),
                )
            )
            known.update(r[0] for r in rows)
        return known

    async def add_external(
        self, source: str, import_id: str, records: Sequence[ExternalRecord], at: datetime
    ) -> None:
        rows = [_external_row(source, import_id, r, at) for r in records]
        for chunk in _chunks(rows):
            await self._conn.execute(recon_external.insert(), list(chunk))

    async def open_external(self, source: str) -> list[ExternalRecord]:
        rows = await self._conn.execute(
            recon_external.select().where(
                recon_external.c.source == source, recon_external.c.match_id.is_(None)
            )
        )
        return [_external(r) for r in rows]

    async def external(self, source: str, external_id: str) -> ExternalRecord | None:
        row = (
            await self._conn.execute(
                recon_external.select().where(
                    recon_external.c.source == source,
                    recon_external.c.external_id == external_id,
                )
            )
        ).first()
        return _external(row) if row else None

    async def external_is_open(self, source: str, external_id: str) -> bool:
        row = (
            await self._conn.execute(
                sa.select(recon_external.c.match_id).where(
                    recon_external.c.source == source,
                    recon_external.c.external_id == external_id,
                )
            )
        ).first()
        return row is not None and row[0] is None

    async def consume(self, source: str, external_ids: Sequence[str], match_id: str) -> int:
        consumed = 0
        for chunk in _chunks(list(external_ids)):
            result = await self._conn.execute(
                recon_external.update()
                .where(
                    recon_external.c.source == source,
                    recon_external.c.external_id.in_(chunk),
                    recon_external.c.match_id.is_(None),
                )
                .values(match_id=match_id)
            )
            consumed += result.rowcount
        return consumed

    # -- amanat's side ------------------------------------------------------------------

    async def add_internal(self, item: InternalItem, kind: str, settled_at: datetime) -> None:
        await self._conn.execute(
            insert_if_absent(self._conn, recon_internal),
            {
                "payment_id": item.payment_id,
                "partner_id": item.partner_id,
                "kind": kind,
                "direction": item.direction.value,
                "amount": item.amount,
                "currency": item.currency,
                "reference": item.reference,
                "settled_at": settled_at,
                "settled_on": item.settled_on,
            },
        )

    def _with_progress(self, source: str) -> Any:
        progress = recon_progress.alias("progress")
        return (
            sa.select(
                recon_internal,
                progress.c.matched,
                sa.func.coalesce(progress.c.complete, sa.false()).label("complete"),
            ).select_from(
                recon_internal.outerjoin(
                    progress,
                    sa.and_(
                        progress.c.payment_id == recon_internal.c.payment_id,
                        progress.c.source == source,
                    ),
                )
            ),
            progress,
        )

    async def open_internal(self, source: str, since: date) -> list[InternalItem]:
        query, progress = self._with_progress(source)
        rows = await self._conn.execute(
            query.where(
                recon_internal.c.settled_on >= since,
                sa.or_(progress.c.complete.is_(None), progress.c.complete == sa.false()),
            )
        )
        return [_internal(r) for r in rows]

    async def internal(self, source: str, payment_ids: Sequence[str]) -> list[InternalItem]:
        query, _ = self._with_progress(source)
        found: list[InternalItem] = []
        for chunk in _chunks(list(payment_ids)):
            rows = await self._conn.execute(query.where(recon_internal.c.payment_id.in_(chunk)))
            found.extend(_internal(r) for r in rows)
        return found

    async def save_progress(self, source: str, items: Sequence[InternalItem]) -> None:
        """Record how much of each payment ``source`` has accounted for: one INSERT for the
        payments it had not touched before (most of them), an UPDATE for the others."""
        existing: set[str] = set()
        for chunk in _chunks([i.payment_id for i in items]):
            rows = await self._conn.execute(
                sa.select(recon_progress.c.payment_id).where(
                    recon_progress.c.source == source, recon_progress.c.payment_id.in_(chunk)
                )
            )
            existing.update(r[0] for r in rows)
        fresh = [
            {
                "source": source,
                "payment_id": i.payment_id,
                "matched": i.matched,
                "complete": i.remaining <= 0,
            }
            for i in items
            if i.payment_id not in existing
        ]
        for chunk in _chunks(fresh):
            await self._conn.execute(recon_progress.insert(), list(chunk))
        for item in items:
            if item.payment_id in existing:
                await self._conn.execute(
                    recon_progress.update()
                    .where(
                        recon_progress.c.source == source,
                        recon_progress.c.payment_id == item.payment_id,
                    )
                    .values(matched=item.matched, complete=item.remaining <= 0)
                )

    # -- matches and breaks --------------------------------------------------------------

    async def add_match(
        self,
        match_id: str,
        source: str,
        import_id: str | None,
        match: Match,
        created_by: str,
        at: datetime,
    ) -> None:
        await self._conn.execute(
            recon_matches.insert().values(
                id=match_id,
                source=source,
                import_id=import_id,
                rule=match.rule,
                outcome=match.outcome.value,
                external_ids=list(match.external_ids),
                allocations=[[pid, amount] for pid, amount in match.allocations],
                amount=match.amount,
                fees=match.fees,
                created_by=created_by,
                created_at=at,
            )
        )

    async def matches(
        self, *, source: str | None, import_id: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        query = recon_matches.select()
        if source is not None:
            query = query.where(recon_matches.c.source == source)
        if import_id is not None:
            query = query.where(recon_matches.c.import_id == import_id)
        rows = await self._conn.execute(
            query.order_by(recon_matches.c.created_at, recon_matches.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [dict(r._mapping) for r in rows]

    async def open_breaks(self, source: str) -> list[BreakRow]:
        rows = await self._conn.execute(
            recon_breaks.select().where(
                recon_breaks.c.source == source, recon_breaks.c.status == "open"
            )
        )
        return [BreakRow(**r._mapping) for r in rows]

    async def add_breaks(self, rows: Sequence[BreakRow]) -> None:
        for chunk in _chunks([asdict(row) for row in rows], 200):
            await self._conn.execute(recon_breaks.insert(), list(chunk))

    async def open_break_counts(self, source: str) -> dict[str, int]:
        rows = await self._conn.execute(
            sa.select(recon_breaks.c.kind, sa.func.count())
            .where(recon_breaks.c.source == source, recon_breaks.c.status == "open")
            .group_by(recon_breaks.c.kind)
        )
        return {kind: int(count) for kind, count in rows}

    async def get_break(self, break_id: str, *, for_update: bool = False) -> BreakRow | None:
        query = recon_breaks.select().where(recon_breaks.c.id == break_id)
        if for_update:
            query = locked(query, self._conn)
        row = (await self._conn.execute(query)).first()
        return BreakRow(**row._mapping) if row else None

    async def close_break(self, before: BreakRow, after: BreakRow) -> bool:
        result = await self._conn.execute(
            recon_breaks.update()
            .where(recon_breaks.c.id == before.id, recon_breaks.c.version == before.version)
            .values(
                status=after.status,
                resolved_at=after.resolved_at,
                resolved_by=after.resolved_by,
                resolution=after.resolution,
                reason=after.reason,
                journal_id=after.journal_id,
                match_id=after.match_id,
                version=after.version,
            )
        )
        return bool(result.rowcount)

    async def breaks(
        self,
        *,
        status: str | None,
        kind: str | None,
        source: str | None,
        internal_id: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[BreakRow]:
        query = recon_breaks.select()
        for column, value in (
            (recon_breaks.c.status, status),
            (recon_breaks.c.kind, kind),
            (recon_breaks.c.source, source),
            (recon_breaks.c.internal_id, internal_id),
        ):
            if value is not None:
                query = query.where(column == value)
        query = newest_first(query, recon_breaks.c.opened_at, recon_breaks.c.id, before)
        rows = await self._conn.execute(query.limit(limit))
        return [BreakRow(**r._mapping) for r in rows]
