"""The outbox's SQL store: jobs that must follow a committed state change, claimed by any
number of workers without two taking the same job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.jobs.ports import OutboxJob
from amanat.platform.jobs.tables import outbox

_INSERT_OUTBOX = outbox.insert()


class SqlOutboxRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def enqueue(
        self, kind: str, subject_id: str, payload: dict[str, Any], run_at: datetime
    ) -> None:
        await self._conn.execute(
            _INSERT_OUTBOX,
            {
                "kind": kind,
                "subject_id": subject_id,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "run_at": run_at,
                "locked_until": None,
                "locked_by": None,
                "last_error": None,
                "created_at": run_at,
                "updated_at": run_at,
            },
        )

    async def claim(
        self, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[OutboxJob]:
        """Claim due jobs; two workers never claim the same job (SKIP LOCKED / CAS)."""
        due = sa.and_(
            outbox.c.status == "pending",
            outbox.c.run_at <= now,
            sa.or_(outbox.c.locked_until.is_(None), outbox.c.locked_until < now),
        )
        stmt = sa.select(outbox.c.id).where(due).order_by(outbox.c.run_at).limit(limit)
        if self._conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        ids = [r[0] for r in (await self._conn.execute(stmt)).all()]
        if not ids:
            return []
        rows = (
            await self._conn.execute(
                outbox.update()
                .where(outbox.c.id.in_(ids), due)
                .values(locked_until=lease_until, locked_by=owner, attempts=outbox.c.attempts + 1)
                .returning(
                    outbox.c.id,
                    outbox.c.kind,
                    outbox.c.subject_id,
                    outbox.c.payload,
                    outbox.c.attempts,
                )
            )
        ).all()
        return [
            OutboxJob(
                id=r.id,
                kind=r.kind,
                subject_id=r.subject_id,
                payload=dict(r.payload),
                attempts=r.attempts,
            )
            for r in rows
        ]

    async def finish(self, job_id: int, owner: str, now: datetime) -> None:
        await self._conn.execute(
            outbox.update()
            .where(outbox.c.id == job_id, outbox.c.locked_by == owner)
            .values(status="done", locked_until=None, updated_at=now)
        )

    async def retry(
        self,
        job_id: int,
        owner: str,
        run_at: datetime,
        error: str,
        now: datetime,
        *,
        dead: bool = False,
    ) -> None:
        # Only a job still waiting on its outcome: one whose finish committed although its
        # answer was lost with the connection is done, and running it again would repeat
        # its effect (a second submission to the rail).
        await self._conn.execute(
            outbox.update()
            .where(outbox.c.id == job_id, outbox.c.locked_by == owner, outbox.c.status == "pending")
            .values(
                status="dead" if dead else "pending",
                run_at=run_at,
                locked_until=None,
                last_error=error[:500],
                updated_at=now,
            )
        )

    async def pending_count(self, kind: str | None = None) -> int:
        stmt = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == "pending")
        if kind:
            stmt = stmt.where(outbox.c.kind == kind)
        return int((await self._conn.execute(stmt)).scalar_one())
