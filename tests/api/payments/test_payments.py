"""Payouts, collections, refunds and balance over the partner API (rail outcomes are
applied through the service, as callbacks and status enquiries do)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.support.oauth import ACTOR, RegisteredClient, fetch_token, make_client

from amanat.auth.domain import Caller
from amanat.bootstrap import Container
from amanat.payments.tables import holds, ledger_entries, payments

IBAN = "PK36SCBL0000001123456702"
PAYOUT = {
    "amount": 150000,
    "currency": "PKR",
    "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
    "reference": "INV-1001",
    "description": "November invoice",
    "metadata": {"order": "1001"},
}
COLLECTION = {
    "type": "collection",
    "amount": 50_000,
    "currency": "PKR",
    "debtor": {"raast_id": "03001234567", "name": "Bilal Ahmed"},
    "expires_in_seconds": 600,
}


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    registered = await make_client(container, name="Shop")
    await container.payments.top_up(Caller(registered.partner.id, None, ACTOR), 10_000_000)
    return registered


async def _auth(client: httpx.AsyncClient, registered: RegisteredClient) -> dict[str, str]:
    token = await fetch_token(client, registered)
    return {"Authorization": f"Bearer {token['access_token']}"}


async def _post(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    key: str,
    body: dict[str, Any],
    path: str = "/v1/payments",
) -> httpx.Response:
    return await client.post(path, json=body, headers=auth | {"Idempotency-Key": key})


async def _balance(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/v1/balance", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ledger_ok(container: Container) -> None:
    async with container.transactions.read() as tx:
        assert await tx.ledger.check() == []


async def test_payout_holds_then_posts_on_success(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    created = await _post(client, auth, "p1", PAYOUT)
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["id"].startswith("pay_") and payment["object"] == "payment"
    assert payment["type"] == "payout" and payment["status"] == "pending"
    assert payment["end_to_end_id"] == payment["id"] and payment["version"] == 1
    assert payment["creditor"]["iban_last4"] == "6702"
    assert payment["creditor"]["bank_code"] == "SCBL"
    assert payment["description"] == "November invoice"
    assert IBAN not in created.text, "the payment shows the last four digits only"
    assert await _balance(client, auth) | {"as_of": None} == {
        "object": "balance",
        "currency": "PKR",
        "available": 9_850_000,
        "pending": 0,
        "held": 150_000,
        "as_of": None,
    }

    outcome = await container.payments.apply_rail_status(
        payment["id"], "accepted", sequence=1, cause="test"
    )
    assert outcome == "pending -> processing"
    outcome = await container.payments.apply_rail_status(
        payment["id"], "settled", sequence=2, cause="test"
    )
    assert outcome == "processing -> succeeded"
    fetched = (await client.get(f"/v1/payments/{payment['id']}", headers=auth)).json()
    assert fetched["status"] == "succeeded" and fetched["version"] == 3
    balance = await _balance(client, auth)
    assert (balance["available"], balance["held"]) == (9_850_000, 0)
    await _ledger_ok(container)


async def test_failure_and_cancel_release_the_hold(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    failed = (await _post(client, auth, "f", PAYOUT)).json()
    await container.payments.apply_rail_status(
        failed["id"], "rejected", sequence=1, reason_code="AC01", cause="test"
    )
    body = (await client.get(f"/v1/payments/{failed['id']}", headers=auth)).json()
    assert body["status"] == "failed"
    assert body["failure"]["code"] == "rail_ac01"
    assert "invalid" in body["failure"]["message"]

    pending = (await _post(client, auth, "c", PAYOUT)).json()
    canceled = await client.post(
        f"/v1/payments/{pending['id']}/cancel", headers=auth | {"Idempotency-Key": "cancel-1"}
    )
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = await client.post(
        f"/v1/payments/{pending['id']}/cancel", headers=auth | {"Idempotency-Key": "cancel-2"}
    )
    assert again.status_code == 409
    balance = await _balance(client, auth)
    assert (balance["available"], balance["held"]) == (10_000_000, 0)
    await _ledger_ok(container)


async def test_a_submitted_payout_cannot_be_canceled(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    payment = (await _post(client, auth, "s", PAYOUT)).json()
    assert await container.payments.claim_submission(payment["id"]) is not None
    refused = await client.post(
        f"/v1/payments/{payment['id']}/cancel", headers=auth | {"Idempotency-Key": "c"}
    )
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "payment_not_cancelable"
    assert "already handed to the rail" in problem["detail"]
    assert "this one is pending" not in problem["detail"]


async def test_a_payment_that_moved_on_cannot_be_canceled_and_says_its_status(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    payment = (await _post(client, auth, "m", PAYOUT)).json()
    await container.payments.apply_rail_status(payment["id"], "accepted", sequence=1, cause="t")
    refused = await client.post(
        f"/v1/payments/{payment['id']}/cancel", headers=auth | {"Idempotency-Key": "c"}
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "payment_not_cancelable"
    assert "already processing" in refused.json()["detail"]


async def test_refunding_a_payout_says_refunds_apply_to_collections(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    payout = (await _post(client, auth, "p", PAYOUT)).json()
    refused = await _post(client, auth, "r", {"payment_id": payout["id"]}, "/v1/refunds")
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "refund_not_supported"
    assert "collections only" in problem["detail"] and "is a payout" in problem["detail"]
    assert "No collection" not in problem["detail"]
    unknown = await _post(
        client, auth, "u", {"payment_id": "pay_01M87DC4ZZZZZZZZZZZZZZZZZZ"}, "/v1/refunds"
    )
    assert unknown.status_code == 404


async def test_insufficient_funds_posts_nothing(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    too_much = await _post(client, auth, "big", PAYOUT | {"amount": 10_000_001})
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "insufficient_funds"
    async with container.db.read() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(payments))
        ).scalar_one() == 0
        assert (await conn.execute(sa.select(sa.func.count()).select_from(holds))).scalar_one() == 0
    replay = await _post(client, auth, "big", PAYOUT | {"amount": 10_000_001})
    assert replay.status_code == 422 and replay.headers["idempotent-replayed"] == "true"
    exact = await _post(client, auth, "exact", PAYOUT | {"amount": 10_000_000})
    assert exact.status_code == 201
    assert (await _balance(client, auth))["available"] == 0
    await _ledger_ok(container)


async def test_limit_and_validation(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    over = await _post(client, auth, "lim", PAYOUT | {"amount": 100_000_001})
    assert over.status_code == 422 and over.json()["code"] == "limit_exceeded"
    bad = await _post(client, auth, "bad", PAYOUT | {"creditor": {"raast_id": "0300123"}})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_raast_id"
    both = await _post(client, auth, "both", PAYOUT | {"debtor": {"iban": IBAN}})
    assert both.status_code == 422
    floaty = await _post(client, auth, "float", PAYOUT | {"amount": 1500.5})
    assert floaty.status_code == 422
    assert floaty.json()["errors"][0]["pointer"] == "/amount"


async def test_collection_and_refunds(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    collection = (
        await _post(
            client,
            auth,
            "col",
            COLLECTION,
        )
    ).json()
    assert collection["type"] == "collection" and collection["debtor"]["account_type"] == "raast_id"
    assert (await _balance(client, auth))["pending"] == 50_000
    early = await _post(client, auth, "r0", {"payment_id": collection["id"]}, "/v1/refunds")
    assert early.status_code == 409
    assert early.json()["code"] == "refund_not_supported"
    assert "this one is pending" in early.json()["detail"]
    await container.payments.apply_rail_status(
        collection["id"], "approved", sequence=3, cause="test"
    )
    body = (await client.get(f"/v1/payments/{collection['id']}", headers=auth)).json()
    assert body["status"] == "succeeded" and body["version"] == 3  # via awaiting_approval
    balance = await _balance(client, auth)
    assert (balance["available"], balance["pending"]) == (10_050_000, 0)

    partial = await _post(
        client, auth, "r1", {"payment_id": collection["id"], "amount": 20_000}, "/v1/refunds"
    )
    assert partial.status_code == 201, partial.text
    refund = partial.json()
    assert refund["object"] == "refund" and refund["id"].startswith("re_")
    assert refund["payment_id"] == collection["id"]
    too_much = await _post(
        client, auth, "r2", {"payment_id": collection["id"], "amount": 30_001}, "/v1/refunds"
    )
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "refund_exceeds_remaining"
    await container.payments.apply_rail_status(
        refund["id"], "rejected", sequence=1, reason_code="AC06", cause="test"
    )
    rest = await _post(client, auth, "r3", {"payment_id": collection["id"]}, "/v1/refunds")
    assert rest.status_code == 201 and rest.json()["amount"] == 50_000, (
        "a failed refund gives its amount back to the refundable remainder"
    )
    await container.payments.apply_rail_status(
        rest.json()["id"], "settled", sequence=1, cause="test"
    )
    listed = (
        await client.get("/v1/refunds", params={"payment_id": collection["id"]}, headers=auth)
    ).json()
    assert [r["status"] for r in listed["data"]] == ["succeeded", "failed"]
    assert (await _balance(client, auth))["available"] == 10_000_000
    await _ledger_ok(container)


async def test_parallel_refunds_never_exceed_the_collection(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    collection = (
        await _post(
            client,
            auth,
            "col",
            {"type": "collection", "amount": 10_000, "currency": "PKR", "debtor": {"iban": IBAN}},
        )
    ).json()
    await container.payments.apply_rail_status(
        collection["id"], "approved", sequence=1, cause="test"
    )
    responses = await asyncio.gather(
        *[
            _post(
                client,
                auth,
                f"par-{i}",
                {"payment_id": collection["id"], "amount": 3_000},
                "/v1/refunds",
            )
            for i in range(8)
        ]
    )
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 3, [r.status_code for r in responses]
    assert all(r.status_code in (201, 409) for r in responses)
    body = (await client.get(f"/v1/payments/{collection['id']}", headers=auth)).json()
    assert body["refunded_amount"] == 9_000
    await _ledger_ok(container)


async def test_list_paginates_newest_first_with_filters(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient, clock: Any
) -> None:
    auth = await _auth(client, merchant)
    ids = []
    for i in range(5):
        clock.advance(seconds=1)
        ids.append((await _post(client, auth, f"l{i}", PAYOUT | {"amount": 100 + i})).json()["id"])
    first = (await client.get("/v1/payments", params={"limit": 2}, headers=auth)).json()
    assert [p["id"] for p in first["data"]] == ids[::-1][:2] and first["has_more"]
    second = (
        await client.get(
            "/v1/payments", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth
        )
    ).json()
    assert [p["id"] for p in second["data"]] == ids[::-1][2:4]
    await container.payments.apply_rail_status(ids[0], "rejected", sequence=1, cause="t")
    failed = (await client.get("/v1/payments", params={"status": "failed"}, headers=auth)).json()
    assert [p["id"] for p in failed["data"]] == [ids[0]]
    other = await make_client(container, name="Other")
    theirs = (await client.get("/v1/payments", headers=await _auth(client, other))).json()
    assert theirs["data"] == []
    assert (
        await client.get(f"/v1/payments/{ids[0]}", headers=await _auth(client, other))
    ).status_code == 404


async def test_out_of_order_and_duplicate_rail_events(
    container: Container, client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    payment = (await _post(client, auth, "o", PAYOUT)).json()
    assert (
        await container.payments.apply_rail_status(payment["id"], "settled", sequence=2, cause="t")
        == "pending -> succeeded"
    )
    assert (
        await container.payments.apply_rail_status(payment["id"], "accepted", sequence=1, cause="t")
    ).startswith("ignored: stale")
    assert (
        await container.payments.apply_rail_status(payment["id"], "settled", sequence=2, cause="t")
    ).startswith("ignored")
    async with container.transactions.read() as tx:
        trail = await tx.payments.transitions(payment["id"])
    assert [(t["from"], t["to"]) for t in trail] == [
        (None, "pending"),
        ("pending", "processing"),
        ("processing", "succeeded"),
    ]
    async with container.db.read() as conn:
        journals = (
            await conn.execute(sa.select(sa.func.count(sa.distinct(ledger_entries.c.journal_id))))
        ).scalar_one()
    assert journals == 2  # the top-up and this payout, never twice
    await _ledger_ok(container)


async def test_concurrent_identical_payouts_execute_once(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    responses = await asyncio.gather(*[_post(client, auth, "same-key", PAYOUT) for _ in range(10)])
    assert {r.status_code for r in responses} <= {201, 409}
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    async with container.db.read() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(payments))
        ).scalar_one() == 1
        assert (await conn.execute(sa.select(sa.func.count()).select_from(holds))).scalar_one() == 1
    assert (await _balance(client, auth))["held"] == 150_000
    await _ledger_ok(container)


async def test_metrics_are_exposed(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "amanat_payments_unresolved" in response.text


async def test_per_partner_limit(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    await container.partners.set_transaction_limit(ACTOR, merchant.partner.id, 100_000)
    over = await _post(client, auth, "over", PAYOUT)
    assert over.status_code == 422 and over.json()["code"] == "limit_exceeded"
    assert (await _post(client, auth, "under", PAYOUT | {"amount": 100_000})).status_code == 201
    await container.partners.set_transaction_limit(ACTOR, merchant.partner.id, None)
    assert (await _post(client, auth, "default", PAYOUT)).status_code == 201


async def test_a_bad_time_filter_points_at_its_own_parameter(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    for name in ("created_gte", "created_lt"):
        response = await client.get("/v1/payments", params={name: "yesterday"}, headers=auth)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["pointer"] == f"/{name}"


async def test_reads_answer_exactly_the_documented_shape(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    """GET payment, refund and the lists answer without FastAPI's response validation, so
    this holds them to the response models (which forbid undocumented fields)."""
    from amanat.payments.routes.payments import PaymentOut
    from amanat.platform.http.schemas import ListResponse

    auth = await _auth(client, merchant)
    payout = (await _post(client, auth, "shape-1", PAYOUT)).json()
    collection = (
        await _post(
            client,
            auth,
            "shape-2",
            COLLECTION,
        )
    ).json()
    await container.payments.apply_rail_status(
        collection["id"], "approved", sequence=3, cause="test"
    )
    refund = (
        await _post(client, auth, "shape-3", {"payment_id": collection["id"]}, "/v1/refunds")
    ).json()
    for path in (f"/v1/payments/{payout['id']}", f"/v1/payments/{collection['id']}"):
        one = await client.get(path, headers=auth)
        assert one.status_code == 200 and one.headers["content-type"] == "application/json"
        assert PaymentOut.model_validate(one.json()).model_dump(mode="json") == one.json()
    got = (await client.get(f"/v1/refunds/{refund['id']}", headers=auth)).json()
    assert PaymentOut.model_validate(got).model_dump(mode="json") == got == refund
    for path in ("/v1/payments?limit=1", "/v1/refunds"):
        page = (await client.get(path, headers=auth)).json()
        assert ListResponse[PaymentOut].model_validate(page).model_dump(mode="json") == page
        assert page["data"]
