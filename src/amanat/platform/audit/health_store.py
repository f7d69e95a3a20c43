"""The SQL behind :mod:`amanat.platform.audit.health` (``tx.audit_health``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.audit.health import Note, Unsealed, Waiting
from amanat.platform.audit.tables import audit_inbox, audit_log, audit_seals

SEALED = "audit.sealed"


def _payload(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class SqlAuditHealthRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def latest_note(self, actions: Sequence[str]) -> Note | None:
        """The newest record of ``actions``, chained or still in the inbox. What waits in
        the inbox committed after everything chained, so a note there is the newest."""
        for table, order in ((audit_inbox, audit_inbox.c.pos), (audit_log, audit_log.c.seq)):
            row = (
                await self._conn.execute(
                    sa.select(table.c.id, table.c.action, table.c.occurred_at, table.c.payload)
                    .where(table.c.action.in_(list(actions)))
                    .order_by(order.desc())
                    .limit(1)
                )
            ).first()
            if row is not None:
                return Note(row.id, row.action, row.occurred_at, _payload(row.payload))
        return None

    async def oldest_waiting(self) -> Waiting | None:
        row = (
            await self._conn.execute(
                sa.select(audit_inbox.c.pos, audit_inbox.c.occurred_at)
                .order_by(audit_inbox.c.pos)
                .limit(1)
            )
        ).first()
        return None if row is None else Waiting(int(row.pos), row.occurred_at)

    async def oldest_unsealed(self) -> Unsealed | None:
        latest = (await self._conn.execute(sa.select(sa.func.max(audit_seals.c.seq)))).scalar()
        sealed_seq = int(latest or 0)
        own_record = sa.and_(audit_log.c.action == SEALED, audit_log.c.target_id == str(sealed_seq))
        row = (
            await self._conn.execute(
                sa.select(audit_log.c.occurred_at)
                .where(audit_log.c.seq > sealed_seq, ~own_record)
                .order_by(audit_log.c.seq)
                .limit(1)
            )
        ).first()
        return None if row is None else Unsealed(sealed_seq, row.occurred_at)
