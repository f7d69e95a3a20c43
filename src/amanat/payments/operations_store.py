"""The SQL behind :mod:`amanat.payments.operations` (``tx.payment_operations``).

Read-only aggregates over ``payments`` and ``payment_transitions``. Each query starts from
the ``(status, updated_at)`` index: a payment that finished in a window has its final
status and was last changed in or after it (a payout or refund never changes after it is
final; a collection may, when it is refunded, so its success time is read from its
transition). A window ``(since, until]`` includes its end: what happened at the instant
the page was asked for is on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.payments.domain.payments import PaymentStatus, PaymentType
from amanat.payments.operations import FinishedGroup, Impact, Stuck, StuckPayment
from amanat.payments.tables import payment_transitions, payments

S = PaymentStatus
MOVES_LIKE_PAYOUT = (PaymentType.PAYOUT.value, PaymentType.REFUND.value)
IN_FLIGHT = (S.PENDING.value, S.PROCESSING.value)
FINISHED = (S.SUCCEEDED.value, S.FAILED.value)
p = payments


def _stuck(before: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(
            p.c.type.in_(MOVES_LIKE_PAYOUT),
            p.c.status.in_(IN_FLIGHT),
            p.c.updated_at < before,
        ),
        sa.and_(
            p.c.type == PaymentType.COLLECTION.value,
            p.c.status == S.PENDING.value,
            p.c.updated_at < before,
        ),
        sa.and_(p.c.status == S.AWAITING_APPROVAL.value, p.c.expires_at < before),
    )


def _failed_between(since: datetime, until: datetime) -> sa.ColumnElement[bool]:
    # Failed is final and never changes again: its last change is its failure.
    return sa.and_(p.c.status == S.FAILED.value, p.c.updated_at > since, p.c.updated_at <= until)


_STUCK_SINCE = sa.case(
    (p.c.status == S.AWAITING_APPROVAL.value, p.c.expires_at), else_=p.c.updated_at
)


def _seconds_between(conn: AsyncConnection, later: Any, earlier: Any) -> Any:
    if conn.dialect.name == "sqlite":
        return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86_400.0
    return sa.extract("epoch", later - earlier)


class SqlPaymentOperationsRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def finished(self, since: datetime, until: datetime) -> list[FinishedGroup]:
        t = payment_transitions
        stmt = (
            sa.select(
                p.c.type,
                p.c.status,
                p.c.failure_code,
                p.c.bank_code,
                p.c.partner_id,
                sa.func.count().label("n"),
                sa.func.coalesce(sa.func.sum(p.c.amount), 0).label("amount"),
            )
            .select_from(p.join(t, sa.and_(t.c.payment_id == p.c.id, t.c.to_status == p.c.status)))
            .where(
                p.c.status.in_(FINISHED),
                p.c.updated_at > since,
                t.c.at > since,
                t.c.at <= until,
            )
            .group_by(p.c.type, p.c.status, p.c.failure_code, p.c.bank_code, p.c.partner_id)
        )
        rows = (await self._conn.execute(stmt)).all()
        return [
            FinishedGroup(
                type=r.type,
                status=r.status,
                failure_code=r.failure_code,
                bank_code=r.bank_code,
                partner_id=r.partner_id,
                count=int(r.n),
                amount=int(r.amount),
            )
            for r in rows
        ]

    async def stuck(self, before: datetime, now: datetime, limit: int) -> Stuck:
        condition = _stuck(before)
        total = (
            await self._conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(p.c.amount), 0)).where(
                    condition
                )
            )
        ).one()
        rows = (
            await self._conn.execute(
                sa.select(
                    p.c.id,
                    p.c.partner_id,
                    p.c.type,
                    p.c.status,
                    p.c.amount,
                    p.c.currency,
                    p.c.bank_code,
                    _STUCK_SINCE.label("since"),
                    p.c.updated_at,
                    p.c.expires_at,
                )
                .where(condition)
                .order_by(_STUCK_SINCE, p.c.id)
                .limit(limit)
            )
        ).all()
        oldest = [
            StuckPayment(
                id=r.id,
                partner_id=r.partner_id,
                type=r.type,
                status=r.status,
                amount=int(r.amount),
                currency=r.currency,
                bank_code=r.bank_code,
                # Read through the column types (a CASE comes back raw on SQLite).
                since=r.expires_at if r.status == S.AWAITING_APPROVAL.value else r.updated_at,
            )
            for r in rows
        ]
        return Stuck(count=int(total[0]), amount=int(total[1]), oldest=oldest)

    async def impact(
        self, since: datetime, until: datetime, stuck_before: datetime, now: datetime
    ) -> Impact:
        failed = _failed_between(since, until)
        is_failed = p.c.status == S.FAILED.value
        row = (
            await self._conn.execute(
                sa.select(
                    sa.func.count(sa.distinct(p.c.partner_id)),
                    sa.func.count(sa.distinct(p.c.counterparty_id)),
                    sa.func.coalesce(sa.func.sum(sa.case((is_failed, p.c.amount), else_=0)), 0),
                    sa.func.coalesce(sa.func.sum(sa.case((is_failed, 0), else_=p.c.amount)), 0),
                ).where(sa.or_(failed, _stuck(stuck_before)))
            )
        ).one()
        return Impact(
            partners=int(row[0]),
            customers=int(row[1]),
            failed_amount=int(row[2]),
            stuck_amount=int(row[3]),
        )

    async def in_flight_at(self, points: Sequence[datetime]) -> list[int]:
        if not points:
            return []
        first, last = min(points), max(points)
        open_now = p.c.status.in_(IN_FLIGHT)
        columns = [
            sa.func.coalesce(
                sa.func.sum(
                    sa.case(
                        (
                            sa.and_(
                                p.c.created_at <= point, sa.or_(open_now, p.c.updated_at > point)
                            ),
                            1,
                        ),
                        else_=0,
                    )
                ),
                0,
            )
            for point in points
        ]
        stmt = sa.select(*columns).where(
            p.c.type.in_(MOVES_LIKE_PAYOUT),
            p.c.created_at <= last,
            # In flight now, or final (any way) after the first instant.
            sa.or_(open_now, p.c.updated_at > first),
        )
        row = (await self._conn.execute(stmt)).one()
        return [int(v) for v in row]

    async def recovered_durations(
        self, since: datetime, until: datetime, longer_than_seconds: float
    ) -> list[float]:
        took = _seconds_between(self._conn, p.c.updated_at, p.c.created_at)
        stmt = sa.select(took.label("took")).where(
            p.c.type.in_(MOVES_LIKE_PAYOUT),
            p.c.status == S.SUCCEEDED.value,
            p.c.updated_at > since,
            p.c.updated_at <= until,
            took > longer_than_seconds,
        )
        # To the millisecond: SQLite's julianday arithmetic is a float.
        return sorted(round(float(r.took), 3) for r in (await self._conn.execute(stmt)).all())
