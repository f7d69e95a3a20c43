"""Compiled statements run straight on SQLite's connection, on the event loop's thread.

Through SQLAlchemy a statement on SQLite costs its execution context, a greenlet switch and
aiosqlite's cursor adapter, and outside a write transaction three trips to the
connection's thread, each waiting for the loop's next turn. The statement itself, an
indexed read or an insert of a batch's rows, takes SQLite some tens of microseconds. The
API's single event loop was spending about a fifth of its time on that layer while
creating payouts. So :mod:`~amanat.platform.db.raw_read` and
:mod:`~amanat.platform.db.raw_write` run their statements here on SQLite, as they run
them through asyncpg directly on PostgreSQL.

The SQL is SQLAlchemy's own, compiled by the connection's dialect, with the column types'
bind and result processors, so values are stored and read exactly as through SQLAlchemy.
The statement runs on the same sqlite3 connection, inside whatever transaction
SQLAlchemy began on it (``BEGIN`` is ours, see :mod:`~amanat.platform.db.engine`).
Only on a :class:`~amanat.platform.db.sqlite_driver.HybridConnection` (file databases);
a database in memory shares one connection between tasks and keeps SQLAlchemy's path.

A read on the loop's thread holds the loop while SQLite reads: microseconds from the page
cache, longer from a cold cache on a slow disk, which every request then waits for. That
is the trade for SQLite, the single-machine default; PostgreSQL's statements never block
the loop.

sqlite3's errors are raised as SQLAlchemy raises them (``IntegrityError``,
``OperationalError`` ...), parameters hidden, so callers and the unit of work treat
them the same whichever path ran the statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.db.sqlite_driver import HybridConnection

T = TypeVar("T")


async def fetch(
    conn: AsyncConnection,
    hybrid: HybridConnection,
    sql: str,
    args: Sequence[Any],
    *,
    limit_one: bool,
) -> list[Any]:
    """The rows of one SELECT (at most the first with ``limit_one``), as tuples. The
    cursor is closed before returning: an unfinished statement would keep SQLite's read
    snapshot open."""

    def run(connection: sqlite3.Connection) -> list[Any]:
        cursor = connection.execute(sql, args)
        try:
            if limit_one:
                first = cursor.fetchone()
                return [] if first is None else [first]
            return cursor.fetchall()
        finally:
            cursor.close()

    return await _direct(conn, hybrid, sql, run, multi=False)


async def execute_many(
    conn: AsyncConnection, hybrid: HybridConnection, sql: str, rows: Sequence[Sequence[Any]]
) -> None:
    """One INSERT or UPDATE for every row of ``rows``."""

    def run(connection: sqlite3.Connection) -> None:
        connection.executemany(sql, rows).close()

    await _direct(conn, hybrid, sql, run, multi=True)


async def fetch_each(
    conn: AsyncConnection, hybrid: HybridConnection, sql: str, rows: Sequence[Sequence[Any]]
) -> list[Any]:
    """One INSERT … RETURNING per row of ``rows`` (sqlite3's executemany returns no
    rows), all on the loop's thread in one go: the rows they returned, in order."""

    def run(connection: sqlite3.Connection) -> list[Any]:
        returned: list[Any] = []
        for row in rows:
            cursor = connection.execute(sql, row)
            try:
                returned.extend(cursor.fetchall())
            finally:
                cursor.close()
        return returned

    return await _direct(conn, hybrid, sql, run, multi=True)


async def _direct(
    conn: AsyncConnection,
    hybrid: HybridConnection,
    sql: str,
    run: Callable[[sqlite3.Connection], T],
    *,
    multi: bool,
) -> T:
    """``run`` on the sqlite3 connection; its error raised as SQLAlchemy raises it."""
    try:
        return await hybrid.run_direct(run)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(
            sql, None, exc, sqlite3.Error, hide_parameters=True, dialect=conn.dialect, ismulti=multi
        ) from None
