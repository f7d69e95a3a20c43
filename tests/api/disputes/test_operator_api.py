"""Operations' side of disputes under ``/operator/v1/disputes``: permissions, opening a
dispute for any merchant, responding for one, reading the history, deciding; and what a
settlement shows of the journals disputes post."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from tests.api.identity.test_operator_api import problem_code
from tests.support import disputes as d
from tests.support.operators import NewClient

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock

API = "/operator/v1/disputes"


async def test_permissions(client: httpx.AsyncClient, container: Container) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    dispute = await d.opened(client, shop, payment, amount=1_000)
    assert (await client.get(API)).status_code == 401
    csrf = await d.operations(client, container, "support")
    listed = await client.get(API)
    assert listed.status_code == 200 and listed.json()["data"][0]["id"] == dispute["id"]
    refused = await client.post(
        API, json={"payment_id": payment, "reason": "fraud"}, headers={"X-CSRF-Token": csrf}
    )
    assert (refused.status_code, problem_code(refused)) == (403, "forbidden")
    refused = await client.post(
        f"{API}/{dispute['id']}/decide",
        json={"outcome": "won", "note": "not mine to decide"},
        headers={"X-CSRF-Token": csrf},
    )
    assert (refused.status_code, problem_code(refused)) == (403, "forbidden")
    csrf = await d.operations(client, container, "risk")  # disputes.write
    no_csrf = await client.post(API, json={"payment_id": payment, "reason": "fraud"})
    assert (no_csrf.status_code, problem_code(no_csrf)) == (403, "csrf_failed")


async def test_operations_open_respond_and_decide_with_a_history(
    client: httpx.AsyncClient, new_client: NewClient, container: Container
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    csrf = await d.operations(client, container)
    headers = {"X-CSRF-Token": csrf}
    opened = await client.post(
        API,
        json={"payment_id": payment, "reason": "unauthorised", "amount": 20_000},
        headers=headers | {"X-Request-Id": "ops-open-1"},
    )
    assert opened.status_code == 201, opened.text
    dispute: dict[str, Any] = opened.json()
    assert (dispute["opened_by"], dispute["partner_id"]) == ("operator", shop.partner_id)
    assert dispute["opener_id"].startswith("op_")
    [step] = dispute["history"]
    assert (step["from_status"], step["to_status"], step["action"]) == (
        None,
        "needs_response",
        "open",
    )
    assert (step["actor_type"], step["request_id"]) == ("operator", "ops-open-1")
    assert len(step["journal_ids"]) == 1  # the hold
    mine = (await client.get(f"/v1/disputes/{dispute['id']}", headers=shop.auth)).json()
    assert mine["opened_by"] == "operator" and "history" not in mine
    short = await client.post(
        f"{API}/{dispute['id']}/respond", json={"explanation": ""}, headers=headers
    )
    assert short.status_code == 422
    responded = await client.post(
        f"{API}/{dispute['id']}/respond",
        json={"explanation": "The merchant confirmed delivery by phone."},
        headers=headers,
    )
    assert responded.status_code == 200, responded.text
    assert responded.json()["response"]["submitted_by"] == "operator"
    # Four eyes: who opened it and answered for the merchant does not decide it.
    own = await client.post(
        f"{API}/{dispute['id']}/decide",
        json={"outcome": "lost", "note": "No proof of delivery."},
        headers=headers,
    )
    assert own.status_code == 409
    assert problem_code(own) == "dispute_decision_needs_another_operator"
    colleague = new_client()
    colleague_headers = {"X-CSRF-Token": await d.operations(colleague, container)}
    no_note = await colleague.post(
        f"{API}/{dispute['id']}/decide",
        json={"outcome": "lost", "note": "x"},
        headers=colleague_headers,
    )
    assert no_note.status_code == 422
    decided = await colleague.post(
        f"{API}/{dispute['id']}/decide",
        json={"outcome": "lost", "note": "No proof of delivery."},
        headers=colleague_headers,
    )
    assert decided.status_code == 200, decided.text
    got = (await client.get(f"{API}/{dispute['id']}")).json()
    assert [(h["from_status"], h["to_status"]) for h in got["history"]] == [
        (None, "needs_response"),
        ("needs_response", "under_review"),
        ("under_review", "lost"),
    ]
    assert got["history"][2]["note"] == "No proof of delivery."
    assert got["history"][2]["action"] == "lose" and len(got["history"][2]["journal_ids"]) == 1
    assert got["status"] == "lost" and got["reversed_amount"] == 20_000
    types = [e["type"] for e in await d.events(client, shop)]
    assert types == ["dispute.opened", "dispute.updated", "dispute.closed"]


async def test_the_operators_list_filters(client: httpx.AsyncClient, container: Container) -> None:
    one = await d.shop(client, container, name="One")
    two = await d.shop(client, container, name="Two")
    first = await d.opened(client, one, await d.collection(client, container, one, 10_000))
    second = await d.opened(client, two, await d.collection(client, container, two, 10_000))
    await d.act(client, two, second["id"], "accept")
    await d.operations(client, container, "auditor")
    everyone = (await client.get(API)).json()["data"]
    assert {x["id"] for x in everyone} == {first["id"], second["id"]}
    by_partner = (await client.get(API, params={"partner_id": two.partner_id})).json()["data"]
    assert [x["id"] for x in by_partner] == [second["id"]]
    waiting = (await client.get(API, params={"status": "needs_response"})).json()["data"]
    assert [x["id"] for x in waiting] == [first["id"]]
    by_payment = await client.get(API, params={"payment_id": first["payment_id"]})
    assert [x["id"] for x in by_payment.json()["data"]] == [first["id"]]
    assert (await client.get(f"{API}/dp_01JDX3M9Q5W8C2V7T4K6B0N1ZP")).status_code == 404


async def test_a_settlement_shows_dispute_holds_and_returns(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    """The journals land in the merchant's settlement: a hold as money out, a release and
    a returned payout as money back, a reversal to the payer not at all (the hold already
    took it out); and the settlement ties to the ledger."""
    shop = await d.shop(client, container, top_up=500_000)
    collected = await d.collection(client, container, shop, 100_000)
    paid = await d.payout(client, container, shop, 60_000)
    kept = await d.opened(client, shop, collected, amount=30_000)
    given_back = await d.opened(client, shop, collected, amount=20_000)
    await d.act(client, shop, given_back["id"], "accept")  # reversed to the payer
    withdrawn = await d.opened(client, shop, collected, amount=10_000)
    await d.act(client, shop, withdrawn["id"], "withdraw")  # released
    returned = await d.opened(client, shop, paid, reason="not_received")
    await d.act(client, shop, returned["id"], "respond", explanation="Never arrived.")
    csrf = await d.operations(client, container)
    decided = await client.post(
        f"{API}/{returned['id']}/decide",
        json={"outcome": "won", "note": "The rail confirms it was returned."},
        headers={"X-CSRF-Token": csrf},
    )
    assert decided.status_code == 200, decided.text
    clock.set(datetime(2026, 11, 24, 12, 5, tzinfo=UTC))  # Tuesday, after the 17:00 cut-off
    csrf = await d.operations(client, container)  # the first session has expired
    closed = await client.post(
        "/operator/v1/settlements/cycles/2026-11-24/close", headers={"X-CSRF-Token": csrf}
    )
    assert closed.status_code == 200, closed.text
    [settlement] = closed.json()["settlements"]
    assert settlement["dispute_holds"] == 30_000 + 20_000 + 10_000
    assert settlement["dispute_reversals"] == 10_000 + 60_000  # the release and the return
    assert settlement["opening_balance"] + settlement["net"] == settlement["closing_balance"]
    await shop.sign_in(client)
    lines = (
        await client.get(
            f"/v1/settlements/{settlement['id']}/lines", params={"limit": 100}, headers=shop.auth
        )
    ).json()["data"]
    disputed = [
        (x["kind"], x["reference"], x["amount"]) for x in lines if x["kind"].startswith("dispute")
    ]
    assert disputed == [
        ("dispute_hold", kept["id"], -30_000),
        ("dispute_hold", given_back["id"], -20_000),
        ("dispute_hold", withdrawn["id"], -10_000),
        ("dispute_reversal", withdrawn["id"], 10_000),
        ("dispute_reversal", returned["id"], 60_000),
    ]
    balance = await d.balance(client, shop)
    assert balance["available"] == settlement["closing_balance"]
    assert await d.ledger(container, shop.partner_id) == {
        "merchant": settlement["closing_balance"],
        "dispute_held": 30_000,
    }
