"""Customers over the partner API, and the Idempotency-Key contract on a real POST."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.support.oauth import RegisteredClient, fetch_token, make_client

from amanat.bootstrap import Container
from amanat.platform.idempotency.tables import idempotency_keys
from amanat.platform.protection.tables import data_subjects

IBAN = "PK36SCBL0000001123456702"
BODY = {"name": "Ayesha Khan", "iban": IBAN, "raast_id": "03001234567", "cnic": "35202-1234567-3"}


async def _bearer(
    client: httpx.AsyncClient, registered: RegisteredClient, scope: str | None = None
) -> dict[str, str]:
    token = await fetch_token(client, registered, scope=scope)
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    return await make_client(container, name="Shop")


async def _count(container: Container) -> int:
    async with container.db.read() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(data_subjects))).scalar_one()
        )


async def test_create_replay_and_reuse(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _bearer(client, merchant)
    headers = auth | {"Idempotency-Key": "cust-1"}
    first = await client.post("/v1/customers", json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["id"].startswith("cus_") and body["object"] == "customer"
    assert body["iban_last4"] == "6702" and body["raast_id_masked"] == "+92300*****67"
    assert body["bank"] == {"code": "SCBL", "name": body["bank"]["name"]}
    assert "idempotent-replayed" not in first.headers

    again = await client.post("/v1/customers", json=BODY, headers=headers)
    assert again.status_code == 201
    assert again.json() == body
    assert again.headers["idempotent-replayed"] == "true"

    quoted = await client.post(
        "/v1/customers",
        json=dict(reversed(BODY.items())),
        headers=auth | {"Idempotency-Key": '"cust-1"'},
    )
    assert quoted.json() == body, "a structured-field string names the same key"

    changed = await client.post(
        "/v1/customers", json=BODY | {"name": "Someone Else"}, headers=headers
    )
    assert changed.status_code == 422
    assert changed.json()["code"] == "idempotency_key_reused"
    assert await _count(container) == 1


async def test_missing_key_and_invalid_input_store_nothing(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _bearer(client, merchant)
    missing = await client.post("/v1/customers", json=BODY, headers=auth)
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_missing"

    bad = await client.post(
        "/v1/customers",
        json=BODY | {"iban": "PK36SCBL0000001123456703"},
        headers=auth | {"Idempotency-Key": "k2"},
    )
    assert bad.status_code == 422
    problem = bad.json()
    assert problem["code"] == "invalid_iban"
    assert problem["errors"] == [
        {
            "pointer": "/iban",
            "in": "body",
            "code": "invalid_iban",
            "reason": "checksum_mismatch",
            "message": problem["errors"][0]["message"],
        }
    ]
    assert "PK36SCBL0000001123456703" not in bad.text

    fixed = await client.post("/v1/customers", json=BODY, headers=auth | {"Idempotency-Key": "k2"})
    assert fixed.status_code == 201, "a refused request leaves the key free"
    async with container.db.read() as conn:
        keys = (await conn.execute(sa.select(idempotency_keys.c.key))).scalars().all()
    assert keys == ["k2"]


async def test_keys_are_scoped_per_client(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    other = await make_client(container, name="Other shop")
    for registered in (merchant, other):
        response = await client.post(
            "/v1/customers",
            json=BODY,
            headers=(await _bearer(client, registered)) | {"Idempotency-Key": "same"},
        )
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers
    assert await _count(container) == 2


async def test_concurrent_identical_requests_execute_once(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    headers = (await _bearer(client, merchant)) | {"Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *[client.post("/v1/customers", json=BODY, headers=headers) for _ in range(12)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in responses if r.status_code == 201]
    assert len({r.json()["id"] for r in created}) == 1
    for busy in (r for r in responses if r.status_code == 409):
        assert busy.json()["code"] == "idempotency_key_in_use"
        assert int(busy.headers["retry-after"]) >= 1
    assert await _count(container) == 1
    final = await client.post("/v1/customers", json=BODY, headers=headers)
    assert final.status_code == 201 and final.headers["idempotent-replayed"] == "true"


async def test_abandoned_key_is_taken_over_after_its_lock(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient, clock: Any
) -> None:
    """A crash after the key was recorded but before the change committed."""
    from amanat.platform.idempotency.ports import IdempotencyRecord
    from amanat.platform.idempotency.protocol import fingerprint
    from amanat.platform.idempotency.service import KEY_LIFETIME, LOCK

    headers = (await _bearer(client, merchant)) | {"Idempotency-Key": "crashed"}
    now = clock.now()
    import orjson

    async with container.transactions.write() as tx:
        await tx.idempotency.try_insert(
            IdempotencyRecord(
                client_id=merchant.id,
                key="crashed",
                request_hash=fingerprint("POST", "/v1/customers", orjson.dumps(BODY)),
                method="POST",
                path="/v1/customers",
                status="in_progress",
                response_status=None,
                response_body=None,
                response_headers=None,
                created_at=now,
                locked_until=now + LOCK,
                expires_at=now + KEY_LIFETIME,
            )
        )
    busy = await client.post("/v1/customers", json=BODY, headers=headers)
    assert busy.status_code == 409
    clock.advance(seconds=LOCK.total_seconds() + 1)
    headers = (await _bearer(client, merchant)) | {"Idempotency-Key": "crashed"}
    done = await client.post("/v1/customers", json=BODY, headers=headers)
    assert done.status_code == 201, done.text
    assert await _count(container) == 1


async def test_a_key_past_its_lifetime_is_free_again(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient, clock: Any
) -> None:
    """After 24 hours the key names a new request: no replay, no "reused" error."""
    from amanat.platform.idempotency.service import KEY_LIFETIME

    headers = (await _bearer(client, merchant)) | {"Idempotency-Key": "old-key"}
    first = await client.post("/v1/customers", json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    clock.advance(seconds=KEY_LIFETIME.total_seconds() + 1)
    headers = (await _bearer(client, merchant)) | {"Idempotency-Key": "old-key"}
    other = BODY | {"name": "Bilal Ahmed", "cnic": "35202-7654321-3"}
    second = await client.post("/v1/customers", json=other, headers=headers)
    assert second.status_code == 201, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    replay = await client.post("/v1/customers", json=other, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == second.json()["id"]
    async with container.db.read() as conn:
        keys = (
            await conn.execute(sa.select(sa.func.count()).select_from(idempotency_keys))
        ).scalar_one()
    assert keys == 1


async def test_find_and_read_only_own_customers(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _bearer(client, merchant)
    created = (
        await client.post("/v1/customers", json=BODY, headers=auth | {"Idempotency-Key": "c"})
    ).json()
    found = await client.get("/v1/customers", params={"cnic": "3520212345673"}, headers=auth)
    assert found.status_code == 200
    assert [c["id"] for c in found.json()["data"]] == [created["id"]]
    assert (await client.get(f"/v1/customers/{created['id']}", headers=auth)).json() == created

    other = await make_client(container, name="Other shop")
    other_auth = await _bearer(client, other)
    assert (
        await client.get(f"/v1/customers/{created['id']}", headers=other_auth)
    ).status_code == 404
    none = await client.get("/v1/customers", params={"iban": IBAN}, headers=other_auth)
    assert none.json()["data"] == []
    neither = await client.get("/v1/customers", headers=auth)
    assert neither.status_code == 422


async def test_scope_is_enforced(client: httpx.AsyncClient, merchant: RegisteredClient) -> None:
    read_only = await _bearer(client, merchant, scope="payments:read")
    refused = await client.post(
        "/v1/customers", json=BODY, headers=read_only | {"Idempotency-Key": "x"}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    assert 'scope="payments:write"' in refused.headers["www-authenticate"]
    anonymous = await client.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "x"})
    assert anonymous.status_code == 401
