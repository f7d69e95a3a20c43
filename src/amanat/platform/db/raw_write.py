"""One INSERT or UPDATE executed for many rows through asyncpg (or sqlite3) directly.

A payout batch writes its rows with executemany: the holds, the shards' new values, the
payments, their transitions and jobs, the stored answers. Through SQLAlchemy each row's
parameters pass the execution context (``construct_params``, its type processing) in
Python, inside a greenlet, before asyncpg sees them: in the profile of the payout bench
that was about a tenth of the API's CPU. asyncpg's own executemany encodes the rows in C.
No library does this: SQLAlchemy's compiled cache still builds every row's parameters
through the same context.

The statement stays a SQLAlchemy Core construct, compiled once per set of row keys by the
connection's dialect (its SQL, ``$n`` or ``?`` placeholders), and every value passes its
column type's bind processor, so a row is written exactly as through SQLAlchemy (tests
compare both, on both databases). A statement that needs SQLAlchemy at execution time (a
Python-side default or onupdate to compute, an expanding parameter) is refused when
compiled and always runs through SQLAlchemy. An INSERT's RETURNING (a batch's claimed
idempotency keys) comes back through asyncpg's ``fetchmany``, or row by row on SQLite.

Only inside a transaction SQLAlchemy has begun on the connection (BEGIN sent), so the
rows commit or roll back with everything else; anywhere else the statement runs through
SQLAlchemy. On SQLite the rows go to the sqlite3 connection directly, on the loop's
thread, inside ``Database.write()``'s transaction only
(:mod:`~amanat.platform.db.sqlite_direct`), and sqlite3's errors are raised as
SQLAlchemy's; asyncpg's become the unit of work's, as for
:mod:`amanat.platform.db.raw_read`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.db import sqlite_direct
from amanat.platform.db.database import hybrid_of
from amanat.platform.db.raw_read import driver_errors, pg_driver
from amanat.platform.db.sqlite_driver import HybridConnection


class _Compiled:
    __slots__ = ("binds", "results", "sql")

    def __init__(self, sql: str, binds: list[tuple[str, Any]], results: list[Any]) -> None:
        self.sql = sql
        self.binds = binds
        self.results = results  # the RETURNING columns' result processors


class RawWriteMany:
    """An INSERT or UPDATE run for many rows (see the module). Its RETURNING, if any, is
    read with :meth:`execute_returning`."""

    def __init__(self, statement: sa.Insert | sa.Update) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, ...], _Compiled | None] = {}  # by dialect and keys

    async def execute(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        await self._run(conn, rows, returning=False)

    async def execute_returning(
        self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]
    ) -> list[tuple[Any, ...]]:
        """The rows the statement's RETURNING gave for all of ``rows`` (none for a row an
        ON CONFLICT DO NOTHING skipped), each value through its column type."""
        return await self._run(conn, rows, returning=True)

    async def _run(
        self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]], *, returning: bool
    ) -> list[tuple[Any, ...]]:
        if not rows:
            return []
        keys = (conn.dialect.name, *rows[0])
        compiled = self._compiled.get(keys, _UNSET)
        if compiled is _UNSET:
            compiled = self._compiled[keys] = self._compile(conn, keys[1:])
        hybrid: HybridConnection | None = None
        driver: Any = None
        if compiled is not None:
            hybrid = await hybrid_of(conn)
            if hybrid is None:
                driver = await _transaction_driver(conn)
            elif not (hybrid.inline and hybrid.in_transaction):
                # Only in Database.write()'s transaction: it holds SQLite's write lock
                # from BEGIN IMMEDIATE on, so a busy refusal can never stop the rows
                # midway (the retry would write the first ones twice).
                hybrid = None
        if compiled is None or (hybrid is None and driver is None):
            result = await conn.execute(self.statement, [dict(row) for row in rows])
            return [tuple(row) for row in result.all()] if returning else []
        binds = compiled.binds
        args = [
            [process(row[name]) if process is not None else row[name] for name, process in binds]
            for row in rows
        ]
        if hybrid is not None:
            if not compiled.results:
                await sqlite_direct.execute_many(conn, hybrid, compiled.sql, args)
                return []
            # sqlite3's executemany refuses a statement that returns rows.
            records = await sqlite_direct.fetch_each(conn, hybrid, compiled.sql, args)
        else:
            async with driver_errors(conn, driver, compiled.sql):
                if not returning:
                    await driver.executemany(compiled.sql, args)
                    return []
                records = await driver.fetchmany(compiled.sql, args)
        results = compiled.results
        if not returning:
            return []
        return [
            tuple(
                process(value) if process else value
                for process, value in zip(results, record, strict=True)
            )
            for record in records
        ]

    def _compile(self, conn: AsyncConnection, keys: tuple[str, ...]) -> _Compiled | None:
        """The statement for rows of these keys, or None when it must run through
        SQLAlchemy (see the module)."""
        dialect = conn.dialect
        compiled: Any = self.statement.compile(dialect=dialect, column_keys=list(keys))
        if (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or any(b.expanding or b.literal_execute for b in compiled.binds.values())
        ):
            return None
        processors = compiled._bind_processors
        binds: list[tuple[str, Any]] = []
        for name in compiled.positiontup or []:
            if name not in keys:
                return None  # a value the statement holds itself: SQLAlchemy binds it
            process = processors.get(name)
            if process is not None and not callable(process):
                return None
            binds.append((name, process))
        results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in compiled.returning or ()
        ]
        return _Compiled(compiled.string, binds, results)


_UNSET: Any = object()


async def _transaction_driver(conn: AsyncConnection) -> Any | None:
    """The asyncpg connection under ``conn`` when SQLAlchemy's transaction on it has
    begun (BEGIN sent), else None (autocommit included: rows must commit together)."""
    driver = await pg_driver(conn)
    return driver if driver is not None and driver.is_in_transaction() else None
