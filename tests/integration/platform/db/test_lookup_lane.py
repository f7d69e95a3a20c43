"""PostgreSQL's lookups share a few connections kept in autocommit (the lookup lane): a
clean lookup's connection serves the next one; one whose block failed never does; a lost
connection empties the lane, so a restart costs one failed request, not one per
connection."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB
from tests.support.pg_backends import end_backends

from amanat.bootstrap import Container
from amanat.kernel.errors import Unavailable
from amanat.platform.db.database import Database
from amanat.platform.db.lookup_lane import LookupLane
from amanat.platform.db.raw_read import RawRead

pytestmark = pytest.mark.skipif(TEST_DB != "postgresql", reason="the lane: PostgreSQL")

_PID = RawRead(sa.select(sa.func.pg_backend_pid().label("pid")))


async def _pid(db: Database) -> int:
    async with db.lookup() as conn:
        row = await _PID.first(conn, {})
        assert row is not None
        return int(row.pid)


def _lane(db: Database) -> LookupLane:
    assert db._lane is not None
    return db._lane


async def test_a_clean_lookups_connection_serves_the_next_in_autocommit(
    container: Container,
) -> None:
    db = container.db
    async with db.lookup() as first:
        shown = (await first.exec_driver_sql("SHOW transaction_isolation")).scalar()
        await first.exec_driver_sql("SELECT txid_current()")  # committed at once
    assert shown == "read committed"
    assert _lane(db).idle == 1
    async with db.lookup() as second:
        assert second is first, "the same connection, not one built anew"
        assert not second.in_transaction()
        assert (
            await second.exec_driver_sql("SELECT pg_current_xact_id_if_assigned()")
        ).scalar() is None


async def test_a_lookup_that_failed_never_hands_its_connection_on(container: Container) -> None:
    db = container.db
    used = await _pid(db)
    with pytest.raises(RuntimeError):
        async with db.lookup() as conn:
            assert await _PID.first(conn, {}) == (used,)
            raise RuntimeError("the caller's own failure")
    assert _lane(db).idle == 0
    with pytest.raises(sa.exc.ProgrammingError):
        async with db.lookup() as conn:
            await conn.exec_driver_sql("SELECT no_such_column FROM pg_class")
    assert _lane(db).idle == 0
    await _pid(db)  # a connection from the pool, kept after its clean lookup
    assert _lane(db).idle == 1


async def test_the_lane_keeps_at_most_its_size(container: Container) -> None:
    db = container.db
    lane = _lane(db)
    assert lane.size == container.settings.database.pool_size
    lane.size = 3
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(5):
            conn = await stack.enter_async_context(db.lookup())
            await _PID.first(conn, {})
    assert lane.idle == 3


async def test_a_lost_connection_empties_the_lane_and_costs_one_request(
    container: Container,
) -> None:
    db = container.db
    lane = _lane(db)
    pids = []
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(lane.size):
            conn = await stack.enter_async_context(db.lookup())
            pids.append((await _PID.first(conn, {})).pid)  # type: ignore[union-attr]
    assert lane.idle == lane.size - 1  # the last went back to the pool: it had none left
    await end_backends(db.engine, pids)
    failures = 0
    for _ in range(lane.size + 2):
        try:
            assert await _pid(db) not in pids
        except Unavailable:
            failures += 1
    assert failures == 1


async def test_an_old_connection_goes_back_to_the_pool(container: Container) -> None:
    db = container.db
    lane = _lane(db)
    async with db.lookup() as first:
        pass
    assert lane.idle == 1
    lane._recycle = 0.0  # every connection is now past the pool's recycle age
    async with db.lookup() as second:
        pass
    assert first is not second, "the first was too old to hand on"
    assert first.closed
    assert lane.idle == 0 and lane.stale() == []


async def test_the_lane_gives_its_connection_back_when_the_pool_has_none_left(
    container: Container,
) -> None:
    db = container.db
    lane = _lane(db)
    pool_size = container.settings.database.pool_size
    for idle in lane.drain():  # whatever earlier lookups left there
        await idle.close()
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(pool_size - 1):  # writers holding all but one connection
            await stack.enter_async_context(db.read())
        async with db.lookup() as conn:  # the last one
            await _PID.first(conn, {})
        assert lane.idle == 0, "kept, a writer waiting now would wait for nothing"
    await _pid(db)
    assert lane.idle == 1


async def test_a_writer_takes_the_lanes_idle_connection_instead_of_waiting(
    container: Container,
) -> None:
    """Every pooled connection idle in the lane after a burst of lookups: a burst of
    writers gets them at once, not after the pool timeout."""
    db = container.db
    lane = _lane(db)
    pool_size = container.settings.database.pool_size
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(pool_size):
            conn = await stack.enter_async_context(db.lookup())
            await _PID.first(conn, {})
    assert lane.idle == pool_size - 1  # the last went back to the pool: it had none left
    async with asyncio.timeout(5), contextlib.AsyncExitStack() as stack:  # pool timeout: 10 s
        for _ in range(pool_size):
            conn = await stack.enter_async_context(db.write())
            await conn.execute(sa.text("SELECT 1"))
        assert lane.idle == 0


async def test_a_restart_a_writer_meets_first_costs_no_lookup(container: Container) -> None:
    """The pool's invalidation, set by whoever meets the lost connection first, also
    retires the lane's idle connections opened before it."""
    db = container.db
    lane = _lane(db)
    async with contextlib.AsyncExitStack() as stack:
        pids = []
        for _ in range(3):
            conn = await stack.enter_async_context(db.lookup())
            pids.append((await _PID.first(conn, {})).pid)  # type: ignore[union-attr]
    assert lane.idle == 3
    async with db.write() as conn:
        writer = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
    await end_backends(db.engine, [*pids, writer])
    with pytest.raises(Unavailable):  # the writer meets the loss first
        async with db.write() as conn:
            assert (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one() == writer
    for _ in range(3):
        assert await _pid(db) not in pids


async def test_a_lookup_ending_while_writers_wait_leaves_its_connection_to_them(
    container: Container,
) -> None:
    """A connection checked in wakes the first waiting writer, which takes it only when it
    next runs. A lookup that ends before that (its task was ready first) finds the pool
    looking less than full while a second writer still waits: its connection goes to
    that writer, not into the lane, where it would sit until the pool timeout's 503 if
    no other request came."""
    db = container.db
    lane = _lane(db)
    pool_size = container.settings.database.pool_size
    for idle in lane.drain():
        await idle.close()
    served = 0
    done = asyncio.Event()

    async def writer() -> None:
        nonlocal served
        async with db.read() as conn:
            await conn.execute(sa.text("SELECT 1"))
            served += 1
            await done.wait()

    async with contextlib.AsyncExitStack() as held:
        for _ in range(pool_size - 2):
            await held.enter_async_context(db.read())
        released = await db.engine.raw_connection()  # checked in without a round trip
        lookup = db.lookup()
        conn = await lookup.__aenter__()
        await _PID.first(conn, {})  # every pooled connection is out now
        writers = [asyncio.create_task(writer()) for _ in range(2)]
        while lane.waiting < 2:
            await asyncio.sleep(0.01)
        ending = asyncio.create_task(lookup.__aexit__(None, None, None))  # ready first
        released.close()  # wakes the first writer, ready after the lookup's end
        await ending
        assert lane.idle == 0
        try:
            async with asyncio.timeout(5):  # the pool timeout is 10 s
                while served < 2:
                    await asyncio.sleep(0.01)
        finally:
            done.set()
            await asyncio.gather(*writers)


async def test_a_newcomer_never_takes_the_connection_the_lane_gave_a_writer(
    container: Container,
) -> None:
    """A writer finds the pool empty and closes one of the lane's idle connections into
    it. A newcomer that arrives before the writer has run again sees one connection
    free: it must count the writer, give back another idle one and leave the freed one
    to the writer, not take it and leave the writer waiting beside an idle lane."""
    db = container.db
    lane = _lane(db)
    pool = db.engine.sync_engine.pool
    pool_size = container.settings.database.pool_size
    for idle in lane.drain():
        await idle.close()
    async with contextlib.AsyncExitStack() as lookups:
        for _ in range(2):
            conn = await lookups.enter_async_context(db.lookup())
            await _PID.first(conn, {})
    assert lane.idle == 2
    async with contextlib.AsyncExitStack() as held:
        for _ in range(pool_size - 2):
            await held.enter_async_context(db.read())
        assert pool.checkedout() == pool_size

        async def writer() -> None:
            async with db.read() as conn:
                await conn.execute(sa.text("SELECT 1"))

        first = asyncio.create_task(writer())
        while pool.checkedin() == 0:  # the lane's connection is back in the pool now,
            await asyncio.sleep(0)  # and the first writer has not taken it yet
        newcomer = db.read()
        conn = await newcomer.__aenter__()
        try:
            await conn.execute(sa.text("SELECT 1"))
            async with asyncio.timeout(5):  # the pool timeout is 10 s
                await first
        finally:
            await newcomer.__aexit__(None, None, None)
        assert lane.idle == 0


async def test_a_lookup_cancelled_before_it_began_never_drops_its_connection(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while closing the lane's stale connections, a lookup has taken an idle
    one it never used. If the lane will not keep it back (here: it was made smaller
    meanwhile), it is set aside and closed by the next lookup, never left to the
    garbage collector."""
    from amanat.platform.db import database

    db = container.db
    lane = _lane(db)
    for idle in lane.drain():
        await idle.close()
    await _pid(db)
    assert lane.idle == 1
    lane.set_aside(await lane.engine.connect())  # a stale one for the lookup to close
    real_close_all = database._close_all

    async def cancelled(connections: list[Any]) -> None:
        await real_close_all(connections)
        lane.size = 0  # the lane must not keep it back
        raise asyncio.CancelledError

    monkeypatch.setattr(database, "_close_all", cancelled)
    with pytest.raises(asyncio.CancelledError):
        async with db.lookup():
            pytest.fail("the lookup never began")
    monkeypatch.setattr(database, "_close_all", real_close_all)
    lane.size = container.settings.database.pool_size
    assert lane.idle == 0
    set_aside = lane.stale()
    assert len(set_aside) == 1 and not set_aside[0].closed
    lane.set_aside(set_aside[0])
    await _pid(db)  # the next lookup closes it into the pool
    assert set_aside[0].closed
    assert lane.stale() == []
