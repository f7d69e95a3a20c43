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


def hear_termination_notice(driver: asyncpg.Connection) -> None:
    """Put ``driver`` where a restart leaves a connection for a moment: its backend's
    termination notice (a FATAL ErrorResponse, SQLSTATE 57P01) read, the socket's end not
    yet. The notice is handed to asyncpg's protocol as the socket would hand it, so the
    connection's state is asyncpg's own; the backend is ended too, as it is by then."""
    fields = b"".join(
        code + text.encode() + b"\0"
        for code, text in (
            (b"S", "FATAL"),
            (b"V", "FATAL"),
            (b"C", "57P01"),
            (b"M", "terminating connection due to administrator command"),
        )
    )
    body = fields + b"\0"
    driver._protocol.data_received(b"E" + (len(body) + 4).to_bytes(4, "big") + body)
