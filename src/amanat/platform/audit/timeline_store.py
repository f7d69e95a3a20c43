"""The audit trail's reads for a transaction's timeline, in SQL: the records about one
target, chained (``audit_log``, by its target index) or still waiting in the inbox for
the sequencer (a handful at most while a worker runs)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.audit.domain import Actor, AuditRecord
from amanat.platform.audit.store import record_from_row
from amanat.platform.audit.tables import audit_inbox, audit_log


def _waiting(row: Any) -> AuditRecord:
    """An inbox record: committed, not yet given its place in the chain (seq 0)."""
    try:
        payload = json.loads(row.payload)
    except (TypeError, ValueError):
        payload = {}
    return AuditRecord(
        seq=0,
        id=row.id,
        occurred_at=row.occurred_at,
        actor=Actor(
            type=row.actor_type,
            id=row.actor_id,
            source_ip=row.source_ip,
            user_agent=row.user_agent,
            request_id=row.request_id,
        ),
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        payload=payload if isinstance(payload, dict) else {},
        prev_hash="",
    )


class SqlAuditHistory:
    """Repository ``audit_history`` (platform/wiring.py)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def about(self, target_id: str, limit: int) -> list[AuditRecord]:
        """The newest ``limit`` records about ``target_id``, in the order they committed:
        the chained ones by sequence number, then those still waiting in the inbox."""
        chained = await self._conn.execute(
            audit_log.select()
            .where(audit_log.c.target_id == target_id)
            .order_by(audit_log.c.seq.desc())
            .limit(limit)
        )
        found = [record_from_row(r) for r in reversed(chained.all())]
        waiting = await self._conn.execute(
            sa.select(audit_inbox)
            .where(audit_inbox.c.target_id == target_id)
            .order_by(audit_inbox.c.pos)
            .limit(limit)
        )
        found += [_waiting(r) for r in waiting]
        return found
