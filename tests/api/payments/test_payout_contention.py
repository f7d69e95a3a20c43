"""Concurrent payouts against a balance that covers only some of them: every answer is a
201, a 422 insufficient_funds or a retryable 503, never a 500, and the money adds up.

On PostgreSQL this once deadlocked: the fast reserve path's single-shard UPDATE and the slow
path's ``ORDER BY shard FOR UPDATE`` took the shard rows in different orders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB
from tests.support.oauth import RegisteredClient, bearer, funded_merchant

from amanat.bootstrap import Container
from amanat.kernel.errors import Contention
from amanat.payments.domain.ledger import merchant_account
from amanat.payments.tables import balance_shards, holds

IBAN = "PK36SCBL0000001123456702"
BALANCE = 10_000_000  # PKR 100,000
AMOUNT = 500_000  # PKR 5,000: twenty fit, forty are asked for


async def test_forty_payouts_against_twenty_payouts_of_balance(
    client: httpx.AsyncClient, container: Container
) -> None:
    merchant = await funded_merchant(container, "Contended", BALANCE)
    auth = await bearer(client, merchant)

    async def pay(i: int) -> httpx.Response:
        return await client.post(
            "/v1/payments",
            json={
                "amount": AMOUNT,
                "currency": "PKR",
                "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
            },
            headers=auth | {"Idempotency-Key": f"contention-{i}"},
        )

    for _round in range(3):
        responses = await asyncio.gather(*[pay(i + 40 * _round) for i in range(40)])
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {201, 422, 503}, [
            (r.status_code, r.text[:200]) for r in responses if r.status_code >= 500
        ]
        for r in responses:
            if r.status_code == 422:
                assert r.json()["code"] == "insufficient_funds", r.text
            if r.status_code == 503:
                assert r.headers.get("retry-after"), r.headers
        if _round == 0:
            # Twenty fit; one answered 503 (retries exhausted) may leave room for another.
            assert statuses.count(201) == 20 or 503 in statuses, statuses
    async with container.transactions.read() as tx:
        assert await tx.ledger.check() == []
    async with container.db.read() as conn:
        held = (
            await conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(holds.c.amount), 0)).where(
                    holds.c.status == "active"
                )
            )
        ).scalar()
    assert held <= BALANCE
    balance = (await client.get("/v1/balance", headers=auth)).json()
    assert balance["available"] + held == BALANCE


PAYOUT = {"amount": 150_000, "currency": "PKR", "creditor": {"iban": IBAN, "name": "Ayesha Khan"}}


async def _merchant_auth(
    client: httpx.AsyncClient, container: Container
) -> tuple[RegisteredClient, dict[str, str]]:
    merchant = await funded_merchant(container, "Retried", BALANCE)
    return merchant, await bearer(client, merchant)


class _Deadlocks:
    """A stand-in for create_payout that does the real writes and then fails with
    Contention, as a deadlock would, on its first ``times`` calls (every call if None):
    the writes must roll back."""

    def __init__(self, real: Callable[..., Awaitable[object]], *, times: int | None) -> None:
        self.real = real
        self.times = times
        self.calls = 0

    async def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        result = await self.real(*args, **kwargs)
        if self.times is None or self.calls <= self.times:
            raise Contention("deadlock detected")
        return result


async def test_a_unit_of_work_the_database_gave_up_on_runs_again(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch deadlocks after its writes (they roll back), so the payout goes its own
    way, where the first transaction deadlocks too and the retry commits."""
    _, auth = await _merchant_auth(client, container)
    batch_deadlocked = _Deadlocks(container.payments.write_payouts, times=None)
    monkeypatch.setattr(container.payments, "write_payouts", batch_deadlocked)
    deadlocked_once = _Deadlocks(container.payments.create_payout, times=1)
    monkeypatch.setattr(container.payments, "create_payout", deadlocked_once)
    response = await client.post(
        "/v1/payments", json=PAYOUT, headers=auth | {"Idempotency-Key": "retried-1"}
    )
    assert response.status_code == 201, response.text
    assert batch_deadlocked.calls == 1
    assert deadlocked_once.calls == 2
    listed = (await client.get("/v1/payments", headers=auth)).json()
    assert [p["id"] for p in listed["data"]] == [response.json()["id"]]
    balance = (await client.get("/v1/balance", headers=auth)).json()
    assert balance["available"] == BALANCE - PAYOUT["amount"]


async def test_contention_that_persists_answers_503_and_leaves_the_key_free(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, auth = await _merchant_auth(client, container)
    real = container.payments.create_payout
    real_batch = container.payments.write_payouts
    monkeypatch.setattr(container.payments, "write_payouts", _Deadlocks(real_batch, times=None))
    always_deadlocked = _Deadlocks(real, times=None)
    monkeypatch.setattr(container.payments, "create_payout", always_deadlocked)
    headers = auth | {"Idempotency-Key": "retried-2"}
    response = await client.post("/v1/payments", json=PAYOUT, headers=headers)
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert always_deadlocked.calls == container.settings.database.contention_retries + 1
    assert (await client.get("/v1/payments", headers=auth)).json()["data"] == []

    monkeypatch.setattr(container.payments, "create_payout", real)
    monkeypatch.setattr(container.payments, "write_payouts", real_batch)
    again = await client.post("/v1/payments", json=PAYOUT, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers.get("idempotent-replayed") is None


postgresql_only = pytest.mark.skipif(
    TEST_DB != "postgresql", reason="row locks between transactions: PostgreSQL"
)
GUARD_SECONDS = 20  # a guard against a hang, not a measurement


async def _hold_shards(
    container: Container,
    account: str,
    shards: list[int],
    holding: asyncio.Event,
    done: asyncio.Event,
) -> None:
    """Another transaction (a rail callback, say) holding some of a merchant's shards."""
    async with container.db.write() as conn:
        await conn.execute(
            sa.select(balance_shards.c.shard)
            .where(balance_shards.c.account_id == account, balance_shards.c.shard.in_(shards))
            .with_for_update()
        )
        holding.set()
        await done.wait()


@postgresql_only
async def test_a_batch_takes_the_free_shards_without_waiting_for_a_held_one(
    client: httpx.AsyncClient, container: Container
) -> None:
    merchant, auth = await _merchant_auth(client, container)
    account = merchant_account(merchant.partner.id)
    holding, done = asyncio.Event(), asyncio.Event()
    other = asyncio.ensure_future(_hold_shards(container, account, [0, 1, 2, 3], holding, done))
    try:
        await holding.wait()
        async with asyncio.timeout(GUARD_SECONDS):
            answer = await client.post(
                "/v1/payments", json=PAYOUT, headers=auth | {"Idempotency-Key": "free-shards"}
            )
        assert answer.status_code == 201, answer.text
        assert not other.done(), "answered while the other transaction still held its shards"
    finally:
        done.set()
        await other


@postgresql_only
async def test_a_batch_waits_for_held_shards_when_the_free_ones_do_not_cover_it(
    client: httpx.AsyncClient, container: Container
) -> None:
    merchant, auth = await _merchant_auth(client, container)
    account = merchant_account(merchant.partner.id)
    holding, done = asyncio.Event(), asyncio.Event()
    every_shard = list(range(container.settings.payments.balance_shards))
    other = asyncio.ensure_future(_hold_shards(container, account, every_shard, holding, done))
    await holding.wait()
    pending = asyncio.ensure_future(
        client.post("/v1/payments", json=PAYOUT, headers=auth | {"Idempotency-Key": "all-held"})
    )
    await asyncio.sleep(0.3)
    assert not pending.done(), "no shard was free: it must wait, not refuse"
    done.set()
    await other
    async with asyncio.timeout(GUARD_SECONDS):
        answer = await pending
    assert answer.status_code == 201, answer.text
    async with container.transactions.read() as tx:
        assert await tx.ledger.check() == []
