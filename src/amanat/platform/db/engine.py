"""Engine construction: one code path for SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLite gets WAL, foreign keys, ``synchronous=FULL`` and a busy timeout on every
connection, and its transactions are begun by us: ``BEGIN IMMEDIATE`` for writes (the
write lock is taken up front, so two writers never deadlock upgrading a read lock), a
plain deferred ``BEGIN`` for reads, and none for a single-statement lookup.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from amanat.platform.db.sqlite_driver import hybrid_creator
from amanat.platform.settings import DatabaseSettings

SQLITE_BEGIN_OPTION = "amanat_sqlite_begin"
# A pooled connection older than this is replaced at checkout (and is not handed on by
# the lookup lane, platform/db/lookup_lane.py).
POOL_RECYCLE_SECONDS = 1800.0


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    if settings.is_sqlite:
        return _sqlite_engine(settings)
    return create_async_engine(
        settings.url,
        echo=settings.echo,
        # Bound values carry personal data; SQL logs and errors must never show them.
        hide_parameters=True,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        # No pre-ping: it costs a round trip on every checkout. A connection the server
        # dropped fails once, and SQLAlchemy then discards the whole pool.
        pool_recycle=POOL_RECYCLE_SECONDS,
        connect_args={"server_settings": _postgres_session_settings(settings)},
    )


def _postgres_session_settings(settings: DatabaseSettings) -> dict[str, str]:
    """Bounds every session puts on itself, so no statement, lock wait or abandoned
    transaction can hold rows (and with them other requests) for minutes."""
    return {
        "statement_timeout": str(settings.statement_timeout_ms),
        "lock_timeout": str(settings.lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.idle_in_transaction_timeout_ms),
    }


SQLITE_CACHE_KIB = 256


def _sqlite_engine(settings: DatabaseSettings) -> AsyncEngine:
    in_memory = ":memory:" in settings.url or settings.url.rstrip("/").endswith("sqlite+aiosqlite:")
    kwargs: dict[str, Any] = {"echo": settings.echo, "hide_parameters": True}
    if not in_memory:
        # Pooled: opening a connection starts a thread and runs four PRAGMAs, which cost
        # more than most transactions. Writers still queue on SQLite's one write lock.
        kwargs["poolclass"] = AsyncAdaptedQueuePool
        kwargs["pool_size"] = settings.pool_size
        kwargs["max_overflow"] = settings.max_overflow
        kwargs["pool_timeout"] = settings.pool_timeout_seconds
        # aiosqlite's connections, able to run a write transaction inline and to wait for
        # the write lock without sleeping in SQLite (platform/db/sqlite_driver.py). Not for
        # a database in memory: its one connection is shared by every task at once.
        (database,), connect_kwargs = SQLiteDialect_aiosqlite().create_connect_args(
            make_url(settings.url)
        )
        kwargs["async_creator"] = hybrid_creator(
            database, connect_kwargs, busy_timeout=settings.sqlite_busy_timeout_ms / 1000
        )
    engine = create_async_engine(settings.url, **kwargs)
    busy_timeout = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions are unreliable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # File databases: no busy handler, the driver waits for the lock itself without
        # blocking the loop. A database in memory has no other process to wait for.
        cursor.execute(f"PRAGMA busy_timeout = {0 if not in_memory else busy_timeout}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # Each pooled connection keeps its own page cache, 2 MiB by default: across a pool
        # of 20, up to 40 MB that a long-running server fills as it reads more pages (reads
        # by id spread over the table filled them all). The operating system caches the
        # file anyway; 256 KiB each keeps the indexes' upper pages. The bench measured no
        # loss against 1 MiB (payouts, reads by id, lists) and 16 MB less at its peak.
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        if mode is None:
            return  # Database.lookup(): one statement, in SQLite's own implicit transaction
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
