"""What an outsider (or a careless TPP) sends the open-banking surface at its edges: every
answer in OBIE's terms, with its interaction id, and never a 500."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from tests.support.oauth import RegisteredClient, bearer, make_tpp_client, refresh
from tests.support.obie_spec import validate_response
from tests.support.open_banking import AISP, authorise, create_account_consent, obie, seed_bank

from amanat.bootstrap import Container


@pytest.fixture
async def tpp(container: Container) -> RegisteredClient:
    await seed_bank(container)
    return await make_tpp_client(container)


async def test_unknown_paths_and_methods_answer_in_obie_terms(client: httpx.AsyncClient) -> None:
    for method, path, status in (
        ("GET", f"{AISP}/nope", 404),
        ("PUT", f"{AISP}/accounts", 405),
    ):
        answer = await client.request(method, path)
        assert answer.status_code == status
        assert answer.headers["x-fapi-interaction-id"]
        assert answer.content == b""


async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    answer = await client.post(
        f"{AISP}/account-access-consents",
        headers={**await bearer(client, tpp, scope="accounts"), "content-type": "text/plain"},
        content=b"Data=1",
    )
    assert answer.status_code == 415
    assert answer.headers["x-fapi-interaction-id"]


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "1899-12-31T00:00:00Z"]
)
async def test_dates_out_of_range_are_refused_not_500(
    client: httpx.AsyncClient, tpp: RegisteredClient, when: str
) -> None:
    headers = await bearer(client, tpp, scope="accounts")
    answer = await client.post(
        f"{AISP}/account-access-consents",
        headers=headers,
        json={"Data": {"Permissions": ["ReadBalances"], "ExpirationDateTime": when}, "Risk": {}},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Field.InvalidDate"


async def test_odd_queries_and_cursors_are_refused_not_500(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(
        client,
        tpp,
        ["ReadAccountsBasic", "ReadTransactionsBasic", "ReadTransactionsDebits"],
    )
    tokens = await authorise(client, tpp, created["Data"]["ConsentId"])
    psu = {"Authorization": f"Bearer {tokens['access_token']}"}
    nul_cursor = base64.urlsafe_b64encode(
        json.dumps({"t": "2026-12-01T00:00:00Z", "id": "btx\u0000"}).encode()
    ).decode()
    for query in (
        "fromBookingDateTime=0001-01-01T00:00:00",
        "toBookingDateTime=9999-12-31T23:59:59-05:00",
        f"cursor={nul_cursor}",
        "fromBookingDateTime=",
    ):
        answer = await client.get(f"{AISP}/transactions?{query}", headers=psu)
        assert answer.status_code == 400, (query, answer.text)
        validate_response(
            "accounts", "GET", "/transactions", 400, dict(answer.headers), answer.content
        )


async def test_self_link_of_a_new_consent_ignores_the_query(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    answer = await client.post(
        f"{AISP}/account-access-consents?foo=bar",
        headers=await bearer(client, tpp, scope="accounts"),
        json={"Data": {"Permissions": ["ReadBalances"]}, "Risk": {}},
    )
    consent_id = answer.json()["Data"]["ConsentId"]
    assert answer.json()["Links"]["Self"].endswith(f"/account-access-consents/{consent_id}")


async def test_refresh_stops_working_when_the_consent_ends(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(client, tpp, ["ReadBalances"])
    consent_id = created["Data"]["ConsentId"]
    tokens = await authorise(client, tpp, consent_id)
    deleted = await obie(
        client,
        "accounts",
        "DELETE",
        f"/account-access-consents/{consent_id}",
        await bearer(client, tpp, scope="accounts"),
    )
    assert deleted.status_code == 204
    refreshed = await refresh(client, tpp, tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
