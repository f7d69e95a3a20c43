"""Webhook endpoints over the partner API: the secret shown once and kept sealed,
idempotent creation, URL and event-type rules, changes, deletion, rotation, the delivery
log (with attempts made by the real deliverer against a receiver on 127.0.0.1),
redelivery and replay, tenancy and scopes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.support.oauth import RegisteredClient, bearer, funded_merchant, make_client

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock, format_timestamp
from amanat.platform.db.metadata import metadata
from amanat.webhooks.service import WebhooksConfig, WebhookService
from amanat.webhooks.tables import webhook_deliveries, webhook_endpoints
from amanat.webhooks.wiring import deliverer as webhook_deliverer

ENDPOINTS = "/v1/webhook_endpoints"
IBAN = "PK36SCBL0000001123456702"
PAYOUT = {
    "amount": 150000,
    "currency": "PKR",
    "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
    "reference": "INV-1001",
}
SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")
PAYMENT_EVENTS = ["payment.processing", "payment.succeeded"]


# -- helpers ---------------------------------------------------------------------------


class Receiver:
    """A tiny HTTP/1.1 server on 127.0.0.1 that records what it is sent and answers
    ``status`` (no internet, no real partner)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hooks"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            headers: dict[str, str] = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append((headers, body))
            answer = b"thanks"
            writer.write(
                f"HTTP/1.1 {self.status} Whatever\r\nContent-Length: {len(answer)}\r\n"
                "Content-Type: text/plain\r\nConnection: close\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
        finally:
            writer.close()


def expected_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The Standard Webhooks v1 signature, computed here by hand (not with amanat's code)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


async def _create(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    key: str,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    payload = (
        body if body is not None else {"url": "https://example.pk/hooks", "enabled_events": ["*"]}
    )
    return await client.post(ENDPOINTS, json=payload, headers=auth | {"Idempotency-Key": key})


async def _created(
    client: httpx.AsyncClient, auth: dict[str, str], key: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await _create(client, auth, key, body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _deliveries(
    client: httpx.AsyncClient, auth: dict[str, str], endpoint_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{ENDPOINTS}/{endpoint_id}/deliveries", params=params, headers=auth
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _succeeded_payout(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], key: str
) -> str:
    created = await client.post(
        "/v1/payments", json=PAYOUT, headers=auth | {"Idempotency-Key": key}
    )
    assert created.status_code == 201, created.text
    payment_id: str = created.json()["id"]
    await container.payments.apply_rail_status(payment_id, "accepted", sequence=1, cause="test")
    await container.payments.apply_rail_status(payment_id, "settled", sequence=2, cause="test")
    return payment_id


async def _deliver(container: Container) -> int:
    deliverer = webhook_deliverer(container.services)
    claimed = await deliverer.run_once()
    await deliverer.drain()
    return claimed


async def _table_text(container: Container) -> str:
    """Every value of every table, as text."""
    chunks: list[str] = []
    async with container.db.read() as conn:
        for table in metadata.sorted_tables:
            for row in (await conn.execute(sa.select(table))).all():
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        chunks.append(bytes(value).decode("latin-1"))
                    elif isinstance(value, dict | list):
                        chunks.append(json.dumps(value))
                    else:
                        chunks.append(str(value))
    return "\n".join(chunks)


def _only_error(response: httpx.Response) -> dict[str, Any]:
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    error: dict[str, Any] = errors[0]
    return error


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    return await funded_merchant(container, "Shop")


@pytest.fixture
async def auth(client: httpx.AsyncClient, merchant: RegisteredClient) -> dict[str, str]:
    return await bearer(client, merchant)


# -- creating --------------------------------------------------------------------------


async def test_create_shows_the_secret_once_and_keeps_it_sealed(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    response = await _create(
        client,
        auth,
        "create-1",
        {
            "url": "https://example.pk/amanat/hooks",
            "enabled_events": ["payment.succeeded", "payment.failed"],
            "description": "order service",
        },
    )
    assert response.status_code == 201, response.text
    endpoint = response.json()
    secret = endpoint.pop("secret")
    assert SECRET_RE.match(secret), secret
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert endpoint["id"].startswith("we_")
    now = format_timestamp(clock.now())
    assert endpoint == {
        "id": endpoint["id"],
        "object": "webhook_endpoint",
        "url": "https://example.pk/amanat/hooks",
        "description": "order service",
        "enabled_events": ["payment.succeeded", "payment.failed"],
        "enabled": True,
        "disabled_reason": None,
        "secret_rotation": None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }

    fetched = await client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=auth)
    assert fetched.status_code == 200
    assert fetched.json() == endpoint, "GET shows everything but the secret"
    listed = await client.get(ENDPOINTS, headers=auth)
    assert listed.json()["data"] == [endpoint]
    for text in (fetched.text, listed.text):
        assert 'secret"' not in text and secret not in text

    stored = await _table_text(container)
    key_part = secret.removeprefix("whsec_")
    assert secret not in stored and key_part not in stored, "the secret is stored sealed"
    assert key_part[:24] not in stored
    async with container.db.read() as conn:
        row = (await conn.execute(sa.select(webhook_endpoints.c.secret))).one()
    assert row.secret and row.secret != secret


async def test_create_needs_an_idempotency_key_and_replays_the_first_answer(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    body = {"url": "https://example.pk/hooks", "enabled_events": ["payment.succeeded"]}
    missing = await client.post(ENDPOINTS, json=body, headers=auth)
    assert missing.status_code == 400
    assert missing.json()["code"] == "idempotency_key_missing"

    first = await _create(client, auth, "same-key", body)
    assert first.status_code == 201, first.text
    again = await _create(client, auth, "same-key", body)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["secret"] == first.json()["secret"]
    other_body = await _create(client, auth, "same-key", body | {"description": "changed"})
    assert other_body.status_code == 422
    assert other_body.json()["code"] == "idempotency_key_reused"

    async with container.db.read() as conn:
        count = (
            await conn.execute(sa.select(sa.func.count()).select_from(webhook_endpoints))
        ).scalar_one()
    assert count == 1
    listed = (await client.get(ENDPOINTS, headers=auth)).json()
    assert [e["id"] for e in listed["data"]] == [first.json()["id"]]


async def test_event_types_are_checked_with_a_pointer(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    unknown = await _create(
        client,
        auth,
        "unknown-type",
        {
            "url": "https://example.pk/h",
            "enabled_events": ["payment.succeeded", "payment.exploded"],
        },
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["code"] == "validation_error"
    error = _only_error(unknown)
    assert error["pointer"] == "/enabled_events/1", error
    assert error["in"] == "body"
    assert "payment.exploded" in error["message"]

    empty = await _create(client, auth, "no-types", {"url": "https://e.pk/h", "enabled_events": []})
    assert empty.status_code == 422
    assert _only_error(empty)["pointer"] == "/enabled_events"

    # A refused request stored no result: the same key works once the input is fixed.
    fixed = await _create(
        client,
        auth,
        "unknown-type",
        {"url": "https://example.pk/h", "enabled_events": ["payment.succeeded"]},
    )
    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers

    everything = await _created(
        client, auth, "all", {"url": "https://example.pk/all", "enabled_events": ["*"]}
    )
    assert everything["enabled_events"] == ["*"]
    twice = await _created(
        client,
        auth,
        "dupes",
        {"url": "https://e.pk/d", "enabled_events": ["payment.failed", "payment.failed"]},
    )
    assert twice["enabled_events"] == ["payment.failed"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.pk/hooks", "not_http"),
        ("https://", "not_http"),
        ("http:///no-host", "not_http"),
        ("example.pk/hooks", "not_http"),
        ("https://user:pass@example.pk/hooks", "credentials"),
        ("https://token@example.pk/hooks", "credentials"),
        ("https://example.pk:99999/hooks", "bad_port"),
    ],
)
async def test_bad_urls_are_refused_with_a_reason(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], url: str, reason: str
) -> None:
    refused = await _create(client, auth, f"bad-{url}", {"url": url, "enabled_events": ["*"]})
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "invalid_webhook_url"
    assert problem["type"].endswith("/problems/invalid_webhook_url")
    error = _only_error(refused)
    assert error["pointer"] == "/url"
    assert error.get("reason") == reason, error
    if reason == "credentials":
        assert "pass@" not in refused.text and "token@" not in refused.text, "never echoed"
    async with container.db.read() as conn:
        count = (
            await conn.execute(sa.select(sa.func.count()).select_from(webhook_endpoints))
        ).scalar_one()
    assert count == 0


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/hooks", "http://localhost:8080/", "http://[::1]:9000/x"]
)
async def test_the_sandbox_accepts_local_http_urls(
    client: httpx.AsyncClient, auth: dict[str, str], url: str
) -> None:
    created = await _created(client, auth, f"local-{url}", {"url": url, "enabled_events": ["*"]})
    assert created["url"] == url


class _PrivateResolver:
    async def resolve(self, host: str) -> list[str]:
        return ["10.0.0.7"]


async def test_a_refusal_found_by_the_service_points_at_the_url_too(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    """In production the service resolves the host; what it refuses is reported like a
    static rule (the container runs with a production webhook config and a resolver that
    answers a private address, so no DNS is queried)."""
    production = WebhookService(
        container.transactions,
        container.clock,
        container.protection,
        container.events,
        _PrivateResolver(),
        WebhooksConfig(production=True),
    )
    container.services.add(WebhookService, production)
    body = {"url": "https://hooks.example.pk/in", "enabled_events": ["*"]}
    refused = await _create(client, auth, "private", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_webhook_url"
    error = _only_error(refused)
    assert (error["pointer"], error["reason"]) == ("/url", "private_address")


# -- changing and deleting -------------------------------------------------------------


async def test_patch_changes_fields_and_reenabling_clears_the_reason(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FrozenClock
) -> None:
    endpoint = await _created(
        client,
        auth,
        "p",
        {"url": "https://example.pk/a", "enabled_events": ["*"], "description": "first"},
    )
    path = f"{ENDPOINTS}/{endpoint['id']}"
    clock.advance(seconds=5)

    changed = await client.patch(
        path,
        json={"url": "https://example.pk/b", "enabled_events": ["payment.failed"]},
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["url"], body["enabled_events"], body["description"]) == (
        "https://example.pk/b",
        ["payment.failed"],
        "first",
    )
    assert body["version"] == 2 and "secret" not in body
    assert body["updated_at"] == format_timestamp(clock.now())
    assert body["created_at"] == endpoint["created_at"]

    described = (await client.patch(path, json={"description": "second"}, headers=auth)).json()
    assert described["description"] == "second" and described["url"] == "https://example.pk/b"
    blank = (await client.patch(path, json={"description": "  "}, headers=auth)).json()
    assert blank["description"] is None, "a blank description clears it"
    await client.patch(path, json={"description": "third"}, headers=auth)
    cleared = (await client.patch(path, json={"description": None}, headers=auth)).json()
    assert cleared["description"] is None

    paused = (await client.patch(path, json={"enabled": False}, headers=auth)).json()
    assert paused["enabled"] is False and paused["disabled_reason"]
    assert (await client.get(path, headers=auth)).json()["enabled"] is False
    resumed = (await client.patch(path, json={"enabled": True}, headers=auth)).json()
    assert resumed["enabled"] is True and resumed["disabled_reason"] is None
    assert resumed["version"] == 8

    bad_url = await client.patch(path, json={"url": "ftp://example.pk"}, headers=auth)
    assert bad_url.status_code == 422 and bad_url.json()["code"] == "invalid_webhook_url"
    assert _only_error(bad_url)["pointer"] == "/url"
    bad_type = await client.patch(path, json={"enabled_events": ["nope"]}, headers=auth)
    assert bad_type.status_code == 422 and _only_error(bad_type)["pointer"] == "/enabled_events/0"
    unknown_field = await client.patch(path, json={"secret": "whsec_x"}, headers=auth)
    assert unknown_field.status_code == 422
    assert (await client.get(path, headers=auth)).json() == resumed, "refusals change nothing"


async def test_a_patch_that_changes_nothing_keeps_the_version(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FrozenClock
) -> None:
    endpoint = await _created(
        client, auth, "n", {"url": "https://example.pk/a", "enabled_events": ["payment.failed"]}
    )
    endpoint.pop("secret")  # shown at creation only
    path = f"{ENDPOINTS}/{endpoint['id']}"
    clock.advance(seconds=5)
    for body in (
        {},
        {"url": "https://example.pk/a", "enabled_events": ["payment.failed"], "enabled": True},
        {"description": None},  # it has none already
    ):
        answer = await client.patch(path, json=body, headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json() == endpoint, f"{body} changed the endpoint"
    assert (await client.get(path, headers=auth)).json() == endpoint


async def test_reenabling_after_amanat_disabled_the_endpoint(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    async with Receiver(status=410) as gone:
        endpoint = await _created(
            client, auth, "gone", {"url": gone.url, "enabled_events": ["balance.topped_up"]}
        )
        topped = await client.post(
            "/v1/sandbox/top_ups", json={"amount": 100}, headers=auth | {"Idempotency-Key": "t"}
        )
        assert topped.status_code == 200, topped.text
        assert await _deliver(container) == 1
    assert len(gone.received) == 1
    path = f"{ENDPOINTS}/{endpoint['id']}"
    disabled = (await client.get(path, headers=auth)).json()
    assert disabled["enabled"] is False
    assert "410" in disabled["disabled_reason"]
    events = (
        await client.get("/v1/events", params={"type": "webhook_endpoint.disabled"}, headers=auth)
    ).json()["data"]
    assert [e["data"]["object"]["id"] for e in events] == [endpoint["id"]]
    disabled_object = events[0]["data"]["object"]
    assert "secret" not in disabled_object and "whsec_" not in json.dumps(disabled_object)
    assert disabled_object["enabled"] is False and disabled_object["version"] == 2

    again = await client.patch(path, json={"enabled": True}, headers=auth)
    assert again.status_code == 200, again.text
    assert again.json()["enabled"] is True and again.json()["disabled_reason"] is None


async def test_delete_hides_the_endpoint_and_fails_its_pending_deliveries(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    endpoint = await _created(
        client, auth, "d", {"url": "https://example.pk/d", "enabled_events": ["*"]}
    )
    keep = await _created(
        client, auth, "k", {"url": "https://example.pk/k", "enabled_events": ["*"]}
    )
    topped = await client.post(
        "/v1/sandbox/top_ups", json={"amount": 100}, headers=auth | {"Idempotency-Key": "t"}
    )
    assert topped.status_code == 200
    assert [d["status"] for d in await _deliveries(client, auth, endpoint["id"])] == ["pending"]

    path = f"{ENDPOINTS}/{endpoint['id']}"
    deleted = await client.delete(path, headers=auth)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}

    assert (await client.get(path, headers=auth)).status_code == 404
    assert (await client.delete(path, headers=auth)).status_code == 404
    assert (await client.patch(path, json={"enabled": True}, headers=auth)).status_code == 404
    assert (await client.get(f"{path}/deliveries", headers=auth)).status_code == 404
    listed = (await client.get(ENDPOINTS, headers=auth)).json()["data"]
    assert [e["id"] for e in listed] == [keep["id"]]

    async with container.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(webhook_deliveries.c.endpoint_id, webhook_deliveries.c.status)
            )
        ).all()
    assert sorted((r.endpoint_id, r.status) for r in rows) == sorted(
        [(endpoint["id"], "failed"), (keep["id"], "pending")]
    )
    assert [d["status"] for d in await _deliveries(client, auth, keep["id"])] == ["pending"]


async def test_another_partners_endpoint_is_not_found_everywhere(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    endpoint = await _created(client, auth, "mine")
    other = await make_client(container, name="Other shop")
    theirs = await bearer(client, other)
    path = f"{ENDPOINTS}/{endpoint['id']}"
    key = {"Idempotency-Key": "k"}
    answers = [
        await client.get(path, headers=theirs),
        await client.patch(path, json={"enabled": False}, headers=theirs),
        await client.delete(path, headers=theirs),
        await client.post(f"{path}/rotate_secret", headers=theirs | key),
        await client.get(f"{path}/deliveries", headers=theirs),
        await client.post(
            f"{path}/replay",
            json={"since": "2026-01-01T00:00:00Z"},
            headers=theirs | {"Idempotency-Key": "r"},
        ),
    ]
    assert [a.status_code for a in answers] == [404] * len(answers), [a.text for a in answers]
    assert all(a.json()["code"] == "not_found" for a in answers)
    assert (await client.get(ENDPOINTS, headers=theirs)).json()["data"] == []
    mine = (await client.get(path, headers=auth)).json()
    assert mine["enabled"] is True and mine["version"] == 1


# -- rotating the secret ---------------------------------------------------------------


async def test_rotation_overlaps_for_a_day_by_default(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    async with Receiver() as receiver:
        endpoint = await _created(
            client, auth, "r", {"url": receiver.url, "enabled_events": ["balance.topped_up"]}
        )
        old = endpoint["secret"]
        path = f"{ENDPOINTS}/{endpoint['id']}"
        no_key = await client.post(f"{path}/rotate_secret", headers=auth)
        assert no_key.status_code == 400
        assert no_key.json()["code"] == "idempotency_key_missing"

        rotated = await client.post(
            f"{path}/rotate_secret", headers=auth | {"Idempotency-Key": "r1"}
        )
        assert rotated.status_code == 200, rotated.text
        body = rotated.json()
        assert SECRET_RE.match(body["secret"]) and body["secret"] != old
        expires = format_timestamp(clock.now() + timedelta(hours=24))
        assert body["secret_rotation"] == {"previous_secret_expires_at": expires}
        assert body["version"] == 2
        fetched = (await client.get(path, headers=auth)).json()
        assert "secret" not in fetched
        assert fetched["secret_rotation"] == {"previous_secret_expires_at": expires}
        replayed = await client.post(
            f"{path}/rotate_secret", headers=auth | {"Idempotency-Key": "r1"}
        )
        assert replayed.json()["secret"] == body["secret"]
        assert (await client.get(path, headers=auth)).json()["version"] == 2, "rotated once"

        # During the overlap every delivery carries both signatures.
        await client.post(
            "/v1/sandbox/top_ups", json={"amount": 100}, headers=auth | {"Idempotency-Key": "t"}
        )
        assert await _deliver(container) == 1
        headers, raw = receiver.received[-1]
        offered = headers["webhook-signature"].split(" ")
        assert sorted(offered) == sorted(
            [
                expected_signature(body["secret"], headers, raw),
                expected_signature(old, headers, raw),
            ]
        )
        stored = await _table_text(container)
        assert old.removeprefix("whsec_") not in stored
        assert body["secret"].removeprefix("whsec_") not in stored


async def test_rotation_without_overlap_and_bounds(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    async with Receiver() as receiver:
        endpoint = await _created(
            client, auth, "r", {"url": receiver.url, "enabled_events": ["balance.topped_up"]}
        )
        path = f"{ENDPOINTS}/{endpoint['id']}/rotate_secret"
        hour = await client.post(
            path,
            json={"expire_previous_in_seconds": 3600},
            headers=auth | {"Idempotency-Key": "h"},
        )
        assert hour.json()["secret_rotation"] == {
            "previous_secret_expires_at": format_timestamp(clock.now() + timedelta(hours=1))
        }
        now = await client.post(
            path, json={"expire_previous_in_seconds": 0}, headers=auth | {"Idempotency-Key": "z"}
        )
        assert now.status_code == 200, now.text
        assert now.json()["secret_rotation"] is None
        for bad in (-1, 7 * 86_400 + 1, "soon"):
            refused = await client.post(
                path,
                json={"expire_previous_in_seconds": bad},
                headers=auth | {"Idempotency-Key": f"bad-{bad}"},
            )
            assert refused.status_code == 422, (bad, refused.text)
            assert _only_error(refused)["pointer"] == "/expire_previous_in_seconds"

        await client.post(
            "/v1/sandbox/top_ups", json={"amount": 100}, headers=auth | {"Idempotency-Key": "t"}
        )
        assert await _deliver(container) == 1
        headers, raw = receiver.received[-1]
        assert headers["webhook-signature"] == expected_signature(
            now.json()["secret"], headers, raw
        )


# -- deliveries, redelivery, replay ----------------------------------------------------


async def test_deliveries_list_every_attempt_and_filter(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    async with Receiver(status=200) as ok, Receiver(status=500) as broken:
        good = await _created(
            client, auth, "good", {"url": ok.url, "enabled_events": PAYMENT_EVENTS}
        )
        bad = await _created(client, auth, "bad", {"url": broken.url, "enabled_events": ["*"]})
        payment_id = await _succeeded_payout(client, container, auth, "pay")
        assert await _deliver(container) == 4

    assert len(ok.received) == 2 and len(broken.received) == 2
    for headers, raw in ok.received:
        assert headers["webhook-signature"] == expected_signature(good["secret"], headers, raw)
        assert headers["content-type"] == "application/json"
        sent = json.loads(raw)
        assert sent["id"] == headers["webhook-id"]
        assert sent["data"]["object"]["id"] == payment_id
        polled = await client.get(f"/v1/events/{sent['id']}", headers=auth)
        assert polled.json() == sent, "a delivery's body is the event as GET shows it"

    delivered = await _deliveries(client, auth, good["id"])
    assert sorted(d["event_type"] for d in delivered) == sorted(PAYMENT_EVENTS)
    assert {h["webhook-id"] for h, _ in ok.received} == {d["event_id"] for d in delivered}
    for delivery in delivered:
        assert delivery["id"].startswith("wd_") and delivery["object"] == "webhook_delivery"
        assert delivery["endpoint_id"] == good["id"] and delivery["trigger"] == "event"
        assert delivery["status"] == "succeeded" and delivery["next_attempt_at"] is None
        [attempt] = delivery["attempts"]
        assert attempt["attempt"] == 1 and attempt["status_code"] == 200
        assert attempt["error"] is None and attempt["response_excerpt"] == "thanks"
        assert attempt["started_at"] == format_timestamp(clock.now())
        assert attempt["latency_ms"] >= 0

    failing = await _deliveries(client, auth, bad["id"])
    assert {d["status"] for d in failing} == {"pending"}
    for delivery in failing:
        [attempt] = delivery["attempts"]
        assert attempt["status_code"] == 500
        assert delivery["next_attempt_at"] is not None
        assert delivery["next_attempt_at"] > format_timestamp(clock.now())

    assert len(await _deliveries(client, auth, bad["id"], status="pending")) == 2
    assert await _deliveries(client, auth, bad["id"], status="succeeded") == []
    assert len(await _deliveries(client, auth, good["id"], status="succeeded")) == 2
    only = await _deliveries(client, auth, good["id"], event_type="payment.succeeded")
    assert [d["event_type"] for d in only] == ["payment.succeeded"]
    assert await _deliveries(client, auth, good["id"], event_type="balance.topped_up") == []
    assert (
        await _deliveries(
            client,
            auth,
            good["id"],
            created_gte=format_timestamp(clock.now() + timedelta(seconds=1)),
        )
        == []
    )
    assert len(await _deliveries(client, auth, good["id"], created_lt="2100-01-01T00:00:00Z")) == 2
    bad_status = await client.get(
        f"{ENDPOINTS}/{good['id']}/deliveries", params={"status": "lost"}, headers=auth
    )
    assert bad_status.status_code == 422
    bad_time = await client.get(
        f"{ENDPOINTS}/{good['id']}/deliveries", params={"created_gte": "yesterday"}, headers=auth
    )
    assert bad_time.status_code == 422 and _only_error(bad_time)["pointer"] == "/created_gte"

    first = await client.get(
        f"{ENDPOINTS}/{good['id']}/deliveries", params={"limit": 1}, headers=auth
    )
    page = first.json()
    assert page["has_more"] is True and page["next_cursor"]
    second = await client.get(
        f"{ENDPOINTS}/{good['id']}/deliveries",
        params={"limit": 1, "cursor": page["next_cursor"]},
        headers=auth,
    )
    assert second.status_code == 200, second.text
    assert second.json()["has_more"] is False
    walked = {d["id"] for d in page["data"] + second.json()["data"]}
    assert walked == {d["id"] for d in delivered}


async def test_redeliver_sends_the_event_again_with_the_same_id(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    merchant: RegisteredClient,
) -> None:
    async with Receiver() as receiver:
        endpoint = await _created(
            client, auth, "e", {"url": receiver.url, "enabled_events": PAYMENT_EVENTS}
        )
        await _created(
            client,
            auth,
            "other",
            {"url": "https://example.pk/x", "enabled_events": ["balance.topped_up"]},
        )
        payment_id = await _succeeded_payout(client, container, auth, "pay")
        await _deliver(container)
        events = (
            await client.get(
                "/v1/events",
                params={"type": "payment.succeeded", "object_id": payment_id},
                headers=auth,
            )
        ).json()["data"]
        event_id = events[0]["id"]

        no_key = await client.post(f"/v1/events/{event_id}/redeliver", headers=auth)
        assert no_key.status_code == 400
        redelivered = await client.post(
            f"/v1/events/{event_id}/redeliver", headers=auth | {"Idempotency-Key": "again"}
        )
        assert redelivered.status_code == 202, redelivered.text
        [queued] = redelivered.json()["data"]
        assert queued["event_id"] == event_id and queued["endpoint_id"] == endpoint["id"]
        assert (queued["trigger"], queued["status"]) == ("redeliver", "pending")
        replayed = await client.post(
            f"/v1/events/{event_id}/redeliver", headers=auth | {"Idempotency-Key": "again"}
        )
        assert replayed.json() == redelivered.json()

        targeted = await client.post(
            f"/v1/events/{event_id}/redeliver",
            json={"endpoint_id": endpoint["id"]},
            headers=auth | {"Idempotency-Key": "targeted"},
        )
        assert targeted.status_code == 202
        assert [d["endpoint_id"] for d in targeted.json()["data"]] == [endpoint["id"]]

        same_event = await _deliveries(client, auth, endpoint["id"], event_type="payment.succeeded")
        assert len(same_event) == 3 and {d["event_id"] for d in same_event} == {event_id}
        assert sorted(d["trigger"] for d in same_event) == ["event", "redeliver", "redeliver"]

        before = len(receiver.received)
        assert await _deliver(container) == 2
        resent = receiver.received[before:]
        assert [h["webhook-id"] for h, _ in resent] == [event_id, event_id]
        for headers, raw in resent:
            assert headers["webhook-signature"] == expected_signature(
                endpoint["secret"], headers, raw
            )

    missing = await client.post(
        "/v1/events/evt_01JD0000000000000000000000/redeliver",
        headers=auth | {"Idempotency-Key": "missing"},
    )
    assert missing.status_code == 404
    other = await make_client(container, name="Other shop")
    theirs = await bearer(client, other)
    foreign = await client.post(
        f"/v1/events/{event_id}/redeliver", headers=theirs | {"Idempotency-Key": "steal"}
    )
    assert foreign.status_code == 404
    their_endpoint = await _created(client, theirs, "theirs")
    cross = await client.post(
        f"/v1/events/{event_id}/redeliver",
        json={"endpoint_id": their_endpoint["id"]},
        headers=auth | {"Idempotency-Key": "cross"},
    )
    assert cross.status_code == 404
    assert await _deliveries(client, theirs, their_endpoint["id"]) == []


async def test_replay_queues_every_matching_event_since(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], clock: FrozenClock
) -> None:
    # Access tokens live five minutes: the clock moves by less than that in all.
    await _succeeded_payout(client, container, auth, "old")
    clock.advance(minutes=2)
    since = format_timestamp(clock.now())
    await _succeeded_payout(client, container, auth, "new-1")
    clock.advance(minutes=1)
    await client.post(
        "/v1/sandbox/top_ups", json={"amount": 100}, headers=auth | {"Idempotency-Key": "t"}
    )
    await _succeeded_payout(client, container, auth, "new-2")
    clock.advance(minutes=1)
    endpoint = await _created(
        client, auth, "later", {"url": "https://example.pk/r", "enabled_events": PAYMENT_EVENTS}
    )
    path = f"{ENDPOINTS}/{endpoint['id']}/replay"

    matching = (
        await client.get(
            "/v1/events",
            params={"type": PAYMENT_EVENTS, "created_gte": since, "limit": 100},
            headers=auth,
        )
    ).json()["data"]
    assert len(matching) == 4

    replayed = await client.post(
        path, json={"since": since}, headers=auth | {"Idempotency-Key": "r"}
    )
    assert replayed.status_code == 202, replayed.text
    assert replayed.json() == {
        "object": "replay",
        "endpoint_id": endpoint["id"],
        "queued": len(matching),
        "truncated": False,
        "resume_from": None,
    }
    again = await client.post(path, json={"since": since}, headers=auth | {"Idempotency-Key": "r"})
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    queued = await _deliveries(client, auth, endpoint["id"], limit=100)
    assert len(queued) == len(matching), "a replayed key queues nothing more"
    assert {d["event_id"] for d in queued} == {e["id"] for e in matching}
    assert {d["trigger"] for d in queued} == {"replay"}

    everything = await _created(
        client, auth, "all", {"url": "https://example.pk/a", "enabled_events": ["*"]}
    )
    all_events = (await client.get("/v1/events", params={"limit": 100}, headers=auth)).json()[
        "data"
    ]
    full = await client.post(
        f"{ENDPOINTS}/{everything['id']}/replay",
        json={"since": "2000-01-01T00:00:00Z"},
        headers=auth | {"Idempotency-Key": "replay-all"},
    )
    assert full.status_code == 202, full.text
    assert full.json()["queued"] == len(all_events)

    window = await client.post(
        path,
        json={"since": "2000-01-01T00:00:00Z", "until": since},
        headers=auth | {"Idempotency-Key": "window"},
    )
    assert window.json()["queued"] == 2, "the first payout's two events; until is exclusive"

    for bad in ("", "   ", "yesterday", "2026-11-24T10:00:00"):
        refused = await client.post(
            path, json={"since": bad}, headers=auth | {"Idempotency-Key": f"bad-{bad}"}
        )
        assert refused.status_code == 422, (bad, refused.text)
        assert _only_error(refused)["pointer"] == "/since"
    no_since = await client.post(path, json={}, headers=auth | {"Idempotency-Key": "none"})
    assert no_since.status_code == 422 and _only_error(no_since)["pointer"] == "/since"
    bad_until = await client.post(
        path, json={"since": since, "until": "later"}, headers=auth | {"Idempotency-Key": "u"}
    )
    assert bad_until.status_code == 422 and _only_error(bad_until)["pointer"] == "/until"


# -- scopes ----------------------------------------------------------------------------


async def test_endpoints_need_webhooks_manage(
    client: httpx.AsyncClient, merchant: RegisteredClient, auth: dict[str, str]
) -> None:
    endpoint = await _created(client, auth, "s")
    reader = await bearer(client, merchant, scope="events:read")
    manager = await bearer(client, merchant, scope="webhooks:manage")
    path = f"{ENDPOINTS}/{endpoint['id']}"
    calls = [
        ("GET", ENDPOINTS, None),
        ("POST", ENDPOINTS, {"url": "https://example.pk/x", "enabled_events": ["*"]}),
        ("GET", path, None),
        ("PATCH", path, {"enabled": False}),
        ("POST", f"{path}/rotate_secret", None),
        ("GET", f"{path}/deliveries", None),
        ("POST", f"{path}/replay", {"since": "2026-01-01T00:00:00Z"}),
        ("DELETE", path, None),
    ]
    for method, url, body in calls:
        lacking = await client.request(
            method, url, json=body, headers=reader | {"Idempotency-Key": f"{method}{url}"}
        )
        assert lacking.status_code == 403, (method, url, lacking.text)
        assert lacking.json()["code"] == "insufficient_scope"
        assert 'scope="webhooks:manage"' in lacking.headers["www-authenticate"]
    for method, url, body in calls:
        allowed = await client.request(
            method, url, json=body, headers=manager | {"Idempotency-Key": f"m-{method}{url}"}
        )
        assert allowed.status_code in (200, 201, 202), (method, url, allowed.text)
        # Reads count against the read budget, changes against the write budget.
        budget = '"read"' if method == "GET" else '"write"'
        assert allowed.headers["ratelimit-policy"].startswith(budget), (method, url)
