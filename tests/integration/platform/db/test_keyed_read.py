"""A read by key shared by the requests asking at the same moment: on PostgreSQL outside a
transaction their keys go as one statement, each gets exactly the row it would have read
alone; inside a transaction, and on SQLite, a read runs alone. A leader that fails or is
cancelled costs its followers nothing but a read of their own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection
from tests.conftest import TEST_DB
from tests.support.idempotency_rows import completed_key_row
from tests.support.lookups import LookupSpy, a_pause

from amanat.bootstrap import Container
from amanat.kernel.errors import Contention, Unavailable
from amanat.platform.db import keyed_read
from amanat.platform.db.database import pooled_connection
from amanat.platform.db.keyed_read import KeyedRead
from amanat.platform.db.raw_read import RawRead
from amanat.platform.idempotency.tables import idempotency_keys

AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
ON_PG = TEST_DB == "postgresql"


def _row(n: int) -> dict[str, object]:
    return completed_key_row(
        "cli_kr",
        n,
        AT,
        response_body=f"sealed-{n}",
        response_headers={"n": n},
        last_replayed_at=None,
    )


STORED = range(1, 9)


@pytest.fixture
async def rows(container: Container) -> None:
    async with container.db.write() as conn:
        await conn.execute(idempotency_keys.insert(), [_row(n) for n in STORED])


class Spy:
    """Counts the statements ``read`` sends, shared and alone."""

    def __init__(self, read: KeyedRead, monkeypatch: pytest.MonkeyPatch) -> None:
        self.shared: list[list[str]] = []
        self.alone = 0
        many_all, alone_first = read._many.all, read.alone.first

        async def all_(conn: AsyncConnection, params: Any) -> list[Any]:
            self.shared.append(list(params["keyed_read_keys"]))
            return await many_all(conn, params)

        async def first(conn: AsyncConnection, params: Any) -> Any:
            self.alone += 1
            return await alone_first(conn, params)

        monkeypatch.setattr(read._many, "all", all_)
        monkeypatch.setattr(read.alone, "first", first)


@contextlib.asynccontextmanager
async def lookups(container: Container, count: int) -> AsyncIterator[list[AsyncConnection]]:
    """``count`` lookup connections, open before any read starts: the reads then reach the
    batch in one turn of the loop, as a server's requests do under load."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(container.db.lookup()) for _ in range(count)]


@contextlib.asynccontextmanager
async def deferred(container: Container, count: int) -> AsyncIterator[list[AsyncConnection]]:
    """``count`` lookups as ``SqlTransactions.lookup()`` opens them: no connection taken
    until a statement needs one."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(container.db.deferred_lookup()) for _ in range(count)
        ]


def _key(n: int) -> str:
    return f"cli_kr:key-{n}"


async def _alone(container: Container, key: str) -> Any:
    plain = RawRead(idempotency_keys.select().where(idempotency_keys.c.id == key))
    async with container.db.lookup() as conn:
        return await plain.first(conn, {})


async def test_reads_asked_together_get_their_own_rows_in_one_statement(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    spy = Spy(read, monkeypatch)
    keys = [_key(3), _key(1), "cli_kr:missing", _key(3), _key(8)]
    async with lookups(container, len(keys)) as conns:
        found = await asyncio.gather(*(read.first(c, k) for c, k in zip(conns, keys, strict=True)))
    for key, row in zip(keys, found, strict=True):
        expected = await _alone(container, key)
        assert (row is None) if expected is None else tuple(row) == tuple(expected)
    assert found[0].response_body == "sealed-3" and found[4].replays == 8
    if ON_PG:
        assert spy.shared == [[_key(3), _key(1), "cli_kr:missing", _key(8)]], spy.shared
        assert spy.alone == 0
    else:  # SQLite reads in process: nothing to share
        assert (spy.shared, spy.alone) == ([], len(keys))


async def test_a_read_asked_alone_is_one_plain_statement(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    spy = Spy(read, monkeypatch)
    async with container.db.lookup() as conn:
        row = await read.first(conn, _key(2))
        assert await read.first(conn, "cli_kr:missing") is None
    assert row is not None and row.key == "key-2" and row.response_headers == {"n": 2}
    assert (spy.shared, spy.alone) == ([], 2)


async def test_inside_a_transaction_a_read_runs_alone_and_sees_its_own_writes(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    spy = Spy(read, monkeypatch)
    with pytest.raises(RuntimeError, match="roll back"):
        async with container.db.write() as conn:
            await conn.execute(
                idempotency_keys.update()
                .where(idempotency_keys.c.id == _key(5))
                .values(response_body="changed, not committed")
            )
            async with lookups(container, 2) as others:  # asking at the same moment
                mine, theirs, outside = await asyncio.gather(
                    read.first(conn, _key(5)),
                    read.first(others[0], _key(5)),
                    read.first(others[1], _key(6)),
                )
            raise RuntimeError("roll back")
    assert mine.response_body == "changed, not committed"
    assert theirs.response_body == "sealed-5"  # committed rows only
    assert outside.response_body == "sealed-6"
    if ON_PG:
        assert spy.shared == [[_key(5), _key(6)]] and spy.alone == 1


@pytest.mark.skipif(not ON_PG, reason="shared statements: PostgreSQL")
@pytest.mark.parametrize("connected", [True, False], ids=["connected", "deferred"])
async def test_a_leader_cancelled_costs_its_followers_a_read_of_their_own(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch, connected: bool
) -> None:
    """Cancelled in its turn of the loop, or (deferred) while it waits for a connection."""
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    spy = Spy(read, monkeypatch)
    taken = LookupSpy(container.db, monkeypatch, before=a_pause)
    async with (lookups if connected else deferred)(container, 3) as conns:
        leader = asyncio.create_task(read.first(conns[0], _key(1)))
        followers = [
            asyncio.create_task(read.first(conn, _key(n)))
            for conn, n in zip(conns[1:], (2, 3), strict=True)
        ]
        await asyncio.sleep(0)  # every one has asked; the leader waits
        leader.cancel()
        found = await asyncio.gather(*followers)
        with pytest.raises(asyncio.CancelledError):
            await leader
    assert [row.key for row in found] == ["key-2", "key-3"]
    assert (spy.shared, spy.alone) == ([], 2)
    if connected:  # the three connections were taken before the reads
        assert (taken.entered, taken.ended) == (3, [None] * 3)
    else:  # the leader had none yet; each follower took one for its own read
        assert (taken.entered, taken.ended) == (3, [None] * 2)


@pytest.mark.skipif(not ON_PG, reason="shared statements: PostgreSQL")
async def test_a_leader_whose_statement_fails_raises_and_its_followers_read_alone(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    spy = Spy(read, monkeypatch)
    shared = read._many.all

    async def fails(conn: AsyncConnection, params: Any) -> list[Any]:
        await shared(conn, params)
        raise ConnectionResetError("the leader's connection went")

    monkeypatch.setattr(read._many, "all", fails)
    async with lookups(container, 3) as conns:
        found = await asyncio.gather(
            *(read.first(c, _key(n)) for c, n in zip(conns, (4, 5, 6), strict=True)),
            return_exceptions=True,
        )
    assert isinstance(found[0], ConnectionResetError)
    assert [row.key for row in found[1:]] == ["key-5", "key-6"]
    assert spy.alone == 2


@pytest.mark.skipif(not ON_PG, reason="shared statements: PostgreSQL")
async def test_a_follower_cancelled_leaves_the_others_answered(
    container: Container, rows: None
) -> None:
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    async with lookups(container, 3) as conns:
        tasks = [
            asyncio.create_task(read.first(c, _key(n)))
            for c, n in zip(conns, (1, 2, 3), strict=True)
        ]
        await asyncio.sleep(0)
        tasks[1].cancel()
        first, second, third = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(second, asyncio.CancelledError)
    assert (first.key, third.key) == ("key-1", "key-3")


@pytest.mark.skipif(not ON_PG, reason="shared statements: PostgreSQL")
async def test_no_statement_carries_more_than_max_keys(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyed_read, "MAX_KEYS", 3)
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    spy = Spy(read, monkeypatch)
    wanted = [1, 2, 3, 4, 5, 6, 7]
    async with lookups(container, len(wanted)) as conns:
        found = await asyncio.gather(
            *(read.first(c, _key(n)) for c, n in zip(conns, wanted, strict=True))
        )
    assert [row.replays for row in found] == wanted
    assert [len(keys) for keys in spy.shared] == [3, 3] and spy.alone == 1


def test_the_key_must_be_among_the_columns_read() -> None:
    with pytest.raises(ValueError, match="key column"):
        KeyedRead(idempotency_keys.select().with_only_columns(idempotency_keys.c.key),
                  idempotency_keys.c.id)  # fmt: skip


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.integers(min_value=0, max_value=10), min_size=1, max_size=12))
async def test_whatever_is_asked_together_each_answer_is_the_row_read_alone(
    container: Container, rows: None, asked: Sequence[int]
) -> None:
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    keys = [_key(n) for n in asked]  # 0, 9 and 10 are not stored; repeats ask twice
    async with lookups(container, len(keys)) as conns:
        found = await asyncio.gather(*(read.first(c, k) for c, k in zip(conns, keys, strict=True)))
    for n, row in zip(asked, found, strict=True):
        if n in STORED:
            assert row is not None and row.id == _key(n) and row.replays == n
        else:
            assert row is None


async def test_a_key_longer_than_the_column_finds_nothing_not_its_prefix(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL cuts a value cast to VARCHAR(n) to n characters: an over-long key asked
    with the key it starts with still finds nothing."""
    longest = "cli_kr:" + "k" * (300 - len("cli_kr:"))
    async with container.db.write() as conn:
        await conn.execute(idempotency_keys.insert(), [_row(1) | {"id": longest}])
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    spy = Spy(read, monkeypatch)
    async with lookups(container, 3) as conns:
        found = await asyncio.gather(
            read.first(conns[0], longest + "x"),
            read.first(conns[1], longest),
            read.first(conns[2], longest + "x" * 10),
        )
    assert found[0] is None and found[2] is None
    assert found[1] is not None and found[1].id == longest
    if ON_PG:
        assert len(spy.shared) == 1


@pytest.mark.skipif(not ON_PG, reason="shared statements: PostgreSQL")
async def test_contention_on_the_shared_statement_is_every_readers_answer(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database cancelled the shared statement (a statement timeout): the followers
    answer the same 503 instead of each sending the statement again."""
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    spy = Spy(read, monkeypatch)
    sleeper = RawRead(sa.select(sa.func.pg_sleep(0.5).label("slept")))
    shared = read._many.all

    async def stalls(conn: AsyncConnection, params: Any) -> list[Any]:
        await sleeper.first(conn, {})  # cancelled by the server: contention
        return await shared(conn, params)

    monkeypatch.setattr(read._many, "all", stalls)
    async with lookups(container, 3) as conns:
        drivers = [(await pooled_connection(c)).driver_connection for c in conns]
        for driver in drivers:  # on the driver: SQLAlchemy would begin its bookkeeping
            await driver.execute("SET statement_timeout = 50")
        try:
            found = await asyncio.gather(
                *(read.first(c, _key(n)) for c, n in zip(conns, (1, 2, 3), strict=True)),
                return_exceptions=True,
            )
        finally:
            for driver in drivers:
                await driver.execute("RESET statement_timeout")
    assert [type(f) for f in found] == [Contention] * 3, found
    assert len({id(f) for f in found}) == 3  # each its own exception
    assert spy.alone == 0


async def test_followers_on_lookups_not_yet_connected_take_no_connection(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    spy = Spy(read, monkeypatch)
    taken = LookupSpy(container.db, monkeypatch)
    keys = [_key(2), _key(7), "cli_kr:missing", _key(2)]
    async with deferred(container, len(keys)) as conns:
        found = await asyncio.gather(*(read.first(c, k) for c, k in zip(conns, keys, strict=True)))
    assert [row and row.replays for row in found] == [2, 7, None, 2]
    if ON_PG:
        assert spy.shared == [[_key(2), _key(7), "cli_kr:missing"]] and spy.alone == 0
        assert (taken.entered, taken.ended) == (1, [None])  # the leader's, and only it
    else:  # SQLite's lookup is its connection at once
        assert spy.alone == len(keys) and taken.entered == len(keys)


@pytest.mark.skipif(not ON_PG, reason="shared statements: PostgreSQL")
async def test_a_leader_that_gets_no_connection_is_every_followers_503(
    container: Container, rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool stayed busy past its timeout for the leader: its followers answer the same
    503 at once instead of each queueing for the pool in turn."""

    @contextlib.asynccontextmanager
    async def busy() -> AsyncIterator[None]:
        await asyncio.sleep(0)
        raise Unavailable("The database is busy; retry in a moment.")
        yield  # pragma: no cover

    taken = LookupSpy(container.db, monkeypatch, before=busy)
    read = KeyedRead(idempotency_keys.select(), idempotency_keys.c.id)
    async with deferred(container, 3) as conns:
        found = await asyncio.gather(
            *(read.first(c, _key(n)) for c, n in zip(conns, (1, 2, 3), strict=True)),
            return_exceptions=True,
        )
    assert [type(f) for f in found] == [Unavailable] * 3, found
    assert len({id(f) for f in found}) == 3 and "busy" in str(found[2])
    assert taken.entered == 1
