"""Account information end to end over HTTP, on both databases: a TPP's consent, the
PSU's authorisation in the hosted pages, reads under the consent, withdrawal. Every OBIE
request and answer is checked against the official specification on the way."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.support.oauth import RegisteredClient, bearer, make_tpp_client
from tests.support.obie_spec import validate_response
from tests.support.open_banking import (
    INTERACTION,
    authorise,
    create_account_consent,
    obie,
    seed_bank,
)

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock

ALL = [
    "ReadAccountsDetail",
    "ReadBalances",
    "ReadTransactionsDetail",
    "ReadTransactionsCredits",
    "ReadTransactionsDebits",
]


@pytest.fixture
async def tpp(container: Container) -> RegisteredClient:
    await seed_bank(container)
    return await make_tpp_client(container)


def psu(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def audit_payloads(container: Container, action: str, consent_id: str) -> list[Any]:
    await container.audit_integrity.chain_pending()
    async with container.transactions.read() as tx:
        page = await tx.audit.list_records(100, None, action, consent_id)
    return list(page.items)


async def test_the_whole_account_information_journey(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(
        client, tpp, ALL, ExpirationDateTime="2099-01-01T00:00:00+05:00"
    )
    consent_id = created["Data"]["ConsentId"]
    assert created["Data"]["Status"] == "AwaitingAuthorisation"
    assert created["Links"]["Self"].endswith(f"/account-access-consents/{consent_id}")

    tokens = await authorise(client, tpp, consent_id)
    headers = psu(tokens)

    consent = await obie(
        client,
        "accounts",
        "GET",
        f"/account-access-consents/{consent_id}",
        await bearer(client, tpp, scope="accounts"),
    )
    assert consent.json()["Data"]["Status"] == "Authorised"

    accounts = await obie(client, "accounts", "GET", "/accounts", headers)
    assert accounts.status_code == 200, accounts.text
    assert accounts.headers["x-fapi-interaction-id"] == INTERACTION
    listed = accounts.json()["Data"]["Account"]
    assert listed
    first = listed[0]
    assert first["Account"][0]["SchemeName"] == "UK.OBIE.IBAN"
    assert first["Account"][0]["Identification"].startswith("PK")

    one = await obie(client, "accounts", "GET", f"/accounts/{first['AccountId']}", headers)
    assert one.json()["Data"]["Account"][0]["AccountId"] == first["AccountId"]

    balances = await obie(
        client, "accounts", "GET", f"/accounts/{first['AccountId']}/balances", headers
    )
    kinds = {b["Type"] for b in balances.json()["Data"]["Balance"]}
    assert kinds == {"InterimBooked", "InterimAvailable"}
    bulk = await obie(client, "accounts", "GET", "/balances", headers)
    assert len(bulk.json()["Data"]["Balance"]) == 2 * len(listed)

    history = await obie(
        client, "accounts", "GET", f"/accounts/{first['AccountId']}/transactions", headers
    )
    items = history.json()["Data"]["Transaction"]
    assert items
    assert {t["CreditDebitIndicator"] for t in items} <= {"Credit", "Debit"}
    assert all("TransactionInformation" in t for t in items)
    assert all(t["AccountId"] == first["AccountId"] for t in items)
    booked = [t["BookingDateTime"] for t in items]
    assert booked == sorted(booked, reverse=True)

    # The TPP withdraws the consent: the very next read is refused.
    deleted = await obie(
        client,
        "accounts",
        "DELETE",
        f"/account-access-consents/{consent_id}",
        await bearer(client, tpp, scope="accounts"),
    )
    assert deleted.status_code == 204
    refused = await obie(client, "accounts", "GET", "/accounts", headers)
    assert refused.status_code == 403
    assert refused.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Resource.InvalidConsentStatus"

    # The consent trail: who approved what, from where; who revoked it.
    (approved,) = await audit_payloads(container, "consent.authorised", consent_id)
    assert approved.actor.type == "psu"
    assert approved.actor.user_agent
    assert approved.actor.source_ip
    assert approved.payload["permissions"] == ALL
    assert approved.payload["accounts"] == [a["AccountId"] for a in listed]
    assert approved.payload["device"] == "test-device"
    (revoked,) = await audit_payloads(container, "consent.revoked", consent_id)
    assert revoked.actor.type == "client"
    assert revoked.actor.id == tpp.id


async def test_permissions_decide_what_the_tpp_sees(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(
        client,
        tpp,
        ["ReadAccountsBasic", "ReadTransactionsBasic", "ReadTransactionsCredits"],
    )
    headers = psu(await authorise(client, tpp, created["Data"]["ConsentId"], accounts=1))
    accounts = (await obie(client, "accounts", "GET", "/accounts", headers)).json()
    (account,) = accounts["Data"]["Account"]
    assert "Account" not in account  # no IBAN or title without ReadAccountsDetail
    transactions = (await obie(client, "accounts", "GET", "/transactions", headers)).json()
    items = transactions["Data"]["Transaction"]
    assert items
    assert {t["CreditDebitIndicator"] for t in items} == {"Credit"}
    assert not any("TransactionInformation" in t or "Balance" in t for t in items)
    balances = await obie(client, "accounts", "GET", "/balances", headers)
    assert balances.status_code == 403
    assert balances.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Resource.ConsentMismatch"


async def test_an_account_outside_the_consent_is_refused(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(client, tpp, ALL)
    headers = psu(
        await authorise(client, tpp, created["Data"]["ConsentId"], username="bilal.ahmed")
    )
    for path in ("/accounts/bac_0001", "/accounts/bac_0001/balances"):
        refused = await obie(client, "accounts", "GET", path, headers)
        assert refused.status_code == 403, refused.text


async def test_transactions_page_through_links_next(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(client, tpp, ALL)
    headers = psu(await authorise(client, tpp, created["Data"]["ConsentId"]))
    seen: list[str] = []
    path = "/transactions"
    for _ in range(50):
        page = await obie(client, "accounts", "GET", path, headers)
        body = page.json()
        seen += [t["TransactionId"] for t in body["Data"]["Transaction"]]
        following = body["Links"].get("Next")
        if not following:
            break
        path = following.split("/aisp", 1)[1]
    assert len(seen) > 100  # more than one page
    assert len(seen) == len(set(seen))


async def test_consent_expiry_ends_access_at_once(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient, clock: FrozenClock
) -> None:
    expiry = clock.now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    created = await create_account_consent(
        client, tpp, ALL, ExpirationDateTime=_later(clock, minutes=10)
    )
    assert expiry  # the clock's own now, for the record
    headers = psu(await authorise(client, tpp, created["Data"]["ConsentId"]))
    assert (await obie(client, "accounts", "GET", "/accounts", headers)).status_code == 200
    clock.advance(minutes=11)
    refused = await obie(client, "accounts", "GET", "/accounts", headers)
    assert refused.status_code in (401, 403)  # the token or the consent, whichever ends first
    from amanat.openbanking.services.consents import ConsentService

    assert await container.get(ConsentService).end_due() == 1
    trail = await audit_payloads(container, "consent.expired", created["Data"]["ConsentId"])
    assert trail and trail[0].actor.type == "system"


def _later(clock: FrozenClock, **delta: float) -> str:
    from datetime import timedelta

    return (clock.now() + timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    ("permissions", "path"),
    [
        ([], "Data.Permissions"),
        (["ReadStandingOrdersBasic"], "Data.Permissions"),
        (["ReadTransactionsBasic"], "Data.Permissions"),
        (["ReadTransactionsCredits", "ReadAccountsBasic"], "Data.Permissions"),
        (["NotAPermission"], "Data.Permissions"),
    ],
)
async def test_a_bad_consent_request_is_refused_in_obie_terms(
    client: httpx.AsyncClient, tpp: RegisteredClient, permissions: list[str], path: str
) -> None:
    headers = await bearer(client, tpp, scope="accounts")
    response = await client.post(
        "/open-banking/v3.1/aisp/account-access-consents",
        headers=headers,
        json={"Data": {"Permissions": permissions}, "Risk": {}},
    )
    validate_response(
        "accounts",
        "POST",
        "/account-access-consents",
        response.status_code,
        dict(response.headers),
        response.content,
    )
    assert response.status_code == 400, response.text
    error = response.json()["Errors"][0]
    assert error["ErrorCode"].startswith("UK.OBIE.Field.")
    assert error.get("Path", "").startswith(path)


async def test_without_a_token_the_answer_is_401_with_an_interaction_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/open-banking/v3.1/aisp/accounts")
    assert response.status_code == 401
    assert response.headers["x-fapi-interaction-id"]
    validate_response("accounts", "GET", "/accounts", 401, dict(response.headers), response.content)


async def test_a_client_credentials_token_reads_no_account(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    response = await obie(
        client, "accounts", "GET", "/accounts", await bearer(client, tpp, scope="accounts")
    )
    assert response.status_code == 403
    assert response.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Resource.ConsentMismatch"


async def test_the_tpp_hears_of_its_consents_as_events(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(client, tpp, ["ReadBalances"])
    consent_id = created["Data"]["ConsentId"]
    await authorise(client, tpp, consent_id)
    await obie(
        client,
        "accounts",
        "DELETE",
        f"/account-access-consents/{consent_id}",
        await bearer(client, tpp, scope="accounts"),
    )
    listed = await client.get("/v1/events", headers=await bearer(client, tpp, scope="events:read"))
    assert listed.status_code == 200, listed.text
    mine = [e for e in listed.json()["data"] if e["data"]["object"]["id"] == consent_id]
    assert [e["type"] for e in reversed(mine)] == ["consent.authorised", "consent.revoked"]
    assert mine[0]["data"]["object"]["reason"] == "tpp_deleted"
