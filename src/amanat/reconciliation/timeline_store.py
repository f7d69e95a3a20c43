"""Reconciliation's reads for a transaction's timeline, in SQL: its settled copy
(``recon_internal``), how much of it each source has accounted for, the matches that
allocated to it and the breaks about it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.reconciliation.tables import (
    recon_breaks,
    recon_external,
    recon_internal,
    recon_matches,
    recon_progress,
    recon_sources,
)
from amanat.reconciliation.timeline import BreakRow, InternalRow, MatchRow, ProgressRow


def _match(row: Any) -> MatchRow:
    return MatchRow(
        id=row.id,
        source=row.source,
        rule=row.rule,
        outcome=row.outcome,
        external_ids=[str(x) for x in row.external_ids],
        allocations=[(str(pid), int(amount)) for pid, amount in row.allocations],
        amount=int(row.amount),
        fees=int(row.fees),
        created_by=row.created_by,
        created_at=row.created_at,
    )


class SqlReconciliationHistory:
    """Repository ``recon_history`` (reconciliation/wiring.py)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def internal(self, payment_id: str) -> InternalRow | None:
        row = (
            await self._conn.execute(
                recon_internal.select().where(recon_internal.c.payment_id == payment_id)
            )
        ).first()
        if row is None:
            return None
        return InternalRow(
            kind=row.kind,
            direction=row.direction,
            amount=int(row.amount),
            currency=row.currency,
            settled_at=row.settled_at,
            settled_on=row.settled_on,
        )

    async def progress(self, payment_id: str) -> list[ProgressRow]:
        # By the primary key (source, payment id): the sources are few.
        rows = await self._conn.execute(
            sa.select(recon_progress.c.source, recon_progress.c.matched, recon_progress.c.complete)
            .where(
                recon_progress.c.source.in_(sa.select(recon_sources.c.name)),
                recon_progress.c.payment_id == payment_id,
            )
            .order_by(recon_progress.c.source)
        )
        return [ProgressRow(r.source, int(r.matched), bool(r.complete)) for r in rows]

    async def matches_naming(self, end_to_end_id: str) -> list[MatchRow]:
        """Matches of the other side's records that name the payment by end-to-end id."""
        named = (
            sa.select(recon_external.c.match_id)
            .where(
                recon_external.c.end_to_end_id == end_to_end_id,
                recon_external.c.match_id.is_not(None),
            )
            .scalar_subquery()
        )
        rows = await self._conn.execute(
            recon_matches.select()
            .where(recon_matches.c.id.in_(named))
            .order_by(recon_matches.c.created_at, recon_matches.c.id)
        )
        return [_match(r) for r in rows]

    async def matches(self, match_ids: Sequence[str]) -> list[MatchRow]:
        if not match_ids:
            return []
        rows = await self._conn.execute(
            recon_matches.select().where(recon_matches.c.id.in_(list(match_ids)))
        )
        return [_match(r) for r in rows]

    async def matches_of_source_since(
        self, source: str, since: datetime, limit: int
    ) -> list[MatchRow]:
        """A source's matches made from ``since`` on, oldest first, at most ``limit``:
        where a reference, batch or value-date match of a payment is looked for."""
        rows = await self._conn.execute(
            recon_matches.select()
            .where(recon_matches.c.source == source, recon_matches.c.created_at >= since)
            .order_by(recon_matches.c.created_at, recon_matches.c.id)
            .limit(limit)
        )
        return [_match(r) for r in rows]

    async def breaks(self, payment_id: str) -> list[BreakRow]:
        rows = await self._conn.execute(
            recon_breaks.select()
            .where(recon_breaks.c.internal_id == payment_id)
            .order_by(recon_breaks.c.opened_at, recon_breaks.c.id)
        )
        return [
            BreakRow(
                id=r.id,
                source=r.source,
                kind=r.kind,
                status=r.status,
                amount=int(r.amount),
                currency=r.currency,
                external_id=r.external_id,
                suggested_cause=r.suggested_cause,
                opened_at=r.opened_at,
                resolved_at=r.resolved_at,
                resolved_by=r.resolved_by,
                resolution=r.resolution,
                reason=r.reason,
                journal_id=r.journal_id,
                match_id=r.match_id,
            )
            for r in rows
        ]
