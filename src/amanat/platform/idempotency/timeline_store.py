"""Idempotency's reads for a transaction's timeline, in SQL: the keyed API requests whose
stored answer created or acted on an object (``resource_id``, indexed)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.idempotency.tables import idempotency_keys
from amanat.platform.idempotency.timeline import ApiRequestRow

_c = idempotency_keys.c


class SqlIdempotencyHistory:
    """Repository ``idempotency_history`` (platform/wiring.py)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def requests_for(self, resource_id: str) -> list[ApiRequestRow]:
        rows = await self._conn.execute(
            sa.select(
                _c.client_id,
                _c.key,
                _c.method,
                _c.path,
                _c.response_status,
                _c.created_at,
                _c.replays,
                _c.last_replayed_at,
            )
            .where(_c.resource_id == resource_id)
            .order_by(_c.created_at, _c.id)
        )
        return [
            ApiRequestRow(
                client_id=r.client_id,
                key=r.key,
                method=r.method,
                path=r.path,
                status=r.response_status,
                created_at=r.created_at,
                replays=int(r.replays or 0),
                last_replayed_at=r.last_replayed_at,
            )
            for r in rows
        ]
