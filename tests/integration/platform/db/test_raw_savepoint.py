"""A savepoint sent through asyncpg (PostgreSQL, inside a transaction SQLAlchemy has begun)
keeps or undoes what ran since it, row locks included, and leaves the transaction around
it whole; anywhere else it is SQLAlchemy's own savepoint."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from tests.conftest import TEST_DB

from amanat.bootstrap import Container
from amanat.kernel.errors import Contention
from amanat.platform.db.raw_savepoint import RawSavepoint, begin_savepoint
from amanat.platform.idempotency.tables import idempotency_keys

AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
_KEYS = sa.select(idempotency_keys.c.key).order_by(idempotency_keys.c.key)


def _row(n: int) -> dict[str, object]:
    return {
        "id": f"cli_sp:key-{n}",
        "client_id": "cli_sp",
        "key": f"key-{n}",
        "request_hash": "ab" * 32,
        "method": "POST",
        "path": "/v1/payments",
        "status": "in_progress",
        "created_at": AT,
        "locked_until": AT + timedelta(seconds=30),
        "expires_at": AT + timedelta(days=1),
    }


async def _keys(container: Container) -> list[str]:
    async with container.db.read() as conn:
        return list((await conn.execute(_KEYS)).scalars())


async def test_released_keeps_and_rolled_back_undoes_and_the_transaction_goes_on(
    container: Container,
) -> None:
    async with container.db.write() as conn:
        await conn.execute(idempotency_keys.insert(), _row(1))
        kept = await begin_savepoint(conn, "kept")
        # Sent through asyncpg wherever SQLAlchemy's transaction has begun on PostgreSQL.
        assert isinstance(kept, RawSavepoint) == (TEST_DB == "postgresql")
        await conn.execute(idempotency_keys.insert(), _row(2))
        await kept.commit()
        undone = await begin_savepoint(conn, "undone")
        await conn.execute(idempotency_keys.insert(), _row(3))
        await undone.rollback()
        await conn.execute(idempotency_keys.insert(), _row(4))
        # The savepoint ended with its rollback: one of the same name can be taken again.
        again = await begin_savepoint(conn, "undone")
        await conn.execute(idempotency_keys.insert(), _row(5))
        await again.commit()
    assert await _keys(container) == ["key-1", "key-2", "key-4", "key-5"]


async def test_the_transaction_rolled_back_takes_its_savepoints_with_it(
    container: Container,
) -> None:
    with pytest.raises(RuntimeError, match="midway"):
        async with container.db.write() as conn:
            await conn.execute(idempotency_keys.insert(), _row(1))
            kept = await begin_savepoint(conn, "kept")
            await conn.execute(idempotency_keys.insert(), _row(2))
            await kept.commit()
            await begin_savepoint(conn, "left_open")
            await conn.execute(idempotency_keys.insert(), _row(3))
            raise RuntimeError("failed midway")
    assert await _keys(container) == []
    # The connection went back to the pool clean: the next transaction is whole.
    async with container.db.write() as conn:
        await conn.execute(idempotency_keys.insert(), _row(9))
    assert await _keys(container) == ["key-9"]


@pytest.mark.parametrize("name", ["", "1st", "sp; DROP TABLE payments", "Upper", "a" * 64])
def test_only_a_plain_name_is_sent(name: str) -> None:
    with pytest.raises(ValueError, match="savepoint name"):
        RawSavepoint(None, None, name)  # type: ignore[arg-type]


@pytest.mark.skipif(TEST_DB != "postgresql", reason="row locks between transactions")
async def test_rolling_back_lets_the_row_locks_taken_since_go(container: Container) -> None:
    async with container.db.write() as conn:
        await conn.execute(idempotency_keys.insert(), [_row(1), _row(2)])
    locked_row = idempotency_keys.select().where(idempotency_keys.c.key == "key-1")
    async with container.db.write() as conn:
        savepoint = await begin_savepoint(conn, "locks")
        await conn.execute(locked_row.with_for_update())

        async def lock_without_waiting() -> None:
            async with container.db.write() as other:
                await other.execute(locked_row.with_for_update(nowait=True))

        with pytest.raises(Contention):  # the lock is not available: the unit of work's 503
            await asyncio.wait_for(lock_without_waiting(), 10)
        await savepoint.rollback()
        # Still inside the first transaction, the row is free for the other one.
        await asyncio.wait_for(lock_without_waiting(), 10)


@pytest.mark.skipif(TEST_DB != "postgresql", reason="asyncpg's errors")
async def test_a_failing_command_raises_as_sqlalchemy_does(container: Container) -> None:
    with pytest.raises(DBAPIError):
        async with container.db.write() as conn:
            await conn.execute(idempotency_keys.insert(), _row(1))
            savepoint = await begin_savepoint(conn, "gone")
            await savepoint.commit()
            # Released already: rolling back to it is the database's error, raised as
            # SQLAlchemy raises its own statements' errors.
            await RawSavepoint(conn, savepoint._driver, "gone")._send(  # type: ignore[attr-defined]
                "ROLLBACK TO SAVEPOINT gone"
            )
    assert await _keys(container) == []
