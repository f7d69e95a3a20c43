"""Webhooks' reads for a transaction's timeline, in SQL: the events raised about an
object, their deliveries, each delivery's attempts and the endpoints' URLs. Indexed
lookups only (events by object, deliveries by event, attempts by delivery)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.webhooks.tables import events, webhook_attempts, webhook_deliveries, webhook_endpoints
from amanat.webhooks.timeline import AttemptRow, DeliveryRow, EventRow

_EVENT_COLUMNS = (events.c.id, events.c.type, events.c.object_version, events.c.created_at)
_d = webhook_deliveries.c
_a = webhook_attempts.c


class SqlWebhookHistory:
    """Repository ``webhook_history`` (webhooks/wiring.py)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def events(self, object_id: str) -> list[EventRow]:
        """Events about ``object_id``, and the event whose id it is."""
        rows = await self._conn.execute(
            sa.select(*_EVENT_COLUMNS)
            .where(sa.or_(events.c.object_id == object_id, events.c.id == object_id))
            .order_by(events.c.created_at, events.c.id)
        )
        return [EventRow(r.id, r.type, r.object_version, r.created_at) for r in rows]

    async def deliveries(self, event_ids: Sequence[str]) -> list[DeliveryRow]:
        if not event_ids:
            return []
        rows = await self._conn.execute(
            sa.select(
                _d.id,
                _d.event_id,
                _d.endpoint_id,
                _d.trigger,
                _d.status,
                _d.attempts,
                _d.created_at,
                webhook_endpoints.c.url,
            )
            .join(webhook_endpoints, webhook_endpoints.c.id == _d.endpoint_id)
            .where(_d.event_id.in_(list(event_ids)))
            .order_by(_d.created_at, _d.id)
        )
        return [
            DeliveryRow(
                r.id,
                r.event_id,
                r.endpoint_id,
                r.url,
                r.trigger,
                r.status,
                r.attempts,
                r.created_at,
            )
            for r in rows
        ]

    async def attempts(self, delivery_ids: Sequence[str]) -> list[AttemptRow]:
        """Each attempt: when, its answer's status and latency, or its error class (never
        the response excerpt, which is the receiver's text)."""
        if not delivery_ids:
            return []
        rows = await self._conn.execute(
            sa.select(
                _a.delivery_id,
                _a.attempt,
                _a.started_at,
                _a.status_code,
                _a.latency_ms,
                _a.error_class,
            )
            .where(_a.delivery_id.in_(list(delivery_ids)))
            .order_by(_a.id)
        )
        return [
            AttemptRow(
                r.delivery_id, r.attempt, r.started_at, r.status_code, r.latency_ms, r.error_class
            )
            for r in rows
        ]
