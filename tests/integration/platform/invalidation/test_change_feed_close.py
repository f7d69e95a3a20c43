"""Closing the PostgreSQL change feed always ends it: a container's close never waits
forever on its feed, and no LISTEN connection outlives it (PostgreSQL only)."""

from __future__ import annotations

import asyncio
import random

import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB

from amanat.bootstrap import Container
from amanat.platform.invalidation import listener
from amanat.platform.invalidation.listener import PostgresChangeFeed

pytestmark = pytest.mark.skipif(TEST_DB != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's")

# A guard, not a measurement: a close that hangs fails here instead of holding the pass.
GUARD_SECONDS = 30


async def _listening(container: Container) -> int:
    async with container.db.read() as conn:
        count = await conn.scalar(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": listener.APPLICATION_NAME},
        )
    return int(count or 0)


async def _closes(feed: PostgresChangeFeed) -> None:
    """Close the feed; fail if that does not end on its own (the close is not canceled by
    the guard, which would end a hung close's wait from outside)."""
    closing = asyncio.ensure_future(feed.close())
    done, _ = await asyncio.wait({closing}, timeout=GUARD_SECONDS)
    assert closing in done, "the feed's close did not end"
    closing.result()


def _feed(container: Container) -> PostgresChangeFeed:
    return PostgresChangeFeed(container.db.engine)


async def test_close_ends_a_feed_whose_task_lost_a_cancellation(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    swallowed = 0

    async def listen_swallowing_one_cancel(self: PostgresChangeFeed) -> None:
        # What asyncio.wait_for did on Python 3.11 when the awaited thing finished as the
        # cancellation arrived: the task went on as if nothing had been asked.
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    monkeypatch.setattr(PostgresChangeFeed, "_listen", listen_swallowing_one_cancel)
    feed = _feed(container)
    feed.start()
    await asyncio.sleep(0)  # the task is waiting now
    await _closes(feed)
    assert swallowed == 1 and not feed.live


async def test_a_feed_closed_at_any_moment_of_its_start_leaves_no_listener(
    container: Container,
) -> None:
    rng = random.Random(7)
    for _ in range(12):
        feed = _feed(container)
        feed.start()
        # Somewhere in connecting, LISTEN, the first round trip, or live.
        for _ in range(rng.randrange(0, 40)):
            await asyncio.sleep(0)
        await _closes(feed)
        assert not feed.live
    feed = _feed(container)
    async with asyncio.timeout(GUARD_SECONDS):
        await feed.wait_live()
        await feed.barrier()
        await feed.close()
    # Terminated connections leave pg_stat_activity as their backends exit.
    async with asyncio.timeout(GUARD_SECONDS):
        while await _listening(container):
            await asyncio.sleep(0.05)


async def test_a_closed_feed_started_again_listens_again(container: Container) -> None:
    feed = _feed(container)
    async with asyncio.timeout(GUARD_SECONDS):
        await feed.wait_live()
    await _closes(feed)
    async with asyncio.timeout(GUARD_SECONDS):
        await feed.wait_live()
        await feed.barrier()
    assert feed.live
    await _closes(feed)
