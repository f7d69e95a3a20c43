"""Unit of work: one database transaction per business action.

``Database.write()`` yields a connection inside a transaction that commits when the block
exits normally and rolls back on any exception, so a state change, its audit record and its
outbox rows are durable together or not at all. On SQLite a write transaction is begun with
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from amanat.adapters.db.engine import SQLITE_BEGIN_OPTION
from amanat.domain.errors import Unavailable


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                if self.is_sqlite:
                    conn = await conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
                async with conn.begin():
                    yield conn
        except OperationalError as exc:
            # SQLite's one write lock stayed taken past the busy timeout: a 503 the client
            # may retry (nothing was written), not a 500.
            if self.is_sqlite and "database is locked" in str(exc.orig):
                raise Unavailable("The database is busy; retry in a moment.") from None
            raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
