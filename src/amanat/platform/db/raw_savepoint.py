"""A savepoint sent through asyncpg directly, inside a transaction SQLAlchemy has begun.

Every payout batch takes the balance shards no other transaction holds inside a savepoint
(payments/store.py, ``lock_free_shards``): SAVEPOINT, the locking read, RELEASE. Through
SQLAlchemy's ``begin_nested()`` each of the two commands is a statement through its async
layer (compiled, executed in a greenlet, its result built): in a py-spy profile of the
payout bench, about 2 % of the API's CPU. asyncpg sends each as one simple-query message.
Measured on one connection inside a transaction, 3,000 times over three trials:
``begin_nested()`` and its commit took 379-449 us of CPU, the two messages 40-57 us.

SQLAlchemy does not know of this savepoint and does not need to: its owner releases it,
or rolls back to it, before the transaction ends, and a transaction that fails in between
ends the savepoint with it. Anywhere SQLAlchemy's transaction has not begun on PostgreSQL
(SQLite, no BEGIN sent yet), :func:`begin_savepoint` falls back to ``begin_nested()``.
Hand-written: SQLAlchemy offers no cheaper savepoint, and asyncpg's own nested
``transaction()`` would need the outer transaction to be asyncpg's too.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.db.raw_read import driver_errors, pg_driver

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Savepoint(Protocol):
    """What its owner does with a savepoint: keep what ran since (``commit``: RELEASE) or
    undo it, row locks included (``rollback``)."""

    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class RawSavepoint:
    __slots__ = ("_conn", "_driver", "_name", "_open")

    def __init__(self, conn: AsyncConnection, driver: Any, name: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"not a plain savepoint name: {name!r}")
        self._conn = conn
        self._driver = driver
        self._name = name
        self._open = False

    async def _send(self, sql: str) -> None:
        async with driver_errors(self._conn, self._driver, sql):
            await self._driver.execute(sql)

    async def begin(self) -> RawSavepoint:
        await self._send(f"SAVEPOINT {self._name}")
        self._open = True
        return self

    async def commit(self) -> None:
        """RELEASE: what ran since the savepoint stays with the transaction."""
        if self._open:
            self._open = False
            await self._send(f"RELEASE SAVEPOINT {self._name}")

    async def rollback(self) -> None:
        """Undo what ran since the savepoint, its row locks included, and end it."""
        if self._open:
            self._open = False
            await self._send(f"ROLLBACK TO SAVEPOINT {self._name}; RELEASE SAVEPOINT {self._name}")


async def begin_savepoint(conn: AsyncConnection, name: str) -> Savepoint:
    """A savepoint in ``conn``'s transaction: sent through asyncpg when SQLAlchemy's
    transaction has begun on PostgreSQL, else SQLAlchemy's ``begin_nested()``."""
    driver = await pg_driver(conn) if conn.in_transaction() else None
    if driver is None or not driver.is_in_transaction():
        return await conn.begin_nested()
    return await RawSavepoint(conn, driver, name).begin()
