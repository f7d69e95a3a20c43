"""What an idempotency record keeps for a transaction's timeline: the object its request
created or acted on (``resource_id``: the answer's top-level id, or what the route names),
and how often its stored answer was replayed and when last. Counting a replay is best
effort: counts are kept in memory and written a moment later, many keys at once
(platform/idempotency/replay_counts.py), so a replay is answered the same when the write
fails or meets a lock, and it never waits for one."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB
from tests.support.oauth import RegisteredClient, bearer, funded_merchant

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.platform.idempotency.service import IdempotencyService
from amanat.platform.idempotency.store import SqlIdempotencyRepository, record_id
from amanat.platform.idempotency.tables import idempotency_keys

IBAN = "PK36SCBL0000001123456702"
CUSTOMER = {"name": "Ayesha Khan", "iban": IBAN}
PAYOUT = {"amount": 150_000, "currency": "PKR", "creditor": {"iban": IBAN, "name": "A K"}}


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    return await funded_merchant(container, "Shop", balance=200_000)


@pytest.fixture
async def auth(client: httpx.AsyncClient, merchant: RegisteredClient) -> dict[str, str]:
    return await bearer(client, merchant)


async def _record(container: Container, key: str) -> dict[str, Any]:
    await container.get(IdempotencyService).flush_replay_counts()
    async with container.db.read() as conn:
        row = (
            await conn.execute(
                sa.select(
                    idempotency_keys.c.resource_id,
                    idempotency_keys.c.replays,
                    idempotency_keys.c.last_replayed_at,
                    idempotency_keys.c.response_status,
                ).where(idempotency_keys.c.key == key)
            )
        ).one()
    return dict(row._mapping)


async def _post(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, body: Any, key: str
) -> httpx.Response:
    return await client.post(path, json=body, headers=auth | {"Idempotency-Key": key})


async def test_a_request_keeps_what_it_created_and_counts_its_replays(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    created = await _post(client, auth, "/v1/customers", CUSTOMER, "cust-1")
    assert created.status_code == 201
    record = await _record(container, "cust-1")
    assert record == {
        "resource_id": created.json()["id"],
        "replays": 0,
        "last_replayed_at": None,
        "response_status": 201,
    }
    for n in (1, 2, 3):
        clock.advance(seconds=10)
        again = await _post(client, auth, "/v1/customers", CUSTOMER, "cust-1")
        assert again.headers["idempotent-replayed"] == "true" and again.json() == created.json()
        record = await _record(container, "cust-1")
        assert record["replays"] == n
        assert record["last_replayed_at"] == clock.now()


async def test_a_batched_payout_keeps_its_payment_and_a_refusal_keeps_none(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    paid = await _post(client, auth, "/v1/payments", PAYOUT, "payout-1")
    assert paid.status_code == 201
    assert (await _record(container, "payout-1"))["resource_id"] == paid.json()["id"]
    refused = await _post(client, auth, "/v1/payments", PAYOUT | {"amount": 900_000}, "payout-2")
    assert refused.status_code == 422, refused.text
    assert await _record(container, "payout-2") == {
        "resource_id": None,
        "replays": 0,
        "last_replayed_at": None,
        "response_status": 422,
    }
    replayed = await _post(client, auth, "/v1/payments", PAYOUT | {"amount": 900_000}, "payout-2")
    assert replayed.status_code == 422 and replayed.headers["idempotent-replayed"] == "true"
    assert (await _record(container, "payout-2"))["replays"] == 1


async def test_an_action_on_an_object_keeps_that_object(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    payment_id = (await _post(client, auth, "/v1/payments", PAYOUT, "payout-1")).json()["id"]
    canceled = await _post(client, auth, f"/v1/payments/{payment_id}/cancel", None, "cancel-1")
    assert canceled.status_code == 200, canceled.text
    assert (await _record(container, "cancel-1"))["resource_id"] == payment_id


async def test_a_replay_is_answered_when_its_count_fails(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = await _post(client, auth, "/v1/customers", CUSTOMER, "cust-1")

    async def broken(self: Any, counts: list[tuple[str, str, int, datetime]]) -> None:
        raise RuntimeError("the count failed")

    monkeypatch.setattr(SqlIdempotencyRepository, "count_replays", broken)
    again = await _post(client, auth, "/v1/customers", CUSTOMER, "cust-1")
    assert again.status_code == 201 and again.json() == created.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert (await _record(container, "cust-1"))["replays"] == 0


async def test_a_replay_never_waits_for_a_lock_to_be_counted(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    """While another transaction holds the key's row (PostgreSQL) or the database's one
    write lock (SQLite, as a payout batch does), a replay is answered at once; its count
    waits in memory and is written once the lock is gone."""
    created = await _post(client, auth, "/v1/customers", CUSTOMER, "cust-1")
    async with container.db.write() as conn:
        if not container.db.is_sqlite:
            await conn.execute(
                sa.select(idempotency_keys.c.id)
                .where(idempotency_keys.c.key == "cust-1")
                .with_for_update()
            )
        started = time.monotonic()
        again = await _post(client, auth, "/v1/customers", CUSTOMER, "cust-1")
        waited = time.monotonic() - started
    assert again.status_code == 201 and again.json() == created.json()
    assert again.headers["idempotent-replayed"] == "true"
    # Why 4 s: a real lock wait lasts the lock or busy timeout (5 s, 10 s); a slow machine
    # may take a couple of seconds to answer a replay.
    assert waited < 4.0, f"the replay waited {waited:.1f} s for a lock"
    # The lock gone, the next replay is counted; the first one too unless a flush met the
    # PostgreSQL row lock (skipped, never waited for).
    await _post(client, auth, "/v1/customers", CUSTOMER, "cust-1")
    assert (await _record(container, "cust-1"))["replays"] in (
        {2} if container.db.is_sqlite else {1, 2}
    )


async def test_many_replays_are_written_together_and_none_is_lost(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    keys = [f"cust-{n}" for n in range(5)]
    for key in keys:
        assert (await _post(client, auth, "/v1/customers", CUSTOMER, key)).status_code == 201
    for round_ in range(3):
        for key in keys[: round_ + 2]:
            again = await _post(client, auth, "/v1/customers", CUSTOMER, key)
            assert again.headers["idempotent-replayed"] == "true"
    counts = container.get(IdempotencyService).replay_counts
    assert counts.waiting <= len(keys)
    assert [(await _record(container, key))["replays"] for key in keys] == [3, 3, 2, 1, 0]
    assert counts.waiting == 0


@pytest.mark.skipif(TEST_DB != "postgresql", reason="row locks between transactions: PostgreSQL")
async def test_a_flush_skips_a_row_another_transaction_holds(
    container: Container, client: httpx.AsyncClient, auth: dict[str, str], clock: FrozenClock
) -> None:
    await _post(client, auth, "/v1/customers", CUSTOMER, "cust-1")
    await _post(client, auth, "/v1/customers", CUSTOMER, "cust-2")
    client_id = await _client_of(container, "cust-1")
    async with container.db.write() as conn:
        await conn.execute(
            sa.select(idempotency_keys.c.id)
            .where(idempotency_keys.c.id == record_id(client_id, "cust-1"))
            .with_for_update()
        )
        started = time.monotonic()
        async with container.transactions.write() as tx:
            await tx.idempotency.count_replays(
                [(client_id, "cust-1", 4, clock.now()), (client_id, "cust-2", 3, clock.now())]
            )
        # Why 4 s: waiting for the row would last lock_timeout (5 s); room for a slow machine.
        assert time.monotonic() - started < 4.0
    assert (await _record(container, "cust-1"))["replays"] == 0
    assert (await _record(container, "cust-2"))["replays"] == 3


async def _client_of(container: Container, key: str) -> str:
    async with container.db.read() as conn:
        return str(
            (
                await conn.execute(
                    sa.select(idempotency_keys.c.client_id).where(idempotency_keys.c.key == key)
                )
            ).scalar_one()
        )


async def test_a_flush_adds_each_keys_count_and_never_moves_its_time_back(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    for key in ("cust-1", "cust-2"):
        assert (await _post(client, auth, "/v1/customers", CUSTOMER, key)).status_code == 201
    client_id = await _client_of(container, "cust-1")
    later, earlier = clock.now(), clock.now() - timedelta(minutes=5)
    async with container.transactions.write() as tx:
        await tx.idempotency.count_replays(
            [(client_id, "cust-1", 2, later), (client_id, "cust-2", 5, earlier)]
        )
    # A second process's flush, written after but holding older replays of cust-1, and a
    # key this client never used: the first adds its count only, the second changes nothing.
    async with container.transactions.write() as tx:
        await tx.idempotency.count_replays(
            [(client_id, "cust-1", 3, earlier), (client_id, "never-used", 7, later)]
        )
    one, two = await _record(container, "cust-1"), await _record(container, "cust-2")
    assert (one["replays"], one["last_replayed_at"]) == (5, later)
    assert (two["replays"], two["last_replayed_at"]) == (5, earlier)
    async with container.db.read() as conn:
        total = (await conn.execute(sa.select(sa.func.sum(idempotency_keys.c.replays)))).scalar()
    assert total == 10
