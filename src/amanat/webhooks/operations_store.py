"""The SQL behind :mod:`amanat.webhooks.operations` (``tx.webhook_operations``).

Read-only aggregates over the delivery queue and its attempts. The queue's questions
(how many pending, the oldest, per endpoint) use the pending-queue index; the failure
counts read the window's attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.webhooks.domain.endpoints import DeliveryStatus
from amanat.webhooks.operations import (
    Backlog,
    DisabledEndpoint,
    EndpointBacklog,
    EndpointFailures,
    OldestDelivery,
    host_of,
)
from amanat.webhooks.tables import events, webhook_attempts, webhook_deliveries, webhook_endpoints

d = webhook_deliveries
e = webhook_endpoints
a = webhook_attempts
PENDING = DeliveryStatus.PENDING.value
FAILED = DeliveryStatus.FAILED.value


class SqlWebhookOperationsRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def endpoint_failures(self, since: datetime, until: datetime) -> list[EndpointFailures]:
        ok = sa.and_(a.c.status_code >= 200, a.c.status_code < 300)
        attempts = (
            await self._conn.execute(
                sa.select(
                    d.c.endpoint_id,
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(sa.case((ok, 0), else_=1)), 0),
                )
                .select_from(a.join(d, d.c.id == a.c.delivery_id))
                .where(a.c.started_at > since, a.c.started_at <= until)
                .group_by(d.c.endpoint_id)
            )
        ).all()
        gave_up = (
            await self._conn.execute(
                sa.select(d.c.endpoint_id, sa.func.count())
                .where(d.c.status == FAILED, d.c.updated_at > since, d.c.updated_at <= until)
                .group_by(d.c.endpoint_id)
            )
        ).all()
        counts: dict[str, list[int]] = {}
        for endpoint_id, total, failed in attempts:
            counts.setdefault(endpoint_id, [0, 0, 0])[0:2] = [int(total), int(failed)]
        for endpoint_id, n in gave_up:
            counts.setdefault(endpoint_id, [0, 0, 0])[2] = int(n)
        if not counts:
            return []
        endpoints = (
            await self._conn.execute(
                sa.select(e.c.id, e.c.partner_id, e.c.url, e.c.enabled).where(
                    e.c.id.in_(list(counts))
                )
            )
        ).all()
        return [
            EndpointFailures(
                endpoint_id=row.id,
                partner_id=row.partner_id,
                host=host_of(row.url),
                enabled=bool(row.enabled),
                attempts=counts[row.id][0],
                failed_attempts=counts[row.id][1],
                gave_up=counts[row.id][2],
            )
            for row in endpoints
        ]

    async def backlog(self) -> Backlog:
        held_case = sa.case((e.c.enabled.is_(False), 1), else_=0)
        pending, held = (
            await self._conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(held_case), 0))
                .select_from(d.join(e, e.c.id == d.c.endpoint_id))
                .where(d.c.status == PENDING)
            )
        ).one()
        oldest = (
            await self._conn.execute(
                sa.select(d.c.id, d.c.endpoint_id, e.c.url, d.c.event_type, events.c.object_id)
                .add_columns(d.c.created_at)
                .select_from(
                    d.join(e, e.c.id == d.c.endpoint_id).join(events, events.c.id == d.c.event_id)
                )
                # Held deliveries wait for their endpoint by design (it has its own alert).
                .where(d.c.status == PENDING, e.c.enabled.is_(True))
                .order_by(d.c.created_at, d.c.id)
                .limit(1)
            )
        ).first()
        return Backlog(
            pending=int(pending),
            held=int(held),
            oldest=None
            if oldest is None
            else OldestDelivery(
                delivery_id=oldest.id,
                endpoint_id=oldest.endpoint_id,
                host=host_of(oldest.url),
                event_type=oldest.event_type,
                object_id=oldest.object_id,
                created_at=oldest.created_at,
            ),
        )

    async def pending_at(self, points: Sequence[datetime]) -> list[int]:
        if not points:
            return []
        first, last = min(points), max(points)
        open_now = d.c.status == PENDING
        columns = [
            sa.func.coalesce(
                sa.func.sum(
                    sa.case(
                        (
                            sa.and_(
                                d.c.created_at <= point, sa.or_(open_now, d.c.updated_at > point)
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
        # A settled delivery's last change is its settlement.
        stmt = sa.select(*columns).where(
            d.c.created_at <= last, sa.or_(open_now, d.c.updated_at > first)
        )
        return [int(v) for v in (await self._conn.execute(stmt)).one()]

    async def aged_backlogs(self, before: datetime, limit: int) -> list[EndpointBacklog]:
        oldest = sa.func.min(d.c.created_at)
        rows = (
            await self._conn.execute(
                sa.select(
                    d.c.endpoint_id,
                    e.c.partner_id,
                    e.c.url,
                    sa.func.count().label("n"),
                    oldest.label("oldest"),
                )
                .select_from(d.join(e, e.c.id == d.c.endpoint_id))
                .where(d.c.status == PENDING, e.c.enabled.is_(True), e.c.deleted_at.is_(None))
                .group_by(d.c.endpoint_id, e.c.partner_id, e.c.url)
                .having(oldest < before)
                .order_by(oldest, d.c.endpoint_id)
                .limit(limit)
            )
        ).all()
        return [
            EndpointBacklog(
                endpoint_id=r.endpoint_id,
                partner_id=r.partner_id,
                host=host_of(r.url),
                pending=int(r.n),
                oldest_at=r.oldest,
            )
            for r in rows
        ]

    async def disabled(self, limit: int) -> list[DisabledEndpoint]:
        held = (
            sa.select(sa.func.count())
            .where(d.c.endpoint_id == e.c.id, d.c.status == PENDING)
            .scalar_subquery()
        )
        rows = (
            await self._conn.execute(
                sa.select(
                    e.c.id,
                    e.c.partner_id,
                    e.c.url,
                    e.c.disabled_reason,
                    e.c.updated_at,
                    e.c.failing_since,
                    held.label("held"),
                )
                .where(e.c.enabled.is_(False), e.c.deleted_at.is_(None))
                .order_by(e.c.updated_at, e.c.id)
                .limit(limit)
            )
        ).all()
        return [
            DisabledEndpoint(
                endpoint_id=r.id,
                partner_id=r.partner_id,
                host=host_of(r.url),
                reason=r.disabled_reason,
                since=r.updated_at,
                held=int(r.held),
                failing_since=r.failing_since,
            )
            for r in rows
        ]
