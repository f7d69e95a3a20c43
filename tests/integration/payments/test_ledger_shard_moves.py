"""Settling a hold and crediting wait until just before COMMIT to touch balance shards
(payments/store.py, SqlLedgerRepository): the transaction still sees its own moves, they
are applied once, and a rolled-back transaction applies none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from amanat.bootstrap import Container
from amanat.payments.tables import balance_shards

ACCOUNT = "liability:merchant:prt_shardmoves:PKR"
AT = datetime(2026, 12, 4, tzinfo=UTC)


async def _shards(container: Container) -> dict[int, tuple[int, int]]:
    async with container.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(balance_shards).where(balance_shards.c.account_id == ACCOUNT)
            )
        ).all()
    return {r.shard: (int(r.posted), int(r.held)) for r in rows}


async def _funded(container: Container, amount: int) -> None:
    async with container.transactions.write() as tx:
        await tx.ledger.ensure_account(ACCOUNT, "liability", "PKR", 4, AT)
        await tx.ledger.credit(ACCOUNT, amount, spread=True, shard_count=4)


async def test_a_transaction_sees_its_own_waiting_moves(container: Container) -> None:
    await _funded(container, 1_000)
    async with container.transactions.write() as tx:
        await tx.ledger.reserve(ACCOUNT, "pay_one", 400, "PKR", AT, shard_count=4)
        assert await tx.ledger.close_hold("pay_one", post=True, at=AT) == 400
        await tx.ledger.credit(ACCOUNT, 50, spread=False, shard_count=4)
        # Not yet written: balance() applies the waiting moves first.
        assert await tx.ledger.balance(ACCOUNT) == (650, 0)
    assert sum(p for p, _ in (await _shards(container)).values()) == 650
    assert all(held == 0 for _, held in (await _shards(container)).values())


async def test_moves_are_applied_once_at_commit(container: Container) -> None:
    await _funded(container, 1_000)
    async with container.transactions.write() as tx:
        shard = await tx.ledger.reserve(ACCOUNT, "pay_two", 100, "PKR", AT, shard_count=4)
    async with container.transactions.write() as tx:
        assert await tx.ledger.close_hold("pay_two", post=False, at=AT) == 100
        # Still waiting in this transaction: the stored shard holds the amount.
        async with container.db.read() as other:
            held = (
                await other.execute(
                    sa.select(balance_shards.c.held).where(
                        balance_shards.c.account_id == ACCOUNT, balance_shards.c.shard == shard
                    )
                )
            ).scalar_one()
        assert held == 100
    shards = await _shards(container)
    assert shards[shard][1] == 0
    assert sum(p for p, _ in shards.values()) == 1_000


async def test_a_rolled_back_transaction_moves_nothing(container: Container) -> None:
    await _funded(container, 1_000)
    async with container.transactions.write() as tx:
        await tx.ledger.reserve(ACCOUNT, "pay_three", 300, "PKR", AT, shard_count=4)
    before = await _shards(container)
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with container.transactions.write() as tx:
            await tx.ledger.close_hold("pay_three", post=True, at=AT)
            await tx.ledger.credit(ACCOUNT, 999, spread=True, shard_count=4)
            raise RuntimeError("changed my mind")
    assert await _shards(container) == before
