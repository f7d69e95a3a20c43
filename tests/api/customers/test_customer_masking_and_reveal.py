"""Customers are answered masked; the clear identifiers need ``customers:reveal``, are
never cached, are rate limited by a policy of their own and leave one audit record per
reveal that holds no clear value."""

from __future__ import annotations

import json

import httpx
import pytest
import sqlalchemy as sa
from tests.support.oauth import (
    ACTOR,
    RegisteredClient,
    fetch_token,
    make_client,
    request_token,
)

from amanat.bootstrap import Container
from amanat.platform.audit.tables import audit_log
from amanat.platform.ratelimit.limiter import DEFAULT_POLICIES, Policy

IBAN = "PK36SCBL0000001123456702"
CNIC = "35202-1234567-3"
PHONE = "+923001234567"
BODY = {"name": "Ayesha Khan", "iban": IBAN, "raast_id": "03001234567", "cnic": CNIC}
# Every spelling of the identifiers above that must never appear in a default response.
CLEAR_FORMS = [
    IBAN,
    IBAN[4:],
    IBAN[-10:],
    CNIC,
    CNIC.replace("-", ""),
    "1234567",
    PHONE,
    "03001234567",
    "3001234567",
]
MASKED = {
    "iban_last4": "6702",
    "raast_id_masked": "+92300*****67",
    "cnic_masked": "*****-*******-3",
}


async def _bearer(
    client: httpx.AsyncClient, registered: RegisteredClient, scope: str | None = None
) -> dict[str, str]:
    token = await fetch_token(client, registered, scope=scope)
    return {"Authorization": f"Bearer {token['access_token']}"}


async def _create(client: httpx.AsyncClient, auth: dict[str, str], key: str = "c1") -> str:
    created = await client.post("/v1/customers", json=BODY, headers=auth | {"Idempotency-Key": key})
    assert created.status_code == 201, created.text
    customer_id: str = created.json()["id"]
    return customer_id


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    return await make_client(container, name="Shop")


@pytest.fixture
async def revealer(container: Container) -> RegisteredClient:
    """A client registered with the opt-in scope, as an operator would on request."""
    return await make_client(
        container, name="Support desk", scopes=["payments:read", "customers:reveal"]
    )


async def _reveal_audits(container: Container) -> list[sa.Row[tuple[object, ...]]]:
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.db.read() as conn:
        rows = await conn.execute(
            sa.select(audit_log).where(audit_log.c.action == "data_subject.revealed")
        )
        return list(rows.all())


async def _customer_writer(container: Container, owner: RegisteredClient) -> RegisteredClient:
    writer = await container.partners.create_client(
        ACTOR, owner.partner.id, name="writer", scopes=["payments:write"]
    )
    return RegisteredClient(owner.partner, writer.client, writer.secret)


async def _customer_of(
    client: httpx.AsyncClient, container: Container, owner: RegisteredClient
) -> str:
    """A customer of ``owner``'s partner, made by a second client of it that may write."""
    return await _create(client, await _bearer(client, await _customer_writer(container, owner)))


def _assert_masked(text: str) -> None:
    for clear in CLEAR_FORMS:
        assert clear not in text, f"{clear[:6]}… appears in a default response"


async def test_create_read_list_and_replay_are_masked(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    auth = await _bearer(client, merchant)
    created = await client.post("/v1/customers", json=BODY, headers=auth | {"Idempotency-Key": "m"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in MASKED} == MASKED
    assert body["name"] == "Ayesha Khan" and body["bank"]["code"] == "SCBL"
    assert not {"iban", "raast_id", "cnic"} & set(body)
    replay = await client.post("/v1/customers", json=BODY, headers=auth | {"Idempotency-Key": "m"})
    read = await client.get(f"/v1/customers/{body['id']}", headers=auth)
    found = await client.get("/v1/customers", params={"iban": IBAN}, headers=auth)
    by_cnic = await client.get("/v1/customers", params={"cnic": CNIC}, headers=auth)
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == body
    assert read.status_code == 200 and read.json() == body
    assert found.json()["data"] == [body] and by_cnic.json()["data"] == [body]
    for response in (created, replay, read, found, by_cnic):
        _assert_masked(response.text)


async def test_reveal_needs_the_opt_in_scope(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _bearer(client, merchant)
    customer_id = await _create(client, auth)
    refused = await client.get(f"/v1/customers/{customer_id}/identifiers", headers=auth)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "insufficient_scope"
    assert 'scope="customers:reveal"' in refused.headers["www-authenticate"]
    _assert_masked(refused.text)
    # A merchant's client registered with the defaults does not hold it either …
    assert "customers:reveal" not in merchant.client.allowed_scopes
    asked = await request_token(client, merchant, scope="customers:reveal")
    assert asked.status_code == 400 and asked.json()["error"] == "invalid_scope"
    assert await _reveal_audits(container) == []


async def test_a_token_carries_the_scope_only_when_asked_for(
    client: httpx.AsyncClient, container: Container, revealer: RegisteredClient
) -> None:
    default = await fetch_token(client, revealer)
    assert default["scope"] == "payments:read"
    asked = await fetch_token(client, revealer, scope="customers:reveal")
    assert asked["scope"] == "customers:reveal"


async def test_reveal_answers_clear_values_uncached_with_one_audit_record_each(
    client: httpx.AsyncClient,
    container: Container,
    merchant: RegisteredClient,
    revealer: RegisteredClient,
) -> None:
    customer_id = await _customer_of(client, container, revealer)
    auth = await _bearer(client, revealer, scope="customers:reveal")
    path = f"/v1/customers/{customer_id}/identifiers"

    everything = await client.get(path, headers=auth | {"X-Request-Id": "req-reveal-1"})
    assert everything.status_code == 200, everything.text
    assert everything.json() == {
        "id": customer_id,
        "object": "customer_identifiers",
        "iban": IBAN,
        "raast_id": PHONE,
        "cnic": CNIC,
    }
    assert everything.headers["cache-control"] == "no-store"
    assert everything.headers["ratelimit-policy"].startswith('"reveal"')
    audits = await _reveal_audits(container)
    assert len(audits) == 1
    (audit,) = audits
    assert (audit.actor_type, audit.actor_id) == ("client", revealer.id)
    assert (audit.target_type, audit.target_id) == ("data_subject", customer_id)
    assert audit.request_id == "req-reveal-1" and audit.source_ip
    assert json.loads(audit.payload) == {
        "partner_id": revealer.partner.id,
        "fields": ["cnic", "iban", "raast_id"],
    }

    only_cnic = await client.get(path, params={"field": "cnic"}, headers=auth)
    assert only_cnic.json() | {"cnic": None} == {
        "id": customer_id,
        "object": "customer_identifiers",
        "iban": None,
        "raast_id": None,
        "cnic": None,
    }
    assert only_cnic.json()["cnic"] == CNIC
    audits = await _reveal_audits(container)
    assert len(audits) == 2 and json.loads(audits[1].payload)["fields"] == ["cnic"]
    for row in audits:
        text = " ".join(str(value) for value in row)
        for clear in CLEAR_FORMS:
            assert clear not in text, "an audit record holds a clear value"

    # Another partner's customer does not exist for this client; nothing is recorded.
    other = await _bearer(client, merchant)
    foreign_id = await _create(client, other, key="foreign")
    missing = await client.get(f"/v1/customers/{foreign_id}/identifiers", headers=auth)
    assert missing.status_code == 404
    bad_field = await client.get(path, params={"field": "name"}, headers=auth)
    assert bad_field.status_code == 422
    assert len(await _reveal_audits(container)) == 2


async def test_reveal_has_its_own_rate_limit(
    client: httpx.AsyncClient, container: Container, revealer: RegisteredClient
) -> None:
    policy = DEFAULT_POLICIES["reveal"]
    assert policy.limit < DEFAULT_POLICIES["read"].limit
    customer_id = await _customer_of(client, container, revealer)
    auth = await _bearer(client, revealer, scope="customers:reveal")
    path = f"/v1/customers/{customer_id}/identifiers"
    for _ in range(policy.limit):
        assert (await client.get(path, params={"field": "iban"}, headers=auth)).status_code == 200
    limited = await client.get(path, params={"field": "iban"}, headers=auth)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert IBAN not in limited.text
    assert len(await _reveal_audits(container)) == policy.limit, "a refusal reveals nothing"


async def _search_audits(container: Container) -> list[sa.Row[tuple[object, ...]]]:
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.db.read() as conn:
        rows = await conn.execute(
            sa.select(audit_log).where(audit_log.c.action == "data_subject.searched")
        )
        return list(rows.all())


async def test_search_by_identifier_is_audited_without_the_value(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    """A search confirms a guessed identifier, so each leaves a trace: field and count."""
    auth = await _bearer(client, merchant)
    await _create(client, await _bearer(client, await _customer_writer(container, merchant)))
    hit = await client.get(
        "/v1/customers", params={"raast_id": PHONE}, headers=auth | {"X-Request-Id": "req-s1"}
    )
    miss = await client.get("/v1/customers", params={"cnic": "35202-7654321-3"}, headers=auth)
    assert hit.status_code == 200 and len(hit.json()["data"]) == 1
    assert hit.headers["ratelimit-policy"].startswith('"customer_search"')
    assert miss.status_code == 200 and miss.json()["data"] == []
    audits = await _search_audits(container)
    assert len(audits) == 2, "one audit record per search"
    assert (audits[0].actor_type, audits[0].actor_id) == ("client", merchant.id)
    assert audits[0].request_id == "req-s1" and audits[0].source_ip
    assert json.loads(audits[0].payload) == {
        "partner_id": merchant.partner.id,
        "field": "raast_id",
        "matches": 1,
    }
    assert json.loads(audits[1].payload)["matches"] == 0
    for row in audits:
        text = " ".join(str(value) for value in row)
        for clear in [*CLEAR_FORMS, "7654321", "3520276543213"]:
            assert clear not in text, "a search's audit record holds the value searched"


async def test_search_by_identifier_has_its_own_rate_limit(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    """Guessing the five starred digits of a Raast ID needs up to 100,000 searches: the
    search policy keeps that to a few hundred an hour, far below the read policy."""
    default = DEFAULT_POLICIES["customer_search"]
    assert default.limit * 100 <= DEFAULT_POLICIES["read"].limit * 60
    small = Policy("customer_search", 3, 3600)
    container.rate_limiter.policies["customer_search"] = small
    auth = await _bearer(client, merchant)
    for n in range(small.limit):
        guess = f"+92300{n:05d}67"
        assert (
            await client.get("/v1/customers", params={"raast_id": guess}, headers=auth)
        ).status_code == 200
    limited = await client.get("/v1/customers", params={"raast_id": PHONE}, headers=auth)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert len(await _search_audits(container)) == small.limit, "a refused search is not audited"
    # Reading a customer by id still answers: only identifier searches are limited.
    assert (await client.get("/v1/customers/cus_unknown", headers=auth)).status_code == 404
