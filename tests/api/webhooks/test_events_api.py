"""The event log over the partner API: events written with payment changes and sandbox
top-ups, their filters and pagination, tenancy, scopes, and the documented catalogue."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest
from tests.support.oauth import RegisteredClient, bearer, funded_merchant, make_client
from tests.support.paths import REPO

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock, format_timestamp
from amanat.webhooks.domain.events import CATALOGUE

DOCS = REPO / "docs" / "webhooks.md"
IBAN = "PK36SCBL0000001123456702"
PAYOUT = {
    "amount": 150000,
    "currency": "PKR",
    "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
    "reference": "INV-1001",
    "description": "November invoice",
    "metadata": {"order": "1001"},
}


async def _events(
    client: httpx.AsyncClient, auth: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await client.get("/v1/events", params={"limit": 100, **params}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["has_more"] is False
    data: list[dict[str, Any]] = body["data"]
    return data


async def _payout(
    client: httpx.AsyncClient, auth: dict[str, str], key: str, body: dict[str, Any] | None = None
) -> str:
    created = await client.post(
        "/v1/payments", json=body or PAYOUT, headers=auth | {"Idempotency-Key": key}
    )
    assert created.status_code == 201, created.text
    payment_id: str = created.json()["id"]
    return payment_id


def _only_error(response: httpx.Response) -> dict[str, Any]:
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    error: dict[str, Any] = errors[0]
    return error


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    # Funded through the service so that the tests below start with a known event log.
    return await funded_merchant(container, "Shop")


@pytest.fixture
async def auth(client: httpx.AsyncClient, merchant: RegisteredClient) -> dict[str, str]:
    return await bearer(client, merchant)


async def test_a_succeeded_payout_leaves_processing_and_succeeded_events(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    payment_id = await _payout(client, auth, "p1")
    assert await _events(client, auth, object_id=payment_id) == [], "pending raises no event"

    clock.advance(seconds=2)
    await container.payments.apply_rail_status(payment_id, "accepted", sequence=1, cause="test")
    processing_at = format_timestamp(clock.now())
    clock.advance(seconds=3)
    await container.payments.apply_rail_status(payment_id, "settled", sequence=2, cause="test")
    succeeded_at = format_timestamp(clock.now())

    events = await _events(client, auth, object_id=payment_id)
    assert [e["type"] for e in events] == ["payment.succeeded", "payment.processing"], (
        "newest first"
    )
    succeeded, processing = events
    for event in events:
        assert re.match(r"^evt_[0-9A-HJKMNP-TV-Z]{26}$", event["id"]), event["id"]
        assert event["object"] == "event"
        assert set(event) == {"id", "object", "type", "created_at", "data"}
        payment = event["data"]["object"]
        assert (payment["id"], payment["object"], payment["type"]) == (
            payment_id,
            "payment",
            "payout",
        )
        assert (payment["amount"], payment["currency"]) == (150000, "PKR")
        assert payment["creditor"]["iban_last4"] == "6702"
        assert payment["description"] == "November invoice"
        assert payment["metadata"] == {"order": "1001"}
        assert IBAN not in json.dumps(event)
    assert processing["created_at"] == processing_at
    assert succeeded["created_at"] == succeeded_at
    assert processing["data"]["object"]["status"] == "processing"
    assert processing["data"]["object"]["version"] == 2
    assert processing["data"]["object"]["updated_at"] == processing_at
    assert succeeded["data"]["object"]["status"] == "succeeded"
    assert succeeded["data"]["object"]["version"] == 3

    fetched = await client.get(f"/v1/events/{succeeded['id']}", headers=auth)
    assert fetched.status_code == 200
    assert fetched.json() == succeeded
    current = (await client.get(f"/v1/payments/{payment_id}", headers=auth)).json()
    assert succeeded["data"]["object"] == current, "the event embeds the object as GET shows it"


async def test_failed_and_canceled_payouts_raise_their_events(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    failed = await _payout(client, auth, "f")
    await container.payments.apply_rail_status(
        failed, "rejected", sequence=1, reason_code="AC01", cause="test"
    )
    canceled = await _payout(client, auth, "c")
    answer = await client.post(
        f"/v1/payments/{canceled}/cancel", headers=auth | {"Idempotency-Key": "cancel"}
    )
    assert answer.status_code == 200
    [failure] = await _events(client, auth, object_id=failed)
    assert failure["type"] == "payment.failed"
    assert failure["data"]["object"]["failure"]["code"] == "rail_ac01"
    [cancel] = await _events(client, auth, object_id=canceled)
    assert cancel["type"] == "payment.canceled"
    assert cancel["data"]["object"]["version"] == 2


async def test_every_refund_bumps_its_collection_and_raises_payment_updated(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    """Two refunds and a failed one: each moves refunded_amount, so each is a new version
    of the collection with one event showing it; a receiver keeping the highest version
    ends up with what GET shows."""
    created = await client.post(
        "/v1/payments",
        json={
            "type": "collection",
            "amount": 1_000_000,
            "currency": "PKR",
            "debtor": {"raast_id": "03001234567"},
        },
        headers=auth | {"Idempotency-Key": "col"},
    )
    assert created.status_code == 201, created.text
    collection = created.json()["id"]
    await container.payments.apply_rail_status(collection, "approved", sequence=2, cause="t")
    refunds = []
    for key in ("r1", "r2"):
        clock.advance(seconds=1)
        made = await client.post(
            "/v1/refunds",
            json={"payment_id": collection, "amount": 250_000},
            headers=auth | {"Idempotency-Key": key},
        )
        assert made.status_code == 201, made.text
        refunds.append(made.json()["id"])
    clock.advance(seconds=1)
    await container.payments.apply_rail_status(refunds[1], "rejected", sequence=1, cause="t")

    current = (await client.get(f"/v1/payments/{collection}", headers=auth)).json()
    assert (current["refunded_amount"], current["version"]) == (250_000, 6)
    raised = sorted(
        await _events(client, auth, object_id=collection),
        key=lambda e: e["data"]["object"]["version"],
    )
    assert [(e["type"], e["data"]["object"]["version"]) for e in raised] == [
        ("collection.awaiting_approval", 2),
        ("collection.approved", 3),
        ("payment.updated", 4),
        ("payment.updated", 5),
        ("payment.updated", 6),
    ]
    assert [e["data"]["object"]["refunded_amount"] for e in raised[2:]] == [
        250_000,
        500_000,
        250_000,
    ]
    assert raised[-1]["data"]["object"] == current


async def test_filters(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    start = format_timestamp(clock.now())
    clock.advance(minutes=1)
    first = await _payout(client, auth, "a")
    await container.payments.apply_rail_status(first, "accepted", sequence=1, cause="t")
    middle = format_timestamp(clock.advance(minutes=1))
    await container.payments.apply_rail_status(first, "settled", sequence=2, cause="t")
    second = await _payout(client, auth, "b")
    await container.payments.apply_rail_status(
        second, "rejected", sequence=1, reason_code="AC01", cause="t"
    )
    end = format_timestamp(clock.advance(minutes=1))

    everything = await _events(client, auth)
    assert sorted(e["type"] for e in everything) == sorted(
        ["balance.topped_up", "payment.processing", "payment.succeeded", "payment.failed"]
    )
    one_type = await _events(client, auth, type="payment.succeeded")
    assert [e["data"]["object"]["id"] for e in one_type] == [first]
    two_types = await _events(client, auth, type=["payment.processing", "payment.failed"])
    assert sorted(e["type"] for e in two_types) == ["payment.failed", "payment.processing"]
    assert await _events(client, auth, type="refund.succeeded") == []
    by_object = await _events(client, auth, object_id=second)
    assert [e["type"] for e in by_object] == ["payment.failed"]
    assert await _events(client, auth, object_id="pay_nothing") == []

    since_middle = await _events(client, auth, created_gte=middle)
    assert sorted(e["type"] for e in since_middle) == ["payment.failed", "payment.succeeded"]
    before_middle = await _events(client, auth, created_lt=middle)
    assert sorted(e["type"] for e in before_middle) == ["balance.topped_up", "payment.processing"]
    window = await _events(
        client, auth, created_gte=start, created_lt=middle, type="payment.processing"
    )
    assert [e["data"]["object"]["id"] for e in window] == [first]
    assert await _events(client, auth, created_gte=end) == []
    offset = await _events(client, auth, created_gte=middle.replace("Z", "+00:00"))
    assert offset == since_middle, "any RFC 3339 offset works"

    for name in ("created_gte", "created_lt"):
        for bad in ("yesterday", "2026-11-24", "2026-11-24T10:00:00", "0001-01-01T00:00:00+01:00"):
            refused = await client.get("/v1/events", params={name: bad}, headers=auth)
            assert refused.status_code == 422, (name, bad, refused.text)
            assert refused.json()["code"] == "validation_error"
            error = _only_error(refused)
            assert (error["pointer"], error["in"]) == (f"/{name}", "query")
    unknown = await client.get("/v1/events", params={"type": "payment.exploded"}, headers=auth)
    assert unknown.status_code == 422
    assert _only_error(unknown)["pointer"] == "/type"
    too_long = await client.get("/v1/events", params={"object_id": "x" * 41}, headers=auth)
    assert too_long.status_code == 422


async def test_cursor_pagination_walks_every_event_once(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    for i in range(3):
        payment_id = await _payout(client, auth, f"p{i}", PAYOUT | {"amount": 1000 + i})
        await container.payments.apply_rail_status(payment_id, "accepted", sequence=1, cause="t")
        if i != 1:  # some events share a timestamp, some do not
            clock.advance(seconds=1)
        await container.payments.apply_rail_status(payment_id, "settled", sequence=2, cause="t")
    expected = await _events(client, auth)
    assert len(expected) == 7

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/events", params=params, headers=auth)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["data"]) == 1
        seen.append(page["data"][0]["id"])
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
        assert pages < 20, "the walk must end"
    assert len(seen) == len(set(seen)), "no event twice"
    assert seen == [e["id"] for e in expected], "the same order as one big page"

    typed = await client.get(
        "/v1/events", params={"limit": 1, "type": "payment.succeeded"}, headers=auth
    )
    follow = await client.get(
        "/v1/events",
        params={"limit": 5, "type": "payment.succeeded", "cursor": typed.json()["next_cursor"]},
        headers=auth,
    )
    rest = [e["id"] for e in follow.json()["data"]]
    assert len(rest) == 2 and typed.json()["data"][0]["id"] not in rest
    assert {e["type"] for e in follow.json()["data"]} == {"payment.succeeded"}


def _cursor(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "e30",  # {}
        _cursor({"t": "2026-11-24T08:15:30+00:00"}),
        _cursor({"t": "yesterday", "id": "evt_x"}),
        _cursor({"t": "2026-11-24T08:15:30", "id": "evt_x"}),
        _cursor({"t": "0001-01-01T00:00:00+01:00", "id": "evt_x"}),
        _cursor({"t": 5, "id": "evt_x"}),
        _cursor(["t", "id"]),
        _cursor({"t": "2026-11-24T08:15:30+00:00", "id": "evt_x", "x": 1}),
    ],
)
async def test_a_bad_cursor_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str], cursor: str
) -> None:
    for path in ("/v1/events", "/v1/webhook_endpoints"):
        refused = await client.get(path, params={"cursor": cursor}, headers=auth)
        assert refused.status_code == 400, (path, refused.text)
        assert refused.json()["code"] == "invalid_cursor"
        assert refused.headers["content-type"].startswith("application/problem+json")


async def test_another_partners_events_are_invisible(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    payment_id = await _payout(client, auth, "mine")
    await container.payments.apply_rail_status(payment_id, "accepted", sequence=1, cause="t")
    [event] = await _events(client, auth, object_id=payment_id)

    other = await make_client(container, name="Other shop")
    theirs = await bearer(client, other)
    assert await _events(client, theirs) == []
    assert await _events(client, theirs, object_id=payment_id) == []
    hidden = await client.get(f"/v1/events/{event['id']}", headers=theirs)
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    missing = await client.get("/v1/events/evt_01JD0000000000000000000000", headers=auth)
    assert missing.status_code == 404


async def test_a_sandbox_top_up_raises_balance_topped_up(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FrozenClock
) -> None:
    clock.advance(seconds=1)
    topped = await client.post(
        "/v1/sandbox/top_ups", json={"amount": 250_000}, headers=auth | {"Idempotency-Key": "top"}
    )
    assert topped.status_code == 200, topped.text
    balance = topped.json()
    events = await _events(
        client, auth, type="balance.topped_up", created_gte=format_timestamp(clock.now())
    )
    [event] = events
    snapshot = event["data"]["object"]
    assert snapshot["object"] == "balance" and snapshot["currency"] == "PKR"
    assert snapshot["top_up"]["amount"] == 250_000
    assert snapshot["top_up"]["id"].startswith("tu_")
    assert snapshot["available"] == balance["available"] == 10_250_000
    assert (snapshot["pending"], snapshot["held"]) == (balance["pending"], balance["held"])
    assert event["created_at"] == format_timestamp(clock.now())
    by_id = await _events(client, auth, object_id=snapshot["top_up"]["id"])
    assert [e["id"] for e in by_id] == [event["id"]]
    again = await client.post(
        "/v1/sandbox/top_ups", json={"amount": 250_000}, headers=auth | {"Idempotency-Key": "top"}
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await _events(client, auth, type="balance.topped_up")) == 2, (
        "the fixture's top-up and this one; the replay added none"
    )


async def test_reading_events_needs_events_read(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    full = await bearer(client, merchant)
    payment_id = await _payout(client, full, "p")
    await container.payments.apply_rail_status(payment_id, "accepted", sequence=1, cause="t")
    [event] = await _events(client, full, object_id=payment_id)

    reader = await bearer(client, merchant, scope="events:read")
    manager = await bearer(client, merchant, scope="webhooks:manage")
    assert (await client.get("/v1/events", headers=reader)).status_code == 200
    assert (await client.get(f"/v1/events/{event['id']}", headers=reader)).status_code == 200
    for path in ("/v1/events", f"/v1/events/{event['id']}"):
        lacking = await client.get(path, headers=manager)
        assert lacking.status_code == 403, lacking.text
        assert 'scope="events:read"' in lacking.headers["www-authenticate"]
    refused = await client.post(
        f"/v1/events/{event['id']}/redeliver", headers=reader | {"Idempotency-Key": "r"}
    )
    assert refused.status_code == 403
    assert 'scope="webhooks:manage"' in refused.headers["www-authenticate"]
    allowed = await client.post(
        f"/v1/events/{event['id']}/redeliver", headers=manager | {"Idempotency-Key": "r"}
    )
    assert allowed.status_code == 202, allowed.text
    assert allowed.json()["data"] == [], "no endpoint subscribes yet"


def test_every_catalogued_event_type_is_documented() -> None:
    assert DOCS.exists(), "docs/webhooks.md documents the event types"
    text = DOCS.read_text(encoding="utf-8")
    missing = [name for name in CATALOGUE if f"`{name}`" not in text]
    assert missing == [], f"event types missing from docs/webhooks.md: {missing}"


async def test_the_published_schemas_require_and_fix_object(client: httpx.AsyncClient) -> None:
    """Generated clients rely on ``object`` always being there, with one known value."""
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    expected = {
        "EventOut": "event",
        "DeliveryRef": "webhook_delivery",
        "DeliveryOut": "webhook_delivery",
        "EndpointOut": "webhook_endpoint",
        "ReplayOut": "replay",
    }
    for name, value in expected.items():
        schema = schemas[name]
        assert "object" in schema["required"], name
        assert schema["properties"]["object"].get("const") == value, (name, schema)
    assert schemas["DeliveryRef"]["properties"]["status"].get("enum"), "status is an enum"
