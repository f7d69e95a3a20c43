"""Disputes over the partner API, one behaviour a test: each way a dispute ends and what
it does to the merchant's balance (``GET /v1/balance``) and to the ledger, amounts that
fit and do not, refused transitions, another merchant's disputes, idempotent replays,
paging, the events raised at each step and the audit records written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from tests.api.identity.test_operator_api import problem_code
from tests.support import disputes as d
from tests.support.oauth import fetch_token

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.payments.domain.ledger import RAAST_SETTLEMENT, dispute_held_account, merchant_account


async def decide(
    client: httpx.AsyncClient, csrf: str, dispute_id: str, outcome: str
) -> dict[str, Any]:
    response = await client.post(
        f"/operator/v1/disputes/{dispute_id}/decide",
        json={"outcome": outcome, "note": f"decided {outcome} on the evidence"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def responded(client: httpx.AsyncClient, shop: d.Shop, dispute_id: str) -> dict[str, Any]:
    response = await d.act(client, shop, dispute_id, "respond", explanation="It was delivered.")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "under_review"
    return body


# -- how a collection dispute moves money ------------------------------------------------


async def test_opening_holds_and_accepting_reverses_to_the_payer(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    dispute = await d.opened(client, shop, payment)
    assert dispute["status"] == "needs_response"
    assert (dispute["amount"], dispute["held_amount"], dispute["hold_shortfall"]) == (
        100_000,
        100_000,
        0,
    )
    assert dispute["payment_type"] == "collection" and dispute["opened_by"] == "merchant"
    assert await d.balance(client, shop) == {"available": 0, "held": 0}
    assert await d.ledger(container, shop.partner_id) == {"merchant": 0, "dispute_held": 100_000}

    accepted = (await d.act(client, shop, dispute["id"], "accept")).json()
    assert accepted["status"] == "accepted" and accepted["closed_at"]
    assert (accepted["held_amount"], accepted["reversed_amount"]) == (0, 100_000)
    assert await d.balance(client, shop) == {"available": 0, "held": 0}
    assert await d.ledger(container, shop.partner_id) == {"merchant": 0, "dispute_held": 0}
    merchant, held = merchant_account(shop.partner_id), dispute_held_account(shop.partner_id)
    assert await d.journals(container, dispute["id"]) == [
        ("dispute_hold", merchant, 100_000),
        ("dispute_hold", held, -100_000),
        ("dispute_reversal", held, 100_000),
        ("dispute_reversal", RAAST_SETTLEMENT, -100_000),
    ]


async def test_a_won_dispute_releases_the_hold(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    dispute = await d.opened(client, shop, payment, amount=30_000, reason="duplicate")
    assert await d.balance(client, shop) == {"available": 70_000, "held": 0}
    await responded(client, shop, dispute["id"])
    csrf = await d.operations(client, container)
    won = await decide(client, csrf, dispute["id"], "won")
    assert (won["status"], won["released_amount"], won["held_amount"]) == ("won", 30_000, 0)
    assert won["close_note"] == "decided won on the evidence"
    assert await d.balance(client, shop) == {"available": 100_000, "held": 0}
    assert await d.ledger(container, shop.partner_id) == {"merchant": 100_000, "dispute_held": 0}
    assert [k for k, _, a in await d.journals(container, dispute["id"]) if a > 0] == [
        "dispute_hold",
        "dispute_release",
    ]


async def test_a_lost_dispute_reverses_the_hold(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    dispute = await d.opened(client, shop, payment, amount=25_000)
    await responded(client, shop, dispute["id"])
    csrf = await d.operations(client, container)
    lost = await decide(client, csrf, dispute["id"], "lost")
    assert (lost["status"], lost["reversed_amount"], lost["released_amount"]) == ("lost", 25_000, 0)
    assert await d.balance(client, shop) == {"available": 75_000, "held": 0}
    assert await d.ledger(container, shop.partner_id) == {"merchant": 75_000, "dispute_held": 0}


async def test_a_withdrawn_dispute_releases_the_hold(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    dispute = await d.opened(client, shop, payment, amount=10_000)
    withdrawn = (await d.act(client, shop, dispute["id"], "withdraw")).json()
    assert (withdrawn["status"], withdrawn["released_amount"]) == ("withdrawn", 10_000)
    assert await d.balance(client, shop) == {"available": 100_000, "held": 0}


async def test_what_the_balance_cannot_cover_is_a_shortfall_taken_when_lost(
    client: httpx.AsyncClient, container: Container
) -> None:
    """A hold never takes the balance below zero: it holds what is available, records the
    rest, and takes what it can of the rest if the dispute is lost (or accepted)."""
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    await d.payout(client, container, shop, 80_000)
    dispute = await d.opened(client, shop, payment)
    assert (dispute["held_amount"], dispute["hold_shortfall"]) == (20_000, 80_000)
    assert await d.balance(client, shop) == {"available": 0, "held": 0}
    await d.collection(client, container, shop, 50_000)  # money arrives meanwhile
    accepted = (await d.act(client, shop, dispute["id"], "accept")).json()
    assert (accepted["reversed_amount"], accepted["hold_shortfall"]) == (70_000, 30_000)
    assert await d.balance(client, shop) == {"available": 0, "held": 0}
    assert await d.ledger(container, shop.partner_id) == {"merchant": 0, "dispute_held": 0}


# -- payout disputes -----------------------------------------------------------------------


async def test_a_won_payout_dispute_returns_the_amount(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container, top_up=200_000)
    payment = await d.payout(client, container, shop, 50_000)
    dispute = await d.opened(client, shop, payment, reason="not_received")
    assert dispute["payment_type"] == "payout"
    assert (dispute["held_amount"], dispute["hold_shortfall"]) == (0, 0)
    assert await d.balance(client, shop) == {"available": 150_000, "held": 0}
    await responded(client, shop, dispute["id"])
    csrf = await d.operations(client, container)
    won = await decide(client, csrf, dispute["id"], "won")
    assert (won["returned_amount"], won["released_amount"]) == (50_000, 0)
    assert await d.balance(client, shop) == {"available": 200_000, "held": 0}
    assert await d.journals(container, dispute["id"]) == [
        ("dispute_reversal", RAAST_SETTLEMENT, 50_000),
        ("dispute_reversal", merchant_account(shop.partner_id), -50_000),
    ]
    assert (await d.ledger(container, shop.partner_id))["dispute_held"] == 0


@pytest.mark.parametrize("ending", ["lost", "accept", "withdraw"])
async def test_a_payout_dispute_that_is_not_won_moves_nothing(
    client: httpx.AsyncClient, container: Container, ending: str
) -> None:
    shop = await d.shop(client, container, top_up=200_000)
    payment = await d.payout(client, container, shop, 50_000)
    dispute = await d.opened(client, shop, payment, reason="not_received")
    if ending == "lost":
        await responded(client, shop, dispute["id"])
        closed = await decide(client, await d.operations(client, container), dispute["id"], "lost")
    else:
        closed = (await d.act(client, shop, dispute["id"], ending)).json()
    assert closed["status"] in ("lost", "accepted", "withdrawn")
    assert await d.balance(client, shop) == {"available": 150_000, "held": 0}
    assert await d.journals(container, dispute["id"]) == []


# -- what can be disputed --------------------------------------------------------------------


async def test_partial_disputes_fit_what_is_left(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    refund = await client.post(
        "/v1/refunds",
        json={"payment_id": payment, "amount": 10_000},
        headers=shop.auth | {"Idempotency-Key": d.key()},
    )
    assert refund.status_code == 201, refund.text
    first = await d.opened(client, shop, payment, amount=40_000)
    too_much = await d.open_dispute(client, shop, payment, amount=50_001)
    assert too_much.status_code == 409
    assert problem_code(too_much) == "dispute_amount_exceeds_remaining"
    assert "50000" in too_much.json()["detail"]
    rest = await d.opened(client, shop, payment)  # the default: all that is left
    assert rest["amount"] == 50_000
    nothing = await d.open_dispute(client, shop, payment, amount=1)
    assert problem_code(nothing) == "dispute_amount_exceeds_remaining"
    await d.act(client, shop, first["id"], "withdraw")
    again = await d.opened(client, shop, payment, amount=40_000)  # withdrawn: free again
    assert again["status"] == "needs_response"


async def test_only_a_succeeded_payout_or_collection_is_disputable(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container, top_up=100_000)
    pending = await client.post(
        "/v1/payments",
        json={
            "amount": 10_000,
            "currency": "PKR",
            "creditor": {"iban": "PK36SCBL0000001123456702"},
        },
        headers=shop.auth | {"Idempotency-Key": d.key()},
    )
    refused = await d.open_dispute(client, shop, pending.json()["id"])
    assert (refused.status_code, problem_code(refused)) == (409, "payment_not_disputable")
    collected = await d.collection(client, container, shop, 20_000)
    refund = await client.post(
        "/v1/refunds",
        json={"payment_id": collected, "amount": 5_000},
        headers=shop.auth | {"Idempotency-Key": d.key()},
    )
    refused = await d.open_dispute(client, shop, refund.json()["id"])
    assert problem_code(refused) == "payment_not_disputable"
    unknown = await d.open_dispute(client, shop, "pay_01JDX3M9Q5W8C2V7T4K6B0N1ZP")
    assert (unknown.status_code, problem_code(unknown)) == (404, "not_found")
    bad = await d.open_dispute(client, shop, collected, reason="changed_my_mind")
    assert (bad.status_code, problem_code(bad)) == (422, "validation_error")
    async with container.db.read() as conn:
        from amanat.disputes.tables import disputes

        assert (await conn.execute(disputes.select())).all() == []


# -- transitions the API refuses ---------------------------------------------------------------


async def test_refused_transitions_change_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    dispute = await d.opened(client, shop, payment, amount=10_000)
    csrf = await d.operations(client, container)
    early = await client.post(
        f"/operator/v1/disputes/{dispute['id']}/decide",
        json={"outcome": "won", "note": "too early"},
        headers={"X-CSRF-Token": csrf},
    )
    assert (early.status_code, problem_code(early)) == (409, "dispute_transition_refused")
    await responded(client, shop, dispute["id"])
    twice = await d.act(client, shop, dispute["id"], "respond", explanation="again")
    assert (twice.status_code, problem_code(twice)) == (409, "dispute_transition_refused")
    await decide(client, csrf, dispute["id"], "won")
    for action, body in (("accept", {}), ("withdraw", {}), ("respond", {"explanation": "x"})):
        late = await d.act(client, shop, dispute["id"], action, **body)
        assert (late.status_code, problem_code(late)) == (409, "dispute_transition_refused")
        assert "closed" in late.json()["detail"]
    final = (await client.get(f"/v1/disputes/{dispute['id']}", headers=shop.auth)).json()
    assert (final["status"], final["version"], final["released_amount"]) == ("won", 3, 10_000)
    assert await d.balance(client, shop) == {"available": 100_000, "held": 0}


async def test_only_the_opener_withdraws(client: httpx.AsyncClient, container: Container) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    csrf = await d.operations(client, container)
    by_ops = await client.post(
        "/operator/v1/disputes",
        json={"payment_id": payment, "reason": "fraud", "amount": 5_000},
        headers={"X-CSRF-Token": csrf},
    )
    assert by_ops.status_code == 201, by_ops.text
    refused = await d.act(client, shop, by_ops.json()["id"], "withdraw")
    assert (refused.status_code, problem_code(refused)) == (409, "dispute_withdrawal_refused")
    mine = await d.opened(client, shop, payment, amount=5_000)
    refused = await client.post(
        f"/operator/v1/disputes/{mine['id']}/withdraw", headers={"X-CSRF-Token": csrf}
    )
    assert problem_code(refused) == "dispute_withdrawal_refused"
    ok = await client.post(
        f"/operator/v1/disputes/{by_ops.json()['id']}/withdraw", headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 200 and ok.json()["status"] == "withdrawn"
    # The merchant may still accept a dispute someone else opened.
    assert (await d.act(client, shop, mine["id"], "accept")).json()["status"] == "accepted"


# -- another merchant's disputes -----------------------------------------------------------------


async def test_another_merchant_sees_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container, name="Shop A")
    other = await d.shop(client, container, name="Shop B")
    payment = await d.collection(client, container, shop, 100_000)
    dispute = await d.opened(client, shop, payment, amount=10_000)
    evidence = (await d.upload(client, shop, dispute["id"], d.PDF)).json()
    for response in (
        await client.get(f"/v1/disputes/{dispute['id']}", headers=other.auth),
        await client.get(
            f"/v1/disputes/{dispute['id']}/evidence/{evidence['id']}", headers=other.auth
        ),
        await d.act(client, other, dispute["id"], "respond", explanation="mine now"),
        await d.act(client, other, dispute["id"], "accept"),
        await d.upload(client, other, dispute["id"], d.PDF),
        await d.open_dispute(client, other, payment),
    ):
        assert (response.status_code, problem_code(response)) == (404, "not_found"), response.text
    listed = await client.get("/v1/disputes", headers=other.auth)
    assert listed.json()["data"] == []
    assert (await client.get(f"/v1/disputes/{dispute['id']}", headers=shop.auth)).json()[
        "version"
    ] == 2


# -- idempotency --------------------------------------------------------------------------------


async def test_a_replayed_open_opens_once(client: httpx.AsyncClient, container: Container) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    headers = shop.auth | {"Idempotency-Key": "open-once"}
    body = {"payment_id": payment, "reason": "fraud", "amount": 30_000}
    first = await client.post("/v1/disputes", json=body, headers=headers)
    again = await client.post("/v1/disputes", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    listed = (await client.get("/v1/disputes", headers=shop.auth)).json()["data"]
    assert [x["id"] for x in listed] == [first.json()["id"]]
    assert await d.balance(client, shop) == {"available": 70_000, "held": 0}
    changed = await client.post("/v1/disputes", json=body | {"amount": 1}, headers=headers)
    assert (changed.status_code, problem_code(changed)) == (422, "idempotency_key_reused")
    missing = await client.post("/v1/disputes", json=body, headers=shop.auth)
    assert (missing.status_code, problem_code(missing)) == (400, "idempotency_key_missing")


# -- reading ------------------------------------------------------------------------------------


async def test_list_pages_and_filters(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop = await d.shop(client, container)
    first = await d.collection(client, container, shop, 100_000)
    second = await d.collection(client, container, shop, 100_000)
    made = []
    for payment, amount in ((first, 10_000), (first, 20_000), (second, 30_000)):
        clock.advance(seconds=1)
        made.append(await d.opened(client, shop, payment, amount=amount))
    await d.act(client, shop, made[0]["id"], "withdraw")
    page = (await client.get("/v1/disputes", params={"limit": 2}, headers=shop.auth)).json()
    assert [x["id"] for x in page["data"]] == [made[2]["id"], made[1]["id"]]
    assert page["has_more"] is True
    rest = await client.get(
        "/v1/disputes", params={"limit": 2, "cursor": page["next_cursor"]}, headers=shop.auth
    )
    assert [x["id"] for x in rest.json()["data"]] == [made[0]["id"]]
    assert rest.json()["has_more"] is False and rest.json()["next_cursor"] is None
    on_first = await client.get("/v1/disputes", params={"payment_id": first}, headers=shop.auth)
    assert {x["id"] for x in on_first.json()["data"]} == {made[0]["id"], made[1]["id"]}
    withdrawn = await client.get("/v1/disputes", params={"status": "withdrawn"}, headers=shop.auth)
    assert [x["id"] for x in withdrawn.json()["data"]] == [made[0]["id"]]
    bad = await client.get("/v1/disputes", params={"status": "open"}, headers=shop.auth)
    assert bad.status_code == 422
    bad = await client.get("/v1/disputes", params={"cursor": "nonsense"}, headers=shop.auth)
    assert (bad.status_code, problem_code(bad)) == (400, "invalid_cursor")


async def test_scopes(client: httpx.AsyncClient, container: Container) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    token = await fetch_token(client, shop.registered, scope="disputes:read")
    reader = d.Shop(shop.registered, {"Authorization": f"Bearer {token['access_token']}"})
    refused = await d.open_dispute(client, reader, payment)
    assert (refused.status_code, problem_code(refused)) == (403, "insufficient_scope")
    assert (await client.get("/v1/disputes", headers=reader.auth)).status_code == 200
    token = await fetch_token(client, shop.registered, scope="payments:read")
    none = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await client.get("/v1/disputes", headers=none)).status_code == 403
    assert (await client.get("/v1/disputes")).status_code == 401


# -- events and audit ---------------------------------------------------------------------------


async def test_each_step_raises_its_event(client: httpx.AsyncClient, container: Container) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    dispute = await d.opened(client, shop, payment, amount=10_000)
    await d.upload(client, shop, dispute["id"], d.PDF)
    await responded(client, shop, dispute["id"])
    await decide(client, await d.operations(client, container), dispute["id"], "lost")
    found = await d.events(client, shop)
    assert [e["type"] for e in found] == [
        "dispute.opened",
        "dispute.updated",
        "dispute.updated",
        "dispute.closed",
    ]
    objects = [e["data"]["object"] for e in found]
    assert {o["id"] for o in objects} == {dispute["id"]}
    assert [o["version"] for o in objects] == [1, 2, 3, 4]
    assert [o["status"] for o in objects] == ["needs_response"] * 2 + ["under_review", "lost"]
    assert len(objects[1]["evidence"]) == 1
    assert objects[3]["reversed_amount"] == 10_000
    assert "partner_id" not in objects[0] and "history" not in objects[0]


async def test_every_action_is_audited_without_personal_data(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    secret = "Bilal Ahmed of house 12 said he never got it"
    one = await d.opened(client, shop, payment, amount=10_000)
    evidence = (await d.upload(client, shop, one["id"], d.TEXT, "text/plain")).json()
    await d.act(client, shop, one["id"], "respond", explanation=secret)
    await decide(client, await d.operations(client, container), one["id"], "won")
    two = await d.opened(client, shop, payment, amount=10_000)
    await d.act(client, shop, two["id"], "accept")
    three = await d.opened(client, shop, payment, amount=10_000)
    await d.act(client, shop, three["id"], "withdraw")
    four = await d.opened(client, shop, payment, amount=10_000)
    clock.advance(days=30)
    assert await d.service(container).expire_overdue() == [four["id"]]
    expected = {
        "dispute.opened": [one["id"], two["id"], three["id"], four["id"]],
        "dispute.evidence_added": [one["id"]],
        "dispute.responded": [one["id"]],
        "dispute.decided": [one["id"]],
        "dispute.accepted": [two["id"]],
        "dispute.withdrawn": [three["id"]],
        "dispute.expired": [four["id"]],
    }
    for action, targets in expected.items():
        rows = await d.audits(container, action)
        assert [r["target_id"] for r in rows] == targets, action
        assert all(r["target_type"] == "dispute" for r in rows)
        assert secret not in str(rows) and "Courier" not in str(rows)
    [added] = await d.audits(container, "dispute.evidence_added")
    assert evidence["sha256"] in str(added)
    [expired] = await d.audits(container, "dispute.expired")
    assert expired["actor_type"] == "system"


async def test_timestamps_and_dates(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    clock.advance(timedelta(hours=1).total_seconds())
    await shop.sign_in(client)  # the first token has expired
    dispute = await d.opened(client, shop, payment, amount=1_000)
    assert dispute["created_at"].endswith("Z") and len(dispute["created_at"]) == 24
    # Opened on Tuesday 24 November 2026: seven business days is Thursday 3 December.
    assert (dispute["respond_by_date"], dispute["decide_by_date"]) == ("2026-12-03", "2027-01-06")
