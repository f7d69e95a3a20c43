"""The money path end to end in one process: partner API -> outbox -> dispatcher ->
sandbox rail -> signed callbacks / status enquiries -> payment, ledger and balance.

Each magic amount of the sandbox rail (docs/sandbox-rail.md) gives its documented outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.conftest import wipe
from tests.support.oauth import ACTOR, fetch_token, make_client

from amanat.app import create_app
from amanat.auth.domain import Caller
from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import FrozenClock
from amanat.payments.tables import rejected_callbacks
from amanat.platform.jobs.runtime import JobRuntime
from amanat.platform.settings import Settings
from amanat.sandbox_rail.app import create_rail_app
from amanat.sandbox_rail.engine import RailSettings

IBAN = "PK36SCBL0000001123456702"


@dataclass
class World:
    container: Container
    http: httpx.AsyncClient
    dispatcher: JobRuntime
    auth: dict[str, str]
    rail_settings: RailSettings


@pytest.fixture
async def world(
    request: pytest.FixtureRequest, settings: Settings, clock: FrozenClock
) -> AsyncIterator[World]:
    transport = httpx.ASGITransport(app=None, raise_app_exceptions=False)  # type: ignore[arg-type]
    http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    settings = settings.model_copy(
        update={
            "http": settings.http.model_copy(update={"public_url": "http://testserver"}),
            # Why 5 s by default: a slow machine must not time out ordinary rail calls.
            # A test of the rail's "05" (which holds its answer longer than any of these)
            # asks for a short one with ``@pytest.mark.parametrize("world", [0.3],
            # indirect=True)``.
            "rail": settings.rail.model_copy(
                update={"timeout_seconds": getattr(request, "param", 5.0)}
            ),
        }
    )
    container = build_container(settings, clock=clock, http=http)
    app = create_app(container=container)

    async def clock_sleep(seconds: float) -> None:
        """The rail's timers follow the test's clock, so tests travel instead of waiting."""
        target = clock.now().timestamp() + seconds
        while clock.now().timestamp() < target:
            await asyncio.sleep(0.005)

    rail_settings = RailSettings(
        callback_secret=settings.rail.secret.get_secret_value(),
        admin_token="admin",
        settle_delay=0.0,
        timeout_hold_seconds=20,
        delayed_callback_seconds=10,
        callback_backoff_seconds=0.0,
        http=http,
        clock=clock,
        sleep=clock_sleep,
    )
    rail = create_rail_app(rail_settings)
    app.mount("/sandbox-rail", rail)
    transport.app = app
    merchant = await make_client(container, name="Flow shop")
    await container.payments.top_up(Caller(merchant.partner.id, None, ACTOR), 10_000_000)
    token = await fetch_token(http, merchant)
    dispatcher = container.job_runtime(owner="test")
    try:
        yield World(
            container,
            http,
            dispatcher,
            {"Authorization": f"Bearer {token['access_token']}"},
            rail_settings,
        )
    finally:
        await rail.state.rail_engine.aclose()
        await wipe(container)
        await container.close()


async def _pay(world: World, amount: int, key: str, **extra: Any) -> str:
    body = {"amount": amount, "currency": "PKR", "creditor": {"iban": IBAN, "name": "A K"}}
    response = await world.http.post(
        "/v1/payments", json=body | extra, headers=world.auth | {"Idempotency-Key": key}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _status(world: World, payment_id: str) -> dict[str, Any]:
    response = await world.http.get(f"/v1/payments/{payment_id}", headers=world.auth)
    body: dict[str, Any] = response.json()
    return body


async def _drive(
    world: World, payment_id: str, *, want: str, rounds: int = 60, advance: float = 0.0
) -> dict[str, Any]:
    """Run the dispatcher and let the rail's timers fire until the payment is ``want``."""
    body: dict[str, Any] = {}
    for _ in range(rounds):
        await world.dispatcher.run_once()
        await asyncio.sleep(0.02)
        body = await _status(world, payment_id)
        if body["status"] == want:
            return body
        if advance:
            world.container.clock.advance(seconds=advance)  # type: ignore[attr-defined]
    raise AssertionError(f"{payment_id} stayed {body.get('status')}, wanted {want}")


async def _ledger_ok(world: World) -> None:
    async with world.container.transactions.read() as tx:
        assert await tx.ledger.check() == []


async def test_a_payout_succeeds_through_the_rail(world: World) -> None:
    payment_id = await _pay(world, 150_000, "ok")
    body = await _drive(world, payment_id, want="succeeded")
    assert body["version"] == 3
    balance = (await world.http.get("/v1/balance", headers=world.auth)).json()
    assert (balance["available"], balance["held"]) == (9_850_000, 0)
    await _ledger_ok(world)


@pytest.mark.parametrize(
    ("amount", "code"), [(100_001, "rail_ac01"), (100_002, "rail_ac06"), (100_004, "rail_am02")]
)
async def test_rejections_fail_and_release_the_hold(world: World, amount: int, code: str) -> None:
    payment_id = await _pay(world, amount, f"rej-{amount}")
    body = await _drive(world, payment_id, want="failed")
    assert body["failure"]["code"] == code
    balance = (await world.http.get("/v1/balance", headers=world.auth)).json()
    assert (balance["available"], balance["held"]) == (10_000_000, 0)
    await _ledger_ok(world)


async def test_bank_unavailable_rejection(world: World) -> None:
    payment_id = await _pay(world, 100_003, "noas")
    body = await _drive(world, payment_id, want="failed")
    assert body["failure"]["code"].startswith("rail_")


async def test_rail_downtime_is_retried_with_the_same_end_to_end_id(world: World) -> None:
    payment_id = await _pay(world, 100_006, "503")
    body = await _drive(world, payment_id, want="succeeded", advance=5)
    assert body["end_to_end_id"] == payment_id
    await _ledger_ok(world)


@pytest.mark.parametrize("world", [0.3], indirect=True)  # the rail timeout: "05" exceeds it
async def test_timeout_is_resolved_by_status_enquiry(world: World) -> None:
    payment_id = await _pay(world, 100_005, "timeout")
    body = await _drive(world, payment_id, want="succeeded", advance=10)
    assert body["status"] == "succeeded"
    await _ledger_ok(world)


@pytest.mark.parametrize("amount", [100_007, 100_008, 100_009])
async def test_delayed_duplicate_and_out_of_order_callbacks(world: World, amount: int) -> None:
    payment_id = await _pay(world, amount, f"cb-{amount}")
    body = await _drive(world, payment_id, want="succeeded", advance=5)
    for _ in range(20):  # let any late or repeated callbacks arrive
        await asyncio.sleep(0.02)
    body = await _status(world, payment_id)
    assert body["status"] == "succeeded" and body["version"] == 3
    await _ledger_ok(world)


async def test_no_callback_only_enquiry_finds_the_outcome(world: World) -> None:
    payment_id = await _pay(world, 100_010, "silent")
    body = await _drive(world, payment_id, want="succeeded", advance=35)
    assert body["status"] == "succeeded"


async def test_collections_approve_decline_expire(world: World) -> None:
    ids = {}
    for amount, key in ((50_000, "ok"), (50_021, "no"), (50_022, "quiet")):
        response = await world.http.post(
            "/v1/payments",
            json={
                "type": "collection",
                "amount": amount,
                "currency": "PKR",
                "debtor": {"raast_id": "03001234567"},
                "expires_in_seconds": 60,
            },
            headers=world.auth | {"Idempotency-Key": f"col-{key}"},
        )
        assert response.status_code == 201, response.text
        ids[key] = response.json()["id"]
    assert (await _drive(world, ids["ok"], want="succeeded"))["type"] == "collection"
    assert (await _drive(world, ids["no"], want="failed"))["failure"]["code"] == "rail_cust"
    await _drive(world, ids["quiet"], want="expired", advance=20)
    balance = (await world.http.get("/v1/balance", headers=world.auth)).json()
    assert balance["available"] == 10_050_000
    await _ledger_ok(world)


async def test_forged_callback_is_refused_and_recorded(world: World) -> None:
    payment_id = await _pay(world, 150_000, "forged")
    body = (
        f'{{"event_id":"rev_x","end_to_end_id":"{payment_id}","status":"settled",'
        '"reason_code":null,"reason":null,"sequence":9,'
        '"occurred_at":"2026-11-24T08:15:30.123Z"}'
    )
    response = await world.http.post(
        "/rails/raast/callbacks",
        content=body.encode(),
        headers={"Rail-Signature": "t=1,v1=00", "content-type": "application/json"},
    )
    assert response.status_code == 401
    assert (await _status(world, payment_id))["status"] == "pending"
    async with world.container.db.read() as conn:
        count = (
            await conn.execute(sa.select(sa.func.count()).select_from(rejected_callbacks))
        ).scalar_one()
    assert count == 1


async def test_a_worker_that_died_mid_job_is_taken_over(world: World) -> None:
    """Crash after claiming the job and marking the payment submitted, before the rail call:
    the lease runs out, another worker takes the job, and the payment completes once."""
    payment_id = await _pay(world, 150_000, "crash")
    clock = world.container.clock
    async with world.container.transactions.write() as tx:
        jobs = await tx.outbox.claim(
            "dead-worker", clock.now(), clock.now() + timedelta(seconds=60), 10
        )
    assert [j.subject_id for j in jobs] == [payment_id]
    assert await world.container.payments.claim_submission(payment_id) is not None
    # The dead worker never calls the rail. Its lease blocks others until it expires.
    assert await world.dispatcher.run_once() == 0
    clock.advance(seconds=61)  # type: ignore[attr-defined]
    body = await _drive(world, payment_id, want="succeeded")
    assert body["version"] == 3
    transfer = await world.container.rail.status(payment_id)
    assert transfer is not None and transfer.status == "settled"
    balance = (await world.http.get("/v1/balance", headers=world.auth)).json()
    assert (balance["available"], balance["held"]) == (9_850_000, 0)
    await _ledger_ok(world)
