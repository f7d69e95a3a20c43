"""A lookup takes its connection with its first statement: one that sends nothing takes
none; one that sends statements takes one connection, through ``Database.lookup()``, and
the block's outcome reaches it at the end as it did before."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection
from tests.conftest import TEST_DB
from tests.support.lookups import LookupSpy, a_pause

from amanat.bootstrap import Container
from amanat.platform.db.deferred_lookup import DeferredLookup

ON_PG = TEST_DB == "postgresql"
on_pg = pytest.mark.skipif(not ON_PG, reason="deferred: PostgreSQL (SQLite's lookup is its own)")


async def _backend(conn: AsyncConnection) -> int:
    return int((await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one())


@on_pg
async def test_a_lookup_that_sends_nothing_takes_no_connection(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = LookupSpy(container.db, monkeypatch)
    async with container.transactions.lookup() as tx:
        assert tx.payments is not None  # a repository built: still nothing sent
    assert (spy.entered, spy.ended) == (0, [])


@on_pg
async def test_the_first_statement_takes_one_connection_for_the_whole_lookup(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = LookupSpy(container.db, monkeypatch)
    async with container.db.deferred_lookup() as conn:
        assert isinstance(conn, DeferredLookup)
        assert conn.taken is None and conn.sync_connection is None
        assert not conn.in_transaction()
        first, second = await _backend(conn), await _backend(conn)
        assert conn.taken is not None and conn.sync_connection is not None
    assert first == second
    assert (spy.entered, spy.ended) == (1, [None])


@on_pg
async def test_the_blocks_error_reaches_the_taken_connection(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = LookupSpy(container.db, monkeypatch)
    with pytest.raises(LookupError):
        async with container.db.deferred_lookup() as conn:
            await _backend(conn)
            raise LookupError("the block failed")
    assert spy.ended == [LookupError]  # Database.lookup() closes such a connection
    assert conn.taken is None


@on_pg
async def test_before_its_first_statement_a_lookup_knows_its_database_and_nothing_else(
    container: Container,
) -> None:
    async with container.db.deferred_lookup() as conn:
        assert conn.dialect.name == "postgresql"
        assert conn.sync_engine.pool is container.db.engine.sync_engine.pool
        with pytest.raises(AttributeError, match="first statement"):
            _ = conn.invalidated
        await _backend(conn)
        assert conn.invalidated is False  # the taken connection's, from now on


@on_pg
async def test_two_statements_at_once_on_one_lookup_are_refused(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = LookupSpy(container.db, monkeypatch, before=a_pause)
    async with container.db.deferred_lookup() as conn:
        first, second = await asyncio.gather(_backend(conn), _backend(conn), return_exceptions=True)
    assert isinstance(first, int)
    assert isinstance(second, RuntimeError) and "one statement at a time" in str(second)
    assert spy.entered == 1


@on_pg
async def test_a_lookup_cancelled_while_it_takes_its_connection_holds_nothing(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = LookupSpy(container.db, monkeypatch, before=a_pause)
    pool = container.db.engine.sync_engine.pool
    before = pool.checkedout()

    async def look() -> int:
        async with container.db.deferred_lookup() as conn:
            return await _backend(conn)

    task = asyncio.create_task(look())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert spy.entered == 1 and spy.ended == []  # cancelled before the pool was asked
    assert pool.checkedout() == before
    async with container.db.deferred_lookup() as conn:  # and the lookup after it is served
        assert await _backend(conn) > 0


@pytest.mark.skipif(ON_PG, reason="SQLite")
async def test_on_sqlite_a_lookup_is_its_connection_at_once(container: Container) -> None:
    async with container.db.deferred_lookup() as conn:
        assert isinstance(conn, AsyncConnection)
