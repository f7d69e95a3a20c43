"""The connection of a lookup (``Database.lookup()``), taken when its first statement needs
one, so a lookup that ends up sending nothing holds no connection while it waits.

Most reads of a payment by id under load join a statement another request sends
(:mod:`~amanat.platform.db.keyed_read`): they need no connection of their own. Taken at the
start of the lookup, as before, each of them held one of the pool's connections while it
waited for its leader's answer. At 64 connections of load on two processes that is about
32 lookups in flight per process against a pool of 20: the pool ran dry, the lookup lane
could keep nothing idle, and each lookup built and tore down SQLAlchemy's connection
objects (and many waited for the pool). In a profile of the retrieve load, taking and
giving back the connection was a tenth of the API's CPU. With the connection deferred, a
follower takes none: in alternating partial runs the API's CPU per retrieve fell from
483-527 us to 350 us, and the retrieve rose from 3,065-3,370/s to 4,463/s.

:class:`DeferredLookup` stands in for the AsyncConnection a lookup yields. It offers what
a lookup's statements use (``execute``, ``scalar``, ``scalars``, ``exec_driver_sql``,
``get_raw_connection``...) and takes the connection, through ``Database.lookup()``
itself, on the first of them; everything else is the taken connection's. What did not
change: every rule of ``Database.lookup()`` (the lane, its error handling, a lost
connection emptying the lane) applies to the taken connection, and the block's outcome
reaches it at the end as before. What a lookup reads is still what is committed when the
statement runs. Only PostgreSQL defers: on SQLite reads run in process, none shares a
statement, and the lookup is the plain one.

Hand-written: SQLAlchemy's AsyncConnection takes its connection on ``start()``, before
any statement, and offers no lazy mode.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class DeferredLookup:
    """``async with`` it as with ``Database.lookup()``; statements on it take the
    connection (see the module)."""

    __slots__ = ("_cm", "_conn", "_lookup", "_taking", "engine")

    def __init__(
        self,
        engine: AsyncEngine,
        lookup: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    ) -> None:
        self.engine = engine
        self._lookup = lookup
        self._cm: AbstractAsyncContextManager[AsyncConnection] | None = None
        self._conn: AsyncConnection | None = None
        self._taking = False

    @property
    def taken(self) -> AsyncConnection | None:
        """The connection, once a statement has taken it."""
        return self._conn

    async def connection(self) -> AsyncConnection:
        """The lookup's connection, taken now if no statement has taken it yet."""
        if self._conn is not None:
            return self._conn
        if self._taking:
            # Two statements of one lookup at once would each take a connection; on one
            # AsyncConnection they would fail too. A programming error, said plainly.
            raise RuntimeError("a lookup runs one statement at a time")
        self._taking = True
        try:
            cm = self._lookup()
            conn = await cm.__aenter__()
        finally:
            self._taking = False
        self._cm, self._conn = cm, conn
        return conn

    # What a statement needs to know before it is sent, without a connection.
    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @property
    def sync_engine(self) -> Any:
        return self.engine.sync_engine

    @property
    def sync_connection(self) -> Any:
        return None if self._conn is None else self._conn.sync_connection

    def in_transaction(self) -> bool:
        return self._conn is not None and self._conn.in_transaction()

    # The statements: each takes the connection first.
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).scalar(*args, **kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).scalars(*args, **kwargs)

    async def exec_driver_sql(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).exec_driver_sql(*args, **kwargs)

    async def get_raw_connection(self) -> Any:
        return await (await self.connection()).get_raw_connection()

    async def run_sync(self, *args: Any, **kwargs: Any) -> Any:
        return await (await self.connection()).run_sync(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Anything else is the taken connection's; before a statement there is none.
        conn = self._conn
        if conn is None:
            raise AttributeError(
                f"{name!r}: a lookup's connection is taken by its first statement, and "
                "none has run yet"
            )
        return getattr(conn, name)

    async def __aenter__(self) -> DeferredLookup:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        cm, self._cm, self._conn = self._cm, None, None
        if cm is None:
            return None
        return await cm.__aexit__(kind, error, traceback)
