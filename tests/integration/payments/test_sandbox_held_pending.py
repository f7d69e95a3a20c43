"""The sandbox test value ``held_pending`` (amount ending in 11): the payment stays
pending, not sent to the rail, long enough to cancel it; left alone it is sent later."""

from __future__ import annotations

from tests.integration.payments import test_payment_flow as flow
from tests.integration.payments.test_payment_flow import World, _drive, _ledger_ok, _pay, _status

from amanat.payments.service import PaymentsConfig
from amanat.sandbox_rail.magic import MAGIC_VALUES

world = flow.world  # the fixture: amanat with the sandbox rail mounted, one partner
HELD = 100_011


def test_the_documented_value_is_the_one_the_payments_hold() -> None:
    row = next(value for value in MAGIC_VALUES if value.code == "held_pending")
    assert int(row.amount_suffix) == PaymentsConfig().sandbox_hold_suffix
    assert row.example_amount == HELD


async def test_a_held_payout_stays_pending_and_can_be_canceled(world: World) -> None:
    payment_id = await _pay(world, HELD, "held")
    assert await world.dispatcher.run_once() == 0, "not sent to the rail yet"
    world.container.clock.advance(seconds=30)  # type: ignore[attr-defined]
    assert await world.dispatcher.run_once() == 0
    assert (await _status(world, payment_id))["status"] == "pending"
    response = await world.http.post(
        f"/v1/payments/{payment_id}/cancel", headers=world.auth | {"Idempotency-Key": "cancel"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"
    world.container.clock.advance(seconds=31)  # type: ignore[attr-defined]
    await world.dispatcher.run_once()
    assert (await _status(world, payment_id))["status"] == "canceled"
    assert await world.container.rail.status(payment_id) is None, "never reached the rail"
    balance = (await world.http.get("/v1/balance", headers=world.auth)).json()
    assert (balance["available"], balance["held"]) == (10_000_000, 0)
    await _ledger_ok(world)


async def test_a_held_payout_left_alone_is_sent_after_the_hold(world: World) -> None:
    payment_id = await _pay(world, HELD, "held-later")
    assert await world.dispatcher.run_once() == 0
    world.container.clock.advance(seconds=61)  # type: ignore[attr-defined]
    body = await _drive(world, payment_id, want="succeeded")
    assert body["version"] == 3
    await _ledger_ok(world)
