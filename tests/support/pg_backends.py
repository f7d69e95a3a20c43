"""Ending PostgreSQL backends from outside the pool under test, as a restart would."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine


async def end_backends(engine: AsyncEngine, pids: Sequence[int]) -> None:
    """End these backends and wait until they are gone. The admin connection is not the
    engine's: taken from its pool, it could be one of those it ends."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(url)
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", pids)
        for _ in range(100):  # a backend ends a moment after it is told to
            if not await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids)
            ):
                return
            await asyncio.sleep(0.02)
    finally:
        await admin.close()
