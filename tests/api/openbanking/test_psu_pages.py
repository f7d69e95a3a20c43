"""The bank's hosted pages as a customer (and someone else's browser) meets them: the
consent dashboard, withdrawal, and what the pages refuse."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.support.oauth import LOOPBACK_REDIRECT, RegisteredClient, make_tpp_client
from tests.support.open_banking import (
    authorise,
    create_account_consent,
    obie,
    redirect_params,
    sandbox_code,
    seed_bank,
    start_walk,
)

from amanat.bootstrap import Container
from amanat.openbanking.domain.sandbox_credentials import SANDBOX_PSU_PASSWORD

PERMISSIONS = ["ReadAccountsBasic", "ReadBalances"]


@pytest.fixture
async def tpp(container: Container) -> RegisteredClient:
    await seed_bank(container)
    return await make_tpp_client(container)


async def sign_in_to_dashboard(http: httpx.AsyncClient, username: str) -> str:
    first = await http.get("/psu/consents")
    assert first.status_code == 303
    walk = first.headers["location"]
    walk_id = walk.rsplit("/", 1)[1]
    assert (await http.get(walk)).status_code == 200
    page = await http.post(
        f"/psu/walks/{walk_id}/sign-in",
        data={"username": username, "password": SANDBOX_PSU_PASSWORD},
    )
    done = await http.post(f"/psu/walks/{walk_id}/code", data={"code": sandbox_code(page.text)})
    assert done.status_code == 303 and done.headers["location"] == "/psu/consents"
    dashboard = await http.get("/psu/consents")
    assert dashboard.status_code == 200, dashboard.text
    return dashboard.text


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


async def test_a_customer_withdraws_a_consent_from_the_dashboard(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(client, tpp, PERMISSIONS)
    consent_id = created["Data"]["ConsentId"]
    tokens = await authorise(client, tpp, consent_id)
    psu = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await obie(client, "accounts", "GET", "/balances", psu)).status_code == 200

    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as browser:
        html = await sign_in_to_dashboard(browser, "ayesha.khan")
        assert consent_id in html and "Test TPP client" in html
        assert "Your account balances" in html
        refused = await browser.post(
            f"/psu/consents/{consent_id}/withdraw", data={"csrf_token": "0" * 64}
        )
        assert refused.status_code == 403
        done = await browser.post(
            f"/psu/consents/{consent_id}/withdraw", data={"csrf_token": csrf(html)}
        )
        assert done.status_code == 303
        after = (await browser.get(done.headers["location"])).text
        assert "Access withdrawn" in after and "Revoked" in after

    refused_read = await obie(client, "accounts", "GET", "/balances", psu)
    assert refused_read.status_code == 403
    await container.audit_integrity.chain_pending()
    async with container.transactions.read() as tx:
        page = await tx.audit.list_records(10, None, "consent.revoked", consent_id)
    (record,) = page.items
    assert record.actor.type == "psu" and record.payload["reason"] == "psu_withdrawn"


async def test_another_customer_cannot_withdraw_it(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(client, tpp, PERMISSIONS)
    consent_id = created["Data"]["ConsentId"]
    await authorise(client, tpp, consent_id)
    bilals = await create_account_consent(client, tpp, PERMISSIONS)
    await authorise(client, tpp, bilals["Data"]["ConsentId"], username="bilal.ahmed")
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as browser:
        html = await sign_in_to_dashboard(browser, "bilal.ahmed")
        assert consent_id not in html and bilals["Data"]["ConsentId"] in html
        answer = await browser.post(
            f"/psu/consents/{consent_id}/withdraw", data={"csrf_token": csrf(html)}
        )
        assert answer.status_code == 409
    check = await obie(
        client,
        "accounts",
        "GET",
        f"/account-access-consents/{consent_id}",
        await _setup_token(client, tpp),
    )
    assert check.json()["Data"]["Status"] == "Authorised"


async def _setup_token(client: httpx.AsyncClient, tpp: RegisteredClient) -> dict[str, str]:
    from tests.support.oauth import bearer

    return await bearer(client, tpp, scope="accounts")


async def test_a_walk_moves_only_in_the_browser_that_started_it(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(client, tpp, PERMISSIONS)
    walk, _verifier = await start_walk(client, tpp, created["Data"]["ConsentId"])
    walk_id = walk.location.rsplit("/", 1)[1]
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as stranger:
        page = await stranger.post(
            f"/psu/walks/{walk_id}/sign-in",
            data={"username": "ayesha.khan", "password": SANDBOX_PSU_PASSWORD},
        )
        assert page.status_code == 400
        assert "has ended" in page.text


async def test_the_pages_cannot_be_framed_or_cached(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(client, tpp, PERMISSIONS)
    walk, _verifier = await start_walk(client, tpp, created["Data"]["ConsentId"])
    page = await walk.get()
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline script for the CSP to allow


async def test_denying_sends_the_customer_back_with_access_denied(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(client, tpp, PERMISSIONS)
    walk, _verifier = await start_walk(client, tpp, created["Data"]["ConsentId"])
    walk_id = walk.location.rsplit("/", 1)[1]
    page = await walk.post(
        f"/psu/walks/{walk_id}/sign-in",
        {"username": "ayesha.khan", "password": SANDBOX_PSU_PASSWORD},
    )
    await walk.post(f"/psu/walks/{walk_id}/code", {"code": sandbox_code(page.text)})
    denied = await walk.post(f"/psu/walks/{walk_id}/decision", {"decision": "deny"})
    params = redirect_params(denied)
    assert params["error"] == "access_denied" and "code" not in params
    status = await obie(
        client,
        "accounts",
        "GET",
        f"/account-access-consents/{created['Data']['ConsentId']}",
        await _setup_token(client, tpp),
    )
    assert status.json()["Data"]["Status"] == "Rejected"


async def test_an_unregistered_redirect_uri_never_gets_a_redirect(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    created = await create_account_consent(client, tpp, PERMISSIONS)
    answer = await client.get(
        "/psu/authorize",
        params={
            "response_type": "code",
            "client_id": tpp.id,
            "redirect_uri": "https://attacker.example/cb",
            "scope": "accounts",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
            "consent_id": created["Data"]["ConsentId"],
        },
    )
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert LOOPBACK_REDIRECT not in answer.text


async def test_operators_see_the_consent_trail_in_the_console(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    from tests.api.console.test_console import sign_in
    from tests.support.operators import create_account

    created = await create_account_consent(client, tpp, PERMISSIONS)
    consent_id = created["Data"]["ConsentId"]
    await authorise(client, tpp, consent_id)
    await container.audit_integrity.chain_pending()
    operator = await create_account(container, "admin")
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as console:
        await sign_in(console, container, operator)
        page = await console.get("/console/audit", params={"target_id": consent_id})
    assert page.status_code == 200
    assert "consent.created" in page.text and "consent.authorised" in page.text
    assert "psu" in page.text  # who approved: the customer, not the TPP
    assert "ReadBalances" in page.text  # what was approved
