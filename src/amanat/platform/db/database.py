"""Unit of work: one database transaction per business action.

``Database.write()`` yields a connection inside a transaction that commits when the block
exits normally and rolls back on any exception, so a state change, its audit record and its
outbox rows are durable together or not at all. On SQLite a write transaction is begun with
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, cast

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool

from amanat.kernel.errors import Contention, Unavailable
from amanat.platform.db.deferred_lookup import DeferredLookup
from amanat.platform.db.engine import POOL_RECYCLE_SECONDS, SQLITE_BEGIN_OPTION
from amanat.platform.db.lookup_lane import LookupLane
from amanat.platform.db.sqlite_driver import HybridConnection

log = structlog.get_logger("amanat.db")

# PostgreSQL gave up on the transaction so that others can go on: deadlock_detected,
# serialization_failure, lock_not_available (lock_timeout), query_canceled
# (statement_timeout) and idle_in_transaction_session_timeout. Nothing was committed.
_CONTENTION_SQLSTATES = frozenset({"40P01", "40001", "55P03", "57014", "25P03"})


# The server refuses new sessions for now: too many connections, starting up or shutting
# down (besides class 08, connection exceptions).
_REFUSING_SQLSTATES = frozenset({"53300", "57P01", "57P02", "57P03"})


def _unreachable(exc: BaseException) -> bool:
    """Connecting failed in a way that may pass: the server unreachable or refusing
    sessions for now (a wrong password or database name is not that: it stays a 500)."""
    if isinstance(exc, ssl.SSLError):
        return False  # a certificate or TLS setting that is wrong stays wrong
    if isinstance(exc, OSError):
        return True  # refused, unreachable, timed out; a host name not resolving too
    sqlstate = str(getattr(driver_error(exc), "sqlstate", None) or "")
    return sqlstate.startswith("08") or sqlstate in _REFUSING_SQLSTATES


def driver_error(exc: BaseException) -> BaseException:
    """The driver's own error under a SQLAlchemy one (``exc`` itself if none)."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "driver_exception", None) or orig or exc


async def _close_all(connections: list[AsyncConnection]) -> None:
    """Close every one of ``connections`` into the pool, all of them even if this task is
    cancelled meanwhile or one of them fails to close."""
    if connections:
        closing = asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
        await asyncio.shield(closing)


def _described(exc: BaseException) -> dict[str, str]:
    """The driver error's class and SQLSTATE, for the log (never its message: it may
    name the host, user or database)."""
    error = driver_error(exc)
    described = {"error": type(error).__name__}
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate:
        described["sqlstate"] = str(sqlstate)
    return described


def contention(exc: DBAPIError) -> Contention | None:
    """The retryable error a database refusal stands for, if it is one of contention."""
    return contention_of(getattr(exc.orig, "sqlstate", None))


def contention_of(sqlstate: object) -> Contention | None:
    """The retryable error a refusal with ``sqlstate`` stands for, if it is one of
    contention (the driver's own error, when a statement bypassed SQLAlchemy)."""
    if sqlstate in _CONTENTION_SQLSTATES:
        return Contention("The database is busy with concurrent requests; retry in a moment.")
    return None


async def pooled_connection(conn: AsyncConnection) -> Any:
    """The pool's connection under ``conn``, read off it when it is open and valid (no
    greenlet switch, as ``get_raw_connection()`` makes), else through SQLAlchemy, which
    revalidates it."""
    sync = conn.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        return sync.connection
    return await conn.get_raw_connection()


async def hybrid_of(conn: AsyncConnection) -> HybridConnection | None:
    """The SQLite :class:`HybridConnection` under ``conn``, or None (PostgreSQL, a database
    in memory)."""
    if conn.dialect.name != "sqlite":
        return None
    driver = (await pooled_connection(conn)).driver_connection
    return driver if isinstance(driver, HybridConnection) else None


class Database:
    def __init__(self, engine: AsyncEngine, *, write_wait_seconds: float = 10.0) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # SQLite has one write lock, and a writer that finds it taken sleeps and polls
        # (1, 2, 5 ... 100 ms): under concurrency most of the time goes to those sleeps.
        # Writers of this process queue here instead, in order, and wake the moment the
        # previous one commits; other processes still meet the busy timeout.
        self._writers = asyncio.Lock() if self.is_sqlite else None
        self._write_wait = write_wait_seconds
        self._lane = (
            None
            if self.is_sqlite
            else LookupLane(
                engine,
                size=engine.pool.size() if isinstance(engine.pool, QueuePool) else 1,
                recycle_seconds=POOL_RECYCLE_SECONDS,
            )
        )

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if self._writers is None:
            async with self._write() as conn:
                yield conn
            return
        try:
            async with asyncio.timeout(self._write_wait):
                await self._writers.acquire()
        except TimeoutError:
            raise Unavailable("The database is busy; retry in a moment.") from None
        try:
            async with self._write() as conn:
                yield conn
        finally:
            self._writers.release()

    async def _open(self, engine: AsyncEngine | None = None) -> AsyncConnection:
        """A pooled connection. The refusals that a retry may get past answer 503 with
        ``Retry-After``, not 500: every connection busy past the pool timeout, and the
        database unreachable or refusing sessions for now."""
        try:
            async with self.about_to_connect():
                return await (engine or self.engine).connect()
        except PoolTimeout:
            # Every pooled connection stayed busy past the pool timeout: nothing was done
            # yet, so a 503 the client may retry, not a 500.
            raise Unavailable("The database is busy; retry in a moment.") from None
        except Exception as exc:
            if not _unreachable(exc):
                raise
            log.warning("database.unreachable", **_described(exc))
            raise Unavailable("The database cannot be reached; retry in a moment.") from None

    @staticmethod
    def _retryable(exc: DBAPIError) -> Unavailable | None:
        """The 503 a failed statement stands for, if a retry may get past it: contention
        (see :func:`contention`), or the connection lost mid-request (a restart, a
        failover), where a write's outcome is unknown but its idempotency key makes the
        retry safe."""
        retry: Unavailable | None = contention(exc)
        if retry is None and exc.connection_invalidated:
            log.warning("database.connection_lost", **_described(exc))
            retry = Unavailable(
                "The connection to the database was lost. A request with an "
                "Idempotency-Key may be retried with the same key; without one it may "
                "or may not have been applied: read the resource before repeating it."
            )
        return retry

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        conn = await self._open()
        try:
            try:
                yield conn
            finally:
                # AsyncConnection's own context exit (its `async with` would connect
                # again): back to the pool, waited for even when this task is cancelled.
                await conn.__aexit__(None, None, None)
        except DBAPIError as exc:
            retry = self._retryable(exc)
            if retry is None:
                raise
            raise retry from None

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._connection() as conn:
                if not self.is_sqlite:
                    async with conn.begin():
                        yield conn
                    return
                conn = await conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
                # The write transaction runs inline (platform/db/sqlite_driver.py).
                hybrid = await hybrid_of(conn)
                if hybrid is not None:
                    hybrid.inline = True
                try:
                    async with conn.begin():
                        yield conn
                finally:
                    if hybrid is not None:
                        hybrid.inline = False
        except OperationalError as exc:
            # SQLite's one write lock stayed taken past the busy timeout: a 503 the client
            # may retry (nothing was written), not a 500.
            if self.is_sqlite and "database is locked" in str(exc.orig):
                raise Unavailable("The database is busy; retry in a moment.") from None
            raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._connection() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction in which every statement sees the database as of its first:
        REPEATABLE READ on PostgreSQL; SQLite's deferred read transaction (WAL) already is."""
        async with self._connection() as conn:
            if not self.is_sqlite:
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def lookup(self) -> AsyncIterator[AsyncConnection]:
        """A connection outside any transaction, for one read statement: PostgreSQL runs it
        in autocommit (no BEGIN and COMMIT round trips), on a connection of the lookup
        lane (:mod:`~amanat.platform.db.lookup_lane`); SQLite wraps it in its own implicit
        read transaction (we issue no BEGIN)."""
        if self._lane is None:
            async with self._connection() as conn:
                conn = await conn.execution_options(**{SQLITE_BEGIN_OPTION: None})
                yield conn
            return
        lane = self._lane
        taken = lane.take()
        try:
            await _close_all(lane.stale())
        except BaseException:
            if taken is not None and not lane.keep(taken):  # still idle and clean
                lane.set_aside(taken)  # closed by the next lookup, or when the pool goes
            raise
        conn = taken if taken is not None else await self._open(lane.engine)
        kept = False
        try:
            try:
                yield conn
                if conn.in_transaction():
                    await conn.rollback()  # SQLAlchemy's own; nothing on the server
                kept = lane.keep(conn)
            finally:
                if not kept:
                    await conn.__aexit__(None, None, None)
        except DBAPIError as exc:
            retry = self._retryable(exc)
            if exc.connection_invalidated:
                # Opened before the loss like this one: the pool replaces them.
                await _close_all(lane.drain())
            if retry is None:
                raise
            raise retry from None

    def deferred_lookup(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """:meth:`lookup`, its connection taken by its first statement (deferred_lookup.py):
        a lookup that sends nothing (a read another request's statement answers) holds
        none. SQLite: :meth:`lookup` itself."""
        if self._lane is None:
            return self.lookup()
        # Typed as the connection it stands in for: it offers what a lookup's statements
        # use, and anything else once a statement has taken the connection.
        return cast(
            AbstractAsyncContextManager[AsyncConnection],
            DeferredLookup(self._lane.engine, self.lookup),
        )

    @asynccontextmanager
    async def about_to_connect(self) -> AsyncIterator[None]:
        """Around a checkout from the pool: while it lasts this task counts among those
        the lookup lane leaves connections to (``LookupLane.waiting``), and first, when
        the pool has no connection left for it, one the lane holds idle is closed into
        the pool, so this task gets it at once."""
        lane = self._lane
        if lane is None:
            yield
            return
        lane.waiting += 1
        try:
            await _close_all(lane.give_back())
            yield
        finally:
            lane.waiting -= 1

    async def ping(self) -> None:
        conn = await self._open()
        try:
            await conn.execute(sa.text("SELECT 1"))
        finally:
            await conn.__aexit__(None, None, None)

    async def dispose(self) -> None:
        if self._lane is not None:
            await _close_all(self._lane.drain(close=True))
        await self.engine.dispose()
