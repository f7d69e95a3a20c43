"""A read of one row by its key that requests of this process asking at the same moment
share: on PostgreSQL, outside a transaction, their keys go as one statement.

Under load, many requests reach the same hot read (``GET /v1/payments/{id}``) within one
turn of the event loop, each on its own lookup connection. Alone, each read is a round
trip: a write and a read system call on each side, and a statement PostgreSQL binds and
executes. Profiled under the retrieve load, asyncpg's part of a read was the largest
single item of the API's CPU (about a fifth), and PostgreSQL spent about 100 us a read.
Here the first request to ask becomes the batch's leader: it takes a connection, lets the
loop turn once, so that the requests of the same moment add their keys, then sends one
``WHERE key = ANY($1)`` and hands each follower its row. This is DataLoader's batching
(as GraphQL servers use it) done as a leader and followers; no maintained library does it
for a raw asyncpg read. Asked on a lookup whose connection is not taken yet
(``Database.deferred_lookup()``, which ``SqlTransactions.lookup()`` gives), a follower
takes no connection at all: only the leader does.

What it keeps:

- A read still sees every commit made before it was asked: the statement is sent after
  the last key joined.
- Only a connection outside any transaction (a lookup's) shares: a read inside a
  transaction must see that transaction's own writes, and runs alone on it. SQLite
  reads in process, with no round trip to save, and always runs alone.
- A follower's answer is its own row or, when the leader did not get an answer (its
  connection failed, or its request was cancelled), the follower's own read, run alone:
  such an error reaches only the request whose read met it. The exception is a 503
  (the database cancelled the statement, a timeout, or the leader got no connection
  because the pool stayed busy or the database is unreachable): every request of the
  batch answers it, with ``Retry-After``, rather than each asking again of a database
  that is already behind. A follower cancelled while it waits leaves the batch as it
  was.
- At most :data:`MAX_KEYS` keys go in one statement; the next request opens a new batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.kernel.errors import Unavailable
from amanat.platform.db.database import pooled_connection
from amanat.platform.db.deferred_lookup import DeferredLookup
from amanat.platform.db.raw_read import RawRead

MAX_KEYS = 256

_Connect = Callable[[], Awaitable[AsyncConnection]]

_ALONE = object()  # the leader got no answer: each follower reads alone


class _Refused:
    """The database refused the shared statement (contention), or the leader could not
    get a connection (the pool busy past its timeout, the database unreachable): every
    follower answers the same 503 (a new exception each, with the same message)."""

    __slots__ = ("error",)

    def __init__(self, error: Unavailable) -> None:
        self.error = error


class _Batch:
    __slots__ = ("answered", "keys")

    def __init__(self, loop: asyncio.AbstractEventLoop, key: Any) -> None:
        self.keys = {key: None}  # an ordered set: one key asked twice is read once
        self.answered: asyncio.Future[Any] = loop.create_future()


class KeyedRead:
    """``SELECT <columns> ... WHERE <key> = :key`` that shares its round trip (see the
    module). ``statement`` selects the rows (with any further conditions); ``key`` is
    the column they are found by, unique among them, and must be one of the columns
    selected."""

    def __init__(self, statement: sa.Select[Any], key: sa.Column[Any]) -> None:
        names = [column.key for column in statement.selected_columns]
        if key.key not in names:
            raise ValueError("KeyedRead: the key column must be selected")
        self._position = names.index(key.key)
        self.alone = RawRead(statement.where(key == sa.bindparam("keyed_read_key")))
        # No length in the array's type: PostgreSQL cuts a value cast to VARCHAR(n) to n
        # characters, and an over-long key must find nothing, not its prefix's row.
        element = sa.String() if isinstance(key.type, sa.String) else key.type
        self._many = RawRead(
            statement.where(
                key == sa.any_(sa.bindparam("keyed_read_keys", type_=postgresql.ARRAY(element)))
            )
        )
        self._open: dict[object, _Batch] = {}  # by the pool the connections come from

    async def first(self, conn: AsyncConnection | DeferredLookup, key: Any) -> Any | None:
        """The row whose key is ``key``, or None. ``conn`` may be a lookup whose connection
        is not taken yet (``Database.deferred_lookup()``): a read that joins another's
        statement then takes none."""
        if isinstance(conn, DeferredLookup):
            taken = conn.taken
            if taken is None:
                # A lookup's connection: in autocommit by construction once taken.
                return await self._shared(conn.connection, conn.sync_engine.pool, key)
            conn = taken
        if not await _outside_a_transaction(conn):
            return await self.alone.first(conn, {"keyed_read_key": key})
        given = conn

        async def connect() -> AsyncConnection:
            return given

        return await self._shared(connect, conn.sync_engine.pool, key)

    async def _shared(self, connect: _Connect, pool: object, key: Any) -> Any | None:
        batch = self._open.get(pool)
        if batch is not None and len(batch.keys) < MAX_KEYS:
            batch.keys[key] = None
            return await self._follow(connect, batch, key)
        return await self._lead(connect, pool, key)

    async def _lead(self, connect: _Connect, pool: object, key: Any) -> Any | None:
        batch = self._open[pool] = _Batch(asyncio.get_running_loop(), key)
        try:
            try:
                # The requests of this turn of the loop join, and those that come while
                # the connection is taken (it may wait for the pool).
                conn = await connect()
                await asyncio.sleep(0)
            finally:
                if self._open.get(pool) is batch:
                    del self._open[pool]
            keys = list(batch.keys)
            if len(keys) == 1:
                row = await self.alone.first(conn, {"keyed_read_key": key})
                rows = [] if row is None else [row]
            else:
                rows = await self._many.all(conn, {"keyed_read_keys": keys})
        except Unavailable as exc:
            batch.answered.set_result(_Refused(exc))
            raise
        except BaseException:
            batch.answered.set_result(_ALONE)
            raise
        found = {row[self._position]: row for row in rows}
        batch.answered.set_result(found)
        return found.get(key)

    async def _follow(self, connect: _Connect, batch: _Batch, key: Any) -> Any | None:
        # Shielded: a follower cancelled while it waits must not cancel the others' answer.
        found = await asyncio.shield(batch.answered)
        if found is _ALONE:
            return await self.alone.first(await connect(), {"keyed_read_key": key})
        if isinstance(found, _Refused):
            raise type(found.error)(found.error.message)
        return found.get(key)


async def _outside_a_transaction(conn: AsyncConnection) -> bool:
    """Whether ``conn`` is a PostgreSQL connection in autocommit with no transaction of
    SQLAlchemy's or the driver's begun: a statement on it sees only committed rows, so
    another connection's statement sees the same."""
    if conn.dialect.name != "postgresql" or conn.in_transaction():
        return False
    adapted = (await pooled_connection(conn)).dbapi_connection
    return (
        adapted is not None
        and bool(getattr(adapted, "autocommit", False))
        and getattr(adapted, "_transaction", None) is None
    )
