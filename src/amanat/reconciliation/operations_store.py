"""The SQL behind :mod:`amanat.reconciliation.operations` (``tx.recon_operations``): open
breaks by age, on the ``(status, opened_at)`` index."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.reconciliation.operations import OldestBreak, OpenBreaks
from amanat.reconciliation.tables import recon_breaks

b = recon_breaks
OPEN = "open"


class SqlReconOperationsRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def open_breaks(self, aged_before: datetime) -> OpenBreaks:
        aged = sa.case((b.c.opened_at <= aged_before, 1), else_=0)
        count, amount, aged_count = (
            await self._conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(b.c.amount), 0),
                    sa.func.coalesce(sa.func.sum(aged), 0),
                ).where(b.c.status == OPEN)
            )
        ).one()
        row = (
            await self._conn.execute(
                sa.select(b.c.id, b.c.kind, b.c.source, b.c.amount, b.c.currency, b.c.internal_id)
                .add_columns(b.c.opened_at)
                .where(b.c.status == OPEN)
                .order_by(b.c.opened_at, b.c.id)
                .limit(1)
            )
        ).first()
        return OpenBreaks(
            open=int(count),
            open_amount=int(amount),
            aged=int(aged_count),
            aged_before=aged_before,
            oldest=None
            if row is None
            else OldestBreak(
                id=row.id,
                kind=row.kind,
                source=row.source,
                amount=int(row.amount),
                currency=row.currency,
                payment_id=row.internal_id,
                opened_at=row.opened_at,
            ),
        )
