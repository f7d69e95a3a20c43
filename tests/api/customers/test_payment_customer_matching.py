"""A payment's IBAN or Raast ID is attached to an existing customer only under the same
name: a different name makes a customer of its own, never joins someone else's record."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.support.oauth import ACTOR, RegisteredClient, fetch_token, make_client

from amanat.auth.domain import Caller
from amanat.bootstrap import Container

IBAN = "PK36SCBL0000001123456702"


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    registered = await make_client(container, name="Shop")
    await container.payments.top_up(Caller(registered.partner.id, None, ACTOR), 10_000_000)
    return registered


async def _pay(
    client: httpx.AsyncClient, auth: dict[str, str], key: str, party: dict[str, Any]
) -> str:
    body: dict[str, Any] = {"amount": 10_000, "currency": "PKR"}
    if "raast_id" in party and key.startswith("col"):
        body |= {"type": "collection", "debtor": party}
    else:
        body |= {"creditor": party}
    response = await client.post("/v1/payments", json=body, headers=auth | {"Idempotency-Key": key})
    assert response.status_code == 201, response.text
    party_out = response.json()["creditor"] or response.json()["debtor"]
    customer_id: str = party_out["customer_id"]
    return customer_id


async def test_same_identifier_other_name_is_another_customer(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = await fetch_token(client, merchant)
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    ayesha = await _pay(client, auth, "p1", {"iban": IBAN, "name": "Ayesha Khan"})
    again = await _pay(client, auth, "p2", {"iban": IBAN, "name": "  AYESHA   khan "})
    assert again == ayesha, "case and spacing do not make another person"
    bilal = await _pay(client, auth, "p3", {"iban": IBAN, "name": "Bilal Ahmed"})
    assert bilal != ayesha, "another name is never attached to Ayesha's record"
    nameless = await _pay(client, auth, "p4", {"iban": IBAN})
    assert nameless not in (ayesha, bilal)
    assert await _pay(client, auth, "p5", {"iban": IBAN}) == nameless

    stored = await client.get(f"/v1/customers/{ayesha}", headers=auth)
    assert stored.json()["name"] == "Ayesha Khan", "the first record is untouched"
    assert (await client.get(f"/v1/customers/{bilal}", headers=auth)).json()["name"] == (
        "Bilal Ahmed"
    )
    found = await client.get("/v1/customers", params={"iban": IBAN}, headers=auth)
    assert sorted(c["id"] for c in found.json()["data"]) == sorted([ayesha, bilal, nameless])


async def test_raast_id_collections_follow_the_same_rule(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = await fetch_token(client, merchant)
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    first = await _pay(client, auth, "col1", {"raast_id": "03001234567", "name": "Bilal Ahmed"})
    same = await _pay(client, auth, "col2", {"raast_id": "+923001234567", "name": "bilal ahmed"})
    other = await _pay(client, auth, "col3", {"raast_id": "0300-1234567", "name": "Sana Mir"})
    assert same == first and other != first


async def test_an_erased_customer_is_never_reused(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = await fetch_token(client, merchant)
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    first = await _pay(client, auth, "e1", {"iban": IBAN, "name": "Ayesha Khan"})
    await container.protection.erase_subject(ACTOR, first, reason="test")
    assert await _pay(client, auth, "e2", {"iban": IBAN, "name": "Ayesha Khan"}) != first
