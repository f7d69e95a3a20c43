"""PostgreSQL bounds every session, and gives up on a transaction with a retryable error,
never a 500 and never a session left holding locks."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB

from amanat.bootstrap import Container
from amanat.kernel.errors import Contention
from amanat.payments.tables import balance_shards, ledger_accounts
from amanat.platform.db.database import Database
from amanat.platform.db.engine import create_engine

pytestmark = pytest.mark.skipif(TEST_DB != "postgresql", reason="PostgreSQL session bounds")


def _database(container: Container, **bounds: int) -> Database:
    return Database(create_engine(container.settings.database.model_copy(update=bounds)))


async def _account(container: Container) -> None:
    async with container.db.write() as conn:
        await conn.execute(
            ledger_accounts.insert().values(
                id="acct_test",
                kind="liability",
                currency="PKR",
                shards=2,
                created_at=container.clock.now(),
            )
        )
        await conn.execute(
            balance_shards.insert(),
            [{"account_id": "acct_test", "shard": i, "posted": 0, "held": 0} for i in range(2)],
        )


async def test_every_session_carries_the_configured_bounds(container: Container) -> None:
    db = _database(
        container,
        statement_timeout_ms=7000,
        lock_timeout_ms=3000,
        idle_in_transaction_timeout_ms=9000,
    )
    try:
        async with db.lookup() as conn:
            shown = [
                (await conn.exec_driver_sql(f"SHOW {name}")).scalar()
                for name in (
                    "statement_timeout",
                    "lock_timeout",
                    "idle_in_transaction_session_timeout",
                )
            ]
        assert shown == ["7s", "3s", "9s"]
    finally:
        await db.dispose()


async def test_a_lock_wait_past_the_timeout_is_contention(container: Container) -> None:
    await _account(container)
    db = _database(container, lock_timeout_ms=200)
    try:
        async with db.write() as holder:
            await holder.execute(
                sa.select(balance_shards).where(balance_shards.c.shard == 0).with_for_update()
            )
            with pytest.raises(Contention):
                async with db.write() as waiter:
                    await waiter.execute(
                        balance_shards.update()
                        .where(balance_shards.c.shard == 0)
                        .values(posted=balance_shards.c.posted + 1)
                    )
    finally:
        await db.dispose()


async def test_a_deadlock_is_contention_and_releases_both(container: Container) -> None:
    await _account(container)
    db = _database(container)
    first_locked = asyncio.Event()
    second_locked = asyncio.Event()

    async def lock(first: int, then: int, mine: asyncio.Event, theirs: asyncio.Event) -> str:
        try:
            async with db.write() as conn:
                await conn.execute(
                    balance_shards.update()
                    .where(balance_shards.c.shard == first)
                    .values(posted=balance_shards.c.posted + 1)
                )
                mine.set()
                await theirs.wait()
                await conn.execute(
                    balance_shards.update()
                    .where(balance_shards.c.shard == then)
                    .values(posted=balance_shards.c.posted + 1)
                )
            return "committed"
        except Contention:
            return "contention"

    try:
        outcomes = await asyncio.gather(
            lock(0, 1, first_locked, second_locked), lock(1, 0, second_locked, first_locked)
        )
        assert sorted(outcomes) == ["committed", "contention"]
    finally:
        await db.dispose()


async def test_an_abandoned_transaction_is_ended_by_the_server(container: Container) -> None:
    """A session idle inside a transaction past the bound loses it and its locks."""
    await _account(container)
    # Why 1.5 s: a slow machine may pause longer than 0.3 s between the holder's statements;
    # still well below the lock timeout, so the write only gets through if the server ended
    # the holder's session.
    db = _database(container, idle_in_transaction_timeout_ms=1500, lock_timeout_ms=5000)
    try:
        abandoned = await db.engine.connect()
        await abandoned.begin()
        await abandoned.execute(
            sa.select(balance_shards).where(balance_shards.c.shard == 0).with_for_update()
        )
        # The holder never commits nor rolls back; the server ends its session.
        async with db.write() as conn:
            await conn.execute(
                balance_shards.update()
                .where(balance_shards.c.shard == 0)
                .values(posted=balance_shards.c.posted + 1)
            )
        with pytest.raises(sa.exc.DBAPIError):
            await abandoned.execute(sa.select(1))
        await abandoned.invalidate()
        await abandoned.close()
    finally:
        await db.dispose()
