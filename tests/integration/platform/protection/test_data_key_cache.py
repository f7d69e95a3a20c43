"""The active fields key is kept in memory, and a rotation in another process still
reaches every process: at once on PostgreSQL (LISTEN/NOTIFY), within
ACTIVE_KEY_MAX_AGE on SQLite. Ciphertexts under the old key keep decrypting everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event
from tests.conftest import TEST_DB

from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import FrozenClock
from amanat.platform.audit.domain import Actor
from amanat.platform.crypto.field_cipher import key_id_of
from amanat.platform.invalidation.listener import PostgresChangeFeed
from amanat.platform.invalidation.ports import ChangeFeed
from amanat.platform.protection.service import ACTIVE_KEY_MAX_AGE
from amanat.platform.settings import Settings

ACTOR = Actor(type="cli", id="test")
WHERE = {"table": "idempotency_keys", "column": "response_body", "row_id": "idk_1"}


class Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def other(settings: Settings, clock: FrozenClock) -> AsyncIterator[Container]:
    """A second process on the same database (and the same master key)."""
    container = build_container(settings, clock=clock)
    try:
        yield container
    finally:
        await container.close()


def _key_reads(container: Container) -> list[str]:
    seen: list[str] = []

    def record(_c: object, _cur: object, statement: str, *_a: object) -> None:
        if "FROM data_keys" in statement:
            seen.append(statement)

    event.listen(container.db.engine.sync_engine, "before_cursor_execute", record)
    return seen


async def test_sealing_reads_no_data_key_once_the_active_one_is_known(
    container: Container,
) -> None:
    await container.protection.ensure_keys(ACTOR)
    await container.protection.seal("first", **WHERE)
    feed = container.services.get(ChangeFeed)
    if isinstance(feed, PostgresChangeFeed):
        await feed.wait_live()
        await container.protection.seal("after the feed connected", **WHERE)
    reads = _key_reads(container)
    for n in range(5):
        sealed = await container.protection.seal(f"secret {n}", **WHERE)
        assert await container.protection.unseal(sealed, **WHERE) == f"secret {n}"
    assert reads == []


async def test_a_rotation_in_another_process_reaches_this_one(
    container: Container, other: Container
) -> None:
    ticks = Ticks()
    other.protection._monotonic = ticks
    await container.protection.ensure_keys(ACTOR)
    old_sealed = await other.protection.seal("before", **WHERE)
    old_key = key_id_of(old_sealed)
    feed = other.services.get(ChangeFeed)
    if isinstance(feed, PostgresChangeFeed):
        await feed.wait_live()
        await other.protection.seal("once listening", **WHERE)  # re-read after connecting

    new_key, previous = await container.protection.rotate_data_key(ACTOR)
    assert previous == [old_key]

    if isinstance(feed, PostgresChangeFeed):
        await feed.barrier()  # the rotation's notification has arrived: at once
    else:
        # No feed: the old key may be used for at most ACTIVE_KEY_MAX_AGE...
        assert key_id_of(await other.protection.seal("stale", **WHERE)) == old_key
        ticks.now += ACTIVE_KEY_MAX_AGE.total_seconds()
    # ...and then (or at once, with a feed) new secrets are sealed under the new key.
    fresh = await other.protection.seal("after", **WHERE)
    assert key_id_of(fresh) == new_key.id
    for process in (container, other):
        assert await process.protection.unseal(old_sealed, **WHERE) == "before"
        assert await process.protection.unseal(fresh, **WHERE) == "after"


@pytest.mark.skipif(TEST_DB != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's")
async def test_without_its_feed_a_process_rereads_the_key_after_the_max_age(
    container: Container, other: Container
) -> None:
    ticks = Ticks()
    other.protection._monotonic = ticks
    feed = other.services.get(ChangeFeed)
    assert isinstance(feed, PostgresChangeFeed)
    feed._dsn = "postgresql://postgres@127.0.0.1:1/nowhere"  # it never connects
    await container.protection.ensure_keys(ACTOR)
    old_key = key_id_of(await other.protection.seal("before", **WHERE))
    new_key, _ = await container.protection.rotate_data_key(ACTOR)
    assert key_id_of(await other.protection.seal("stale", **WHERE)) == old_key
    ticks.now += ACTIVE_KEY_MAX_AGE.total_seconds()
    assert key_id_of(await other.protection.seal("after", **WHERE)) == new_key.id
