"""A read through the driver directly (asyncpg in autocommit on PostgreSQL, sqlite3 in any
transaction on SQLite) gives exactly the row SQLAlchemy gives; anywhere else it is
SQLAlchemy's read; a timeout is contention, not a 500."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB
from tests.support.idempotency_rows import completed_key_row
from tests.support.pg_backends import end_backends

from amanat.bootstrap import Container
from amanat.kernel.errors import Contention
from amanat.platform.db import raw_read, sqlite_direct
from amanat.platform.db.raw_read import RawRead
from amanat.platform.idempotency.tables import idempotency_keys

AT = datetime(2026, 12, 5, 9, 30, 15, 123456, tzinfo=UTC)
_BY_CLIENT = idempotency_keys.select().where(idempotency_keys.c.client_id == sa.bindparam("c"))


def _row(n: int, **changes: object) -> dict[str, object]:
    return completed_key_row("cli_raw", n, AT, **changes)


@pytest.fixture
async def rows(container: Container) -> None:
    async with container.db.write() as conn:
        await conn.execute(idempotency_keys.insert(), [_row(1), _row(2, resource_id="pay_2")])


async def test_a_row_reads_as_sqlalchemy_reads_it(container: Container, rows: None) -> None:
    read = RawRead(idempotency_keys.select().where(idempotency_keys.c.id == sa.bindparam("p")))
    for n in (1, 2, 1):  # the second read of a statement uses what the first compiled
        async with container.db.lookup() as conn:
            raw = await read.first(conn, {"p": f"cli_raw:key-{n}"})
            via_sqlalchemy = (await conn.execute(read.statement, {"p": f"cli_raw:key-{n}"})).one()
        assert raw is not None
        assert tuple(raw) == tuple(via_sqlalchemy)
        assert raw._fields == tuple(via_sqlalchemy._fields)
        assert raw.last_replayed_at == AT + timedelta(seconds=n)
        assert raw.last_replayed_at.tzinfo is not None
        assert raw.response_headers == {"Location": "/v1/payments/pay_1", "n": [1, 2]}
    async with container.db.lookup() as conn:
        assert await read.first(conn, {"p": "cli_raw:nothing"}) is None


async def test_all_rows_and_inside_a_transaction(container: Container, rows: None) -> None:
    read = RawRead(_BY_CLIENT.order_by(idempotency_keys.c.id))
    async with container.db.lookup() as conn:
        outside = await read.all(conn, {"c": "cli_raw"})
    async with container.db.read() as conn:  # PostgreSQL: BEGIN sent first, then the read
        inside = await read.all(conn, {"c": "cli_raw"})
    assert [tuple(r) for r in outside] == [tuple(r) for r in inside]
    assert [r.key for r in outside] == ["key-1", "key-2"]


async def test_inside_a_begun_transaction_it_reads_the_transactions_own_rows(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    drivers: list[object] = []
    found = raw_read.pg_driver

    async def spy(conn: Any) -> Any:
        driver = await found(conn)
        drivers.append(driver)
        return driver

    monkeypatch.setattr(raw_read, "pg_driver", spy)
    read = RawRead(_BY_CLIENT.order_by(idempotency_keys.c.id))
    with pytest.raises(RuntimeError):
        async with container.db.write() as conn:
            await conn.execute(
                idempotency_keys.update()
                .where(idempotency_keys.c.id == "cli_raw:key-1")
                .values(response_body="changed, not committed")
            )
            seen = await read.all(conn, {"c": "cli_raw"})
            raise RuntimeError("roll back")
    assert [r.response_body for r in seen] == ["changed, not committed", "sealed"]
    if TEST_DB == "postgresql":
        assert drivers and drivers[-1] is not None, "asyncpg directly, inside the transaction"
    async with container.db.lookup() as conn:
        after = await read.all(conn, {"c": "cli_raw"})
    assert [r.response_body for r in after] == ["sealed", "sealed"]


@pytest.mark.skipif(TEST_DB != "postgresql", reason="statement_timeout: PostgreSQL")
async def test_a_read_the_server_cancels_is_contention(container: Container) -> None:
    slow = RawRead(sa.select(sa.literal(1).label("one")).where(sa.text("pg_sleep(0.5) IS NULL")))
    async with container.db.lookup() as conn:
        await conn.exec_driver_sql("SET statement_timeout = 50")
        try:
            with pytest.raises(Contention):
                await slow.first(conn, {})
        finally:
            await conn.exec_driver_sql("RESET statement_timeout")


@pytest.mark.skipif(TEST_DB != "postgresql", reason="asyncpg: PostgreSQL")
async def test_after_a_database_restart_one_read_fails_and_the_pool_reconnects(
    container: Container, rows: None
) -> None:
    """Every pooled connection's backend ends, as in a restart: the first raw read on a
    stale connection fails as SQLAlchemy's disconnect error does, and the pool replaces
    the others before handing them out, as it does after SQLAlchemy's own disconnects."""
    read = RawRead(idempotency_keys.select().where(idempotency_keys.c.id == sa.bindparam("p")))
    size = container.settings.database.pool_size
    async with contextlib.AsyncExitStack() as stack:  # the pool holds `size` connections
        pids = []
        for _ in range(size):
            conn = await stack.enter_async_context(container.db.lookup())
            pids.append((await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one())
    await end_backends(container.db.engine, pids)
    failures = []
    for _ in range(size + 2):  # on the engine: Database.lookup() would answer Unavailable
        try:
            async with container.db.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                assert (await read.first(conn, {"p": "cli_raw:key-1"})) is not None
        except sa.exc.DBAPIError as exc:
            failures.append(exc)
    assert len(failures) == 1, failures
    assert failures[0].connection_invalidated
    # The socket's end read first: asyncpg's "connection was closed" (InterfaceError);
    # only the backend's termination notice read yet: its InternalClientError.
    assert isinstance(failures[0], sa.exc.InterfaceError | sa.exc.InternalError)


@pytest.mark.skipif(TEST_DB != "sqlite", reason="sqlite3 directly: SQLite")
async def test_on_sqlite_every_read_is_sqlite3s_and_leaves_no_snapshot_open(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct: list[bool] = []
    fetch = sqlite_direct.fetch

    async def spy(*args: Any, limit_one: bool) -> list[Any]:
        direct.append(limit_one)
        return await fetch(*args, limit_one=limit_one)

    monkeypatch.setattr(sqlite_direct, "fetch", spy)
    read = RawRead(_BY_CLIENT.order_by(idempotency_keys.c.id))
    path = container.settings.database.url.split("///", 1)[1]
    async with container.db.lookup() as conn:
        first = await read.first(conn, {"c": "cli_raw"})  # one of two rows read
        # Had the statement stayed open, its snapshot would pin the WAL.
        other = sqlite3.connect(path, isolation_level=None)
        try:
            busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            other.close()
    async with container.db.read() as conn:
        inside = await read.all(conn, {"c": "cli_raw"})
    assert first is not None and first.key == "key-1"
    assert busy == 0, "the first row's statement was closed"
    assert [r.key for r in inside] == ["key-1", "key-2"]
    assert direct == [True, False]
