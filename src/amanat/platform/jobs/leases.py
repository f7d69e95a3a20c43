"""Job leases: a periodic job runs only where its lease was won (compare-and-set)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.db.dialect import insert_if_absent
from amanat.platform.jobs.tables import job_leases


class SqlLeaseRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def acquire(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        created = await self._conn.execute(
            insert_if_absent(self._conn, job_leases),
            {"name": name, "owner": owner, "leased_until": until, "last_started_at": now},
        )
        if created.rowcount:
            return True
        taken = await self._conn.execute(
            job_leases.update()
            .where(job_leases.c.name == name, job_leases.c.leased_until <= now)
            .values(owner=owner, leased_until=until, last_started_at=now)
        )
        return bool(taken.rowcount)

    async def finish(
        self, name: str, owner: str, now: datetime, next_free: datetime, outcome: str
    ) -> None:
        await self._conn.execute(
            job_leases.update()
            .where(job_leases.c.name == name, job_leases.c.owner == owner)
            .values(leased_until=next_free, last_finished_at=now, last_outcome=outcome[:500])
        )
