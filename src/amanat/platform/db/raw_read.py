"""One read statement sent through asyncpg (or sqlite3) directly, its SQL compiled once.

SQLAlchemy's async layer costs about 200 us of CPU per statement on top of asyncpg's own
(the greenlet switch, the execution context, result processing): measured in process, a
payment read by id took 340 us through it and about 110 us through asyncpg on the same
pooled connection. The hot single-row reads of the request path (a payment by id, an
idempotency key's stored answer) go this way; everything else, and every write, stays on
SQLAlchemy. No library does this: SQLAlchemy's compiled cache still runs the statement
through the same layer.

The statement is still a SQLAlchemy Core construct, compiled by the connection's dialect
(its SQL text, ``$n`` or ``?`` placeholders), its bound values passed through the column
types' bind processors and its result values through their result processors, so a row
reads exactly as through SQLAlchemy (tests compare the two on both databases). Rows come
back as named tuples of the selected columns' keys.

PostgreSQL: on a connection in autocommit (``Database.lookup()``) or inside a transaction
SQLAlchemy has begun, where the statement joins it (its BEGIN sent first if this is the
transaction's first statement). SQLite: on the sqlite3 connection
directly, in any transaction (:mod:`~amanat.platform.db.sqlite_direct`). Either driver's
errors come out as SQLAlchemy's own would (:func:`driver_errors`), and contention (a
timeout, a cancelled statement, a lock not available) as
:class:`~amanat.kernel.errors.Contention`, a 503 with ``Retry-After``, never a 500.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.db import sqlite_direct
from amanat.platform.db.database import (
    contention_of,
    driver_error,
    hybrid_of,
    pooled_connection,
)

_GIVEN = object()  # a parameter the caller gives


class _Compiled:
    __slots__ = ("binds", "results", "row", "sql")

    def __init__(
        self,
        sql: str,
        binds: list[tuple[str, Any, Any]],
        row: type,
        results: list[Any],
    ) -> None:
        self.sql = sql
        self.binds = binds
        self.row = row
        self.results = results


class RawRead:
    """A SELECT that reads through asyncpg directly where it can (see the module)."""

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}  # by dialect

    async def first(self, conn: AsyncConnection, params: Mapping[str, Any]) -> Any | None:
        rows = await self._fetch(conn, params, limit_one=True)
        return rows[0] if rows else None

    async def all(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[Any]:
        return await self._fetch(conn, params, limit_one=False)

    async def _fetch(
        self, conn: AsyncConnection, params: Mapping[str, Any], *, limit_one: bool
    ) -> list[Any]:
        hybrid = await hybrid_of(conn)
        driver: Any = None if hybrid is not None else await pg_driver(conn)
        if hybrid is None and driver is None:
            result = await conn.execute(self.statement, dict(params))
            found = result.first() if limit_one else result.all()
            if found is None:
                return []
            return [found] if limit_one else list(found)
        compiled = self._compiled.get(conn.dialect.name) or self._compile(conn)
        args = []
        for name, process, fixed in compiled.binds:
            value = params[name] if fixed is _GIVEN else fixed
            args.append(process(value) if process is not None else value)
        if hybrid is not None:
            records = await sqlite_direct.fetch(
                conn, hybrid, compiled.sql, args, limit_one=limit_one
            )
        else:
            async with driver_errors(conn, driver, compiled.sql):
                if limit_one:
                    record = await driver.fetchrow(compiled.sql, *args)
                    records = [] if record is None else [record]
                else:
                    records = await driver.fetch(compiled.sql, *args)
        row, results = compiled.row, compiled.results
        return [
            row(
                *[
                    process(value) if process else value
                    for process, value in zip(results, record, strict=True)
                ]
            )
            for record in records
        ]

    def _compile(self, conn: AsyncConnection) -> _Compiled:
        dialect = conn.dialect
        compiled = self.statement.compile(dialect=dialect)
        if any(bind.expanding or bind.literal_execute for bind in compiled.binds.values()):
            raise ValueError("RawRead takes no expanding (IN) or literal-execute parameters")
        order = compiled.positiontup or []
        processors = compiled._bind_processors
        binds: list[tuple[str, Any, Any]] = []
        for name in order:
            bind = compiled.binds[name]
            process = processors.get(name)
            if process is not None and not callable(process):
                raise ValueError("RawRead takes no tuple parameters")
            # A value written into the statement (a literal) is bound as it was given.
            binds.append((name, process, _GIVEN if bind.required else bind.effective_value))
        columns = list(self.statement.selected_columns)
        keys = [str(column.key) for column in columns]
        if any(not key.isidentifier() or key.startswith("_") for key in keys):
            raise ValueError("RawRead rows are named tuples: column keys must be plain names")
        results: list[Any] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        row = namedtuple("RawRow", keys)  # type: ignore[misc]
        made = self._compiled[dialect.name] = _Compiled(compiled.string, binds, row, results)
        return made


@asynccontextmanager
async def driver_errors(conn: AsyncConnection, driver: Any, sql: str) -> AsyncIterator[None]:
    """asyncpg's errors raised as SQLAlchemy raises them for its own statements, so callers
    and the unit of work meet one kind of error whichever path ran ``sql``:

    - contention (a timeout, a cancelled statement, a deadlock) becomes
      :class:`~amanat.kernel.errors.Contention`, a 503 with ``Retry-After``;
    - anything else becomes SQLAlchemy's class for it (``IntegrityError``,
      ``ProgrammingError``, ``InterfaceError`` ...), parameters hidden, with the
      adapter's DB-API error under ``.orig`` and asyncpg's own under its
      ``driver_exception``, as for SQLAlchemy's statements;
    - a lost connection also invalidates every connection the pool opened before it,
      as SQLAlchemy does on a disconnect: after a database restart the pool reconnects
      at once instead of failing once per stale connection. That includes asyncpg's
      InternalClientError, on which asyncpg aborts the connection: a restart's
      termination notice arrives a moment before the socket's end, and a statement sent
      in between finds the protocol waiting for a sync that never comes ("cannot switch
      to state 11; another operation (2) is in progress")."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - every one is raised again
        await raise_as_sqlalchemy(conn, driver, sql, exc)


async def raise_as_sqlalchemy(
    conn: AsyncConnection, driver: Any, sql: str, exc: Exception
) -> NoReturn:
    """Raise ``exc``, an error of ``driver`` (asyncpg's, a socket's, or one SQLAlchemy's
    adapter already turned into its DB-API class), as :func:`driver_errors` says; any
    other error is raised as it is."""
    dbapi = conn.dialect.loaded_dbapi
    if isinstance(exc, dbapi.Error):
        adapted: BaseException = exc
        cause = driver_error(exc)
    elif isinstance(
        exc,
        asyncpg.PostgresError | asyncpg.InterfaceError | asyncpg.InternalClientError | OSError,
    ):
        adapted, cause = _adapted_error(dbapi, exc), exc
    else:
        raise exc
    retry = contention_of(getattr(cause, "sqlstate", None))
    if retry is not None:
        raise retry from None
    gone = driver.is_closed()
    if gone:
        pooled = await pooled_connection(conn)
        conn.sync_engine.pool._invalidate(pooled, exc, _checkin=False)
        await conn.invalidate(exc)
    raise DBAPIError.instance(
        sql,
        None,
        adapted,
        dbapi.Error,
        hide_parameters=True,
        connection_invalidated=gone,
        dialect=conn.dialect,
    ) from exc


def _adapted_error(dbapi: Any, exc: BaseException) -> BaseException:
    """``exc`` as SQLAlchemy's asyncpg adapter turns a driver error into its DB-API one
    (its own table, most specific class first); a socket error as an InterfaceError."""
    table = dbapi._asyncpg_error_translate
    for kind in type(exc).__mro__:
        if kind in table:
            return table[kind](exc.args[0] if exc.args else str(exc), exc)  # type: ignore[no-any-return]
    return dbapi.InterfaceError(str(exc) or type(exc).__name__, exc)  # type: ignore[no-any-return]


async def pg_driver(conn: AsyncConnection) -> Any | None:
    """The asyncpg connection under ``conn`` when it is PostgreSQL in autocommit or inside
    a transaction SQLAlchemy has begun, else None (SQLite, or no transaction yet: then the
    statement goes through SQLAlchemy, which begins one). SQLAlchemy's asyncpg adapter
    sends BEGIN only with the transaction's first statement; when that statement is ours,
    BEGIN is sent here, exactly as the adapter would send it."""
    if conn.dialect.name != "postgresql":
        return None
    raw = await pooled_connection(conn)
    adapted = raw.dbapi_connection
    driver = raw.driver_connection
    if adapted is None or driver is None:
        return None
    if getattr(adapted, "_transaction", None) is None:
        if getattr(adapted, "autocommit", False):
            return driver
        if not conn.in_transaction():
            return None
        try:
            await adapted._start_transaction()
        except Exception as exc:  # noqa: BLE001 - raised again; a stale connection fails here
            await raise_as_sqlalchemy(conn, driver, "BEGIN", exc)
    return driver if driver.is_in_transaction() else None
