"""Disputes the rail raises, end to end in one process: a payment settles through the
sandbox rail, the payer's bank disputes it there, the rail tells amanat with a signed
message, the merchant answers over the API, the rail decides and tells amanat again.
amanat refuses unsigned, forged and malformed messages and applies each one once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.api.identity.test_operator_api import problem_code
from tests.conftest import wipe
from tests.support import disputes as d
from tests.support.oauth import ACTOR, fetch_token, make_client

from amanat.app import create_app
from amanat.auth.domain import Caller
from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import FrozenClock
from amanat.kernel.rail_signatures import SIGNATURE_HEADER, sign
from amanat.payments.tables import rejected_callbacks
from amanat.platform.jobs.runtime import JobRuntime
from amanat.platform.settings import Settings
from amanat.sandbox_rail.app import create_rail_app
from amanat.sandbox_rail.engine import RailSettings

IBAN = "PK36SCBL0000001123456702"
RAIL = "/sandbox-rail/v1"


@dataclass
class World:
    container: Container
    http: httpx.AsyncClient
    dispatcher: JobRuntime
    shop: d.Shop
    secret: str


@pytest.fixture
async def world(settings: Settings, clock: FrozenClock) -> AsyncIterator[World]:
    transport = httpx.ASGITransport(app=None, raise_app_exceptions=False)  # type: ignore[arg-type]
    http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    settings = settings.model_copy(
        update={"http": settings.http.model_copy(update={"public_url": "http://testserver"})}
    )
    container = build_container(settings, clock=clock, http=http)
    app = create_app(container=container)

    async def clock_sleep(seconds: float) -> None:
        target = clock.now().timestamp() + seconds
        while clock.now().timestamp() < target:
            await asyncio.sleep(0.005)

    secret = settings.rail.secret.get_secret_value()
    rail = create_rail_app(
        RailSettings(
            callback_secret=secret,
            admin_token="admin",
            settle_delay=0.0,
            callback_backoff_seconds=0.0,
            http=http,
            clock=clock,
            sleep=clock_sleep,
        )
    )
    app.mount("/sandbox-rail", rail)
    transport.app = app
    merchant = await make_client(container, name="Rail shop")
    await container.payments.top_up(Caller(merchant.partner.id, None, ACTOR), 1_000_000)
    token = await fetch_token(http, merchant)
    shop = d.Shop(merchant, {"Authorization": f"Bearer {token['access_token']}"})
    try:
        yield World(container, http, container.job_runtime(owner="test"), shop, secret)
    finally:
        await rail.state.rail_engine.aclose()
        await wipe(container)
        await container.close()


async def _settled(world: World, body: dict[str, Any]) -> str:
    """A payment made over the API and settled by the rail (its callbacks applied)."""
    created = await world.http.post(
        "/v1/payments", json=body, headers=world.shop.auth | {"Idempotency-Key": d.key()}
    )
    assert created.status_code == 201, created.text
    payment_id: str = created.json()["id"]
    for _ in range(100):
        await world.dispatcher.run_once()
        await asyncio.sleep(0.01)
        got = await world.http.get(f"/v1/payments/{payment_id}", headers=world.shop.auth)
        if got.json()["status"] == "succeeded":
            return payment_id
    raise AssertionError(f"{payment_id} did not settle")


async def _payout(world: World, amount: int) -> str:
    return await _settled(
        world, {"amount": amount, "currency": "PKR", "creditor": {"iban": IBAN, "name": "A K"}}
    )


async def _collection(world: World, amount: int) -> str:
    return await _settled(
        world,
        {
            "type": "collection",
            "amount": amount,
            "currency": "PKR",
            "debtor": {"raast_id": "03001234567", "name": "Bilal Ahmed"},
        },
    )


async def _raise(world: World, payment_id: str, **body: Any) -> httpx.Response:
    return await world.http.post(
        f"{RAIL}/disputes", json={"end_to_end_id": payment_id, "reason": "fraud", **body}
    )


async def _decide(world: World, rail_dispute_id: str, outcome: str) -> httpx.Response:
    return await world.http.post(
        f"{RAIL}/disputes/{rail_dispute_id}/decision", json={"outcome": outcome}
    )


async def _dispute(world: World, dispute_id: str) -> dict[str, Any]:
    got = await world.http.get(f"/v1/disputes/{dispute_id}", headers=world.shop.auth)
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


async def test_a_payout_disputed_at_the_rail_and_won(world: World) -> None:
    payment_id = await _payout(world, 150_000)
    assert await d.balance(world.http, world.shop) == {"available": 850_000, "held": 0}
    raised = await _raise(world, payment_id, reason="not_received")
    assert raised.status_code == 201, raised.text
    at_rail = raised.json()
    assert at_rail["status"] == "raised" and at_rail["amount"] == 150_000
    dispute_id = at_rail["amanat_dispute_id"]
    dispute = await _dispute(world, dispute_id)
    assert (dispute["opened_by"], dispute["reason"], dispute["status"]) == (
        "rail",
        "not_received",
        "needs_response",
    )
    detail = await d.service(world.container).get(dispute_id)
    assert detail.dispute.rail_dispute_id == at_rail["rail_dispute_id"]
    assert detail.history[0].actor_type == "rail"
    # The merchant may not withdraw what the payer's bank raised; it answers instead.
    refused = await d.act(world.http, world.shop, dispute_id, "withdraw")
    assert problem_code(refused) == "dispute_withdrawal_refused"
    await d.act(world.http, world.shop, dispute_id, "respond", explanation="Never arrived.")
    decided = await _decide(world, at_rail["rail_dispute_id"], "won")
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "won"
    dispute = await _dispute(world, dispute_id)
    assert (dispute["status"], dispute["returned_amount"]) == ("won", 150_000)
    assert await d.balance(world.http, world.shop) == {"available": 1_000_000, "held": 0}
    again = await _decide(world, at_rail["rail_dispute_id"], "won")  # the same decision: as is
    assert again.status_code == 200 and (await _dispute(world, dispute_id))["version"] == 3
    status = await world.http.get(f"{RAIL}/disputes/{at_rail['rail_dispute_id']}")
    assert status.json()["status"] == "won"
    assert [e["type"] for e in await d.events(world.http, world.shop)] == [
        "dispute.opened",
        "dispute.updated",
        "dispute.closed",
    ]
    await d.ledger(world.container, world.shop.partner_id)  # checks the ledger


async def test_a_collection_disputed_at_the_rail_and_lost(world: World) -> None:
    payment_id = await _collection(world, 200_000)
    raised = (await _raise(world, payment_id, amount=50_000)).json()
    dispute_id = raised["amanat_dispute_id"]
    assert (await _dispute(world, dispute_id))["held_amount"] == 50_000
    assert await d.balance(world.http, world.shop) == {"available": 1_150_000, "held": 0}
    early = await _decide(world, raised["rail_dispute_id"], "lost")
    assert early.status_code == 502
    assert early.json()["error"] == "not_acknowledged"
    assert early.json()["detail"]["status_code"] == 409  # amanat: not under review yet
    assert early.json()["detail"]["answer"]["code"] == "dispute_transition_refused"
    await d.act(world.http, world.shop, dispute_id, "respond", explanation="It was delivered.")
    assert (await _decide(world, raised["rail_dispute_id"], "lost")).status_code == 200
    dispute = await _dispute(world, dispute_id)
    assert (dispute["status"], dispute["reversed_amount"]) == ("lost", 50_000)
    assert await d.balance(world.http, world.shop) == {"available": 1_150_000, "held": 0}
    await d.ledger(world.container, world.shop.partner_id)


async def test_the_rail_withdraws_a_dispute_it_raised(world: World) -> None:
    payment_id = await _collection(world, 200_000)
    raised = (await _raise(world, payment_id, amount=80_000)).json()
    assert await d.balance(world.http, world.shop) == {"available": 1_120_000, "held": 0}
    assert (await _decide(world, raised["rail_dispute_id"], "withdrawn")).status_code == 200
    dispute = await _dispute(world, raised["amanat_dispute_id"])
    assert (dispute["status"], dispute["released_amount"]) == ("withdrawn", 80_000)
    assert await d.balance(world.http, world.shop) == {"available": 1_200_000, "held": 0}


async def test_the_rail_disputes_only_what_it_settled(world: World) -> None:
    unknown = await _raise(world, "pay_01JDX3M9Q5W8C2V7T4K6B0N1ZP")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_transfer")
    payment_id = await _payout(world, 10_000)
    too_much = await _raise(world, payment_id, amount=10_001)
    assert too_much.status_code == 400


def _signed(
    world: World, message: dict[str, Any], secret: str | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(message).encode()
    now = int(world.container.clock.now().timestamp())
    return body, {
        SIGNATURE_HEADER: sign(secret or world.secret, body, now),
        "Content-Type": "application/json",
    }


async def test_amanat_applies_each_rail_message_once(world: World) -> None:
    payment_id = await _payout(world, 20_000)
    message = {
        "event_id": "rde_1",
        "type": "dispute.raised",
        "rail_dispute_id": "RDP261124999001",
        "end_to_end_id": payment_id,
        "reason": "unauthorised",
        "amount": 5_000,
        "currency": "PKR",
        "occurred_at": "2026-11-24T08:15:30.123Z",
    }
    body, headers = _signed(world, message)
    first = await world.http.post("/rails/raast/disputes", content=body, headers=headers)
    again = await world.http.post("/rails/raast/disputes", content=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["dispute_id"] == again.json()["dispute_id"]
    listed = (await world.http.get("/v1/disputes", headers=world.shop.auth)).json()["data"]
    assert [x["id"] for x in listed] == [first.json()["dispute_id"]]
    assert listed[0]["amount"] == 5_000 and listed[0]["reason"] == "unauthorised"


async def test_unsigned_forged_and_malformed_messages_are_refused(world: World) -> None:
    payment_id = await _payout(world, 20_000)
    message = {
        "event_id": "rde_2",
        "type": "dispute.raised",
        "rail_dispute_id": "RDP261124999002",
        "end_to_end_id": payment_id,
        "reason": "fraud",
        "occurred_at": "2026-11-24T08:15:30.123Z",
    }
    body, _ = _signed(world, message)
    unsigned = await world.http.post(
        "/rails/raast/disputes", content=body, headers={"Content-Type": "application/json"}
    )
    assert (unsigned.status_code, problem_code(unsigned)) == (401, "unauthorized")
    forged_body, forged = _signed(world, message, secret="not-the-rail")
    assert (
        await world.http.post("/rails/raast/disputes", content=forged_body, headers=forged)
    ).status_code == 401
    tampered = body.replace(b"fraud", b"other")
    _, headers = _signed(world, message)
    assert (
        await world.http.post("/rails/raast/disputes", content=tampered, headers=headers)
    ).status_code == 401
    bad_body, bad = _signed(world, message | {"type": "dispute.exploded"})
    refused = await world.http.post("/rails/raast/disputes", content=bad_body, headers=bad)
    assert (refused.status_code, problem_code(refused)) == (400, "validation_error")
    assert (await world.http.get("/v1/disputes", headers=world.shop.auth)).json()["data"] == []
    async with world.container.db.read() as conn:
        reasons = (await conn.execute(sa.select(rejected_callbacks.c.reason))).scalars().all()
    assert sorted(reasons) == sorted(
        ["dispute: missing", "dispute: mismatch", "dispute: mismatch", "dispute: malformed"]
    )
