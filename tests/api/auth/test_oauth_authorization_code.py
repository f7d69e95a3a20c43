"""The authorization-code grant with PKCE (RFC 6749 §4.1, RFC 7636, RFC 9207) through the
sandbox bank's page, and refresh-token rotation with reuse detection."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.support.oauth import (
    ACTOR,
    LOOPBACK_REDIRECT,
    RegisteredClient,
    audit_actions,
    authorize,
    decode_segment,
    exchange_code,
    fetch_token,
    introspect,
    make_client,
    make_tpp_client,
    obtain_code,
    pkce_pair,
    query_of,
    refresh,
    revoke,
    snapshot,
)

from amanat.auth.errors import TokenRejected
from amanat.bootstrap import Container
from amanat.identity.tables import partners
from amanat.kernel.clock import FrozenClock

OTHER_REDIRECT = "http://localhost:9999/other-callback"


def _oauth_error(response: httpx.Response, error: str, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert response.headers["cache-control"] == "no-store"
    return body


def _redirect_params(
    response: httpx.Response, redirect_uri: str = LOOPBACK_REDIRECT
) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    return query_of(location)


async def _rejected(container: Container, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        await container.oauth.verify_access_token(token)
    return caught.value.reason


@pytest.fixture
async def tpp(container: Container) -> RegisteredClient:
    return await make_tpp_client(container, redirect_uris=[LOOPBACK_REDIRECT, OTHER_REDIRECT])


async def _tokens(
    client: httpx.AsyncClient, tpp: RegisteredClient, scope: str = "accounts"
) -> dict[str, Any]:
    code, verifier = await obtain_code(client, tpp, scope=scope)
    response = await exchange_code(client, tpp, code, verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- the authorization endpoint ----------------------------------------------------------


async def test_authorize_page_is_shown(client: httpx.AsyncClient, tpp: RegisteredClient) -> None:
    _verifier, challenge = pkce_pair()
    response = await client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": tpp.id,
            "redirect_uri": LOOPBACK_REDIRECT,
            "scope": "accounts payments",
            "state": "xyz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert tpp.client.name in response.text
    assert "psu_ayesha" in response.text
    assert challenge in response.text
    assert 'name="decision" value="approve"' in response.text


async def test_authorize_page_escapes_parameters(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    _verifier, challenge = pkce_pair()
    evil = '"><script>alert(1)</script>'
    response = await client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": tpp.id,
            "redirect_uri": LOOPBACK_REDIRECT,
            "scope": f"accounts {evil}",
            "state": evil,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text


async def test_authorize_page_requires_s256(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    verifier, _challenge = pkce_pair()
    for method in ("plain", None):
        params = {
            "response_type": "code",
            "client_id": tpp.id,
            "redirect_uri": LOOPBACK_REDIRECT,
            "scope": "accounts",
            "state": "s1",
            "code_challenge": verifier,
        }
        if method:
            params["code_challenge_method"] = method
        response = await client.get("/oauth/authorize", params=params)
        redirected = _redirect_params(response)
        assert redirected["error"] == "invalid_request"
        assert redirected["state"] == "s1"
        assert redirected["iss"] == container.oauth.config.issuer


async def test_authorize_page_requires_response_type_code(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    _verifier, challenge = pkce_pair()
    response = await client.get(
        "/oauth/authorize",
        params={
            "response_type": "token",
            "client_id": tpp.id,
            "redirect_uri": LOOPBACK_REDIRECT,
            "state": "s2",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    params = _redirect_params(response)
    assert params["error"] == "unsupported_response_type"
    assert params["state"] == "s2"


async def test_approval_redirects_with_code_state_and_iss(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    _verifier, challenge = pkce_pair()
    response = await authorize(client, tpp, challenge=challenge, state="opaque-state-42")
    params = _redirect_params(response)
    assert len(params["code"]) >= 40
    assert params["state"] == "opaque-state-42"
    assert params["iss"] == container.oauth.config.issuer
    assert "error" not in params


async def test_decline_redirects_with_access_denied(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    _verifier, challenge = pkce_pair()
    before = await snapshot(container)
    response = await authorize(client, tpp, challenge=challenge, decision="deny", state="s3")
    params = _redirect_params(response)
    assert params["error"] == "access_denied"
    assert params["state"] == "s3"
    assert params["iss"] == container.oauth.config.issuer
    assert "code" not in params
    assert await snapshot(container) == before


async def test_unknown_psu_is_access_denied(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    _verifier, challenge = pkce_pair()
    before = await snapshot(container)
    response = await authorize(client, tpp, challenge=challenge, psu="psu_mallory")
    assert _redirect_params(response)["error"] == "access_denied"
    assert await snapshot(container) == before


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://attacker.example/callback",
        LOOPBACK_REDIRECT + "/extra",
        LOOPBACK_REDIRECT + "?x=1",
        "http://127.0.0.1:8766/callback",
        "",
    ],
)
async def test_unregistered_redirect_uri_is_never_redirected_to(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient, redirect_uri: str
) -> None:
    _verifier, challenge = pkce_pair()
    before = await snapshot(container)
    params = {
        "response_type": "code",
        "client_id": tpp.id,
        "redirect_uri": redirect_uri,
        "scope": "accounts",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    for response in (
        await client.get("/oauth/authorize", params=params),
        await authorize(client, tpp, challenge=challenge, redirect_uri=redirect_uri),
    ):
        assert response.status_code == 400, response.text
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await snapshot(container) == before


async def test_unknown_or_revoked_client_is_never_redirected_to(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    _verifier, challenge = pkce_pair()
    stranger = replace(tpp, client=replace(tpp.client, id="client_01NOSUCHCLIENT"))
    response = await authorize(client, stranger, challenge=challenge)
    assert response.status_code == 400
    assert "location" not in response.headers
    await container.partners.revoke_client(ACTOR, tpp.id)
    before = await snapshot(container)
    response = await authorize(client, tpp, challenge=challenge)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert await snapshot(container) == before


async def test_suspended_partner_is_never_redirected_to(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    await container.partners.set_partner_status(ACTOR, tpp.partner.id, "suspended")
    _verifier, challenge = pkce_pair()
    before = await snapshot(container)
    page = await client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": tpp.id,
            "redirect_uri": LOOPBACK_REDIRECT,
            "scope": "accounts",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert page.status_code == 400
    assert "location" not in page.headers
    approval = await authorize(client, tpp, challenge=challenge)
    assert approval.status_code == 400
    assert "location" not in approval.headers
    assert await snapshot(container) == before


async def test_approval_requires_response_type_code(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    _verifier, challenge = pkce_pair()
    before = await snapshot(container)
    response = await client.post(
        "/oauth/authorize",
        data={
            "response_type": "token",
            "client_id": tpp.id,
            "redirect_uri": LOOPBACK_REDIRECT,
            "scope": "accounts",
            "state": "s5",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "decision": "approve",
            "psu": "psu_ayesha",
        },
    )
    params = _redirect_params(response)
    assert params["error"] == "unsupported_response_type"
    assert "code" not in params
    assert await snapshot(container) == before


@pytest.mark.parametrize("consent_id", ["c" * 65, "consent id with spaces", "<script>"])
async def test_malformed_consent_id_is_refused(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient, consent_id: str
) -> None:
    _verifier, challenge = pkce_pair()
    before = await snapshot(container)
    response = await client.post(
        "/oauth/authorize",
        data={
            "response_type": "code",
            "client_id": tpp.id,
            "redirect_uri": LOOPBACK_REDIRECT,
            "scope": "accounts",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": consent_id,
            "decision": "approve",
            "psu": "psu_ayesha",
        },
    )
    assert _redirect_params(response)["error"] == "invalid_request"
    assert await snapshot(container) == before


async def test_consent_id_travels_into_the_tokens(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    # The bank's consent pages issue the code once the PSU approved (openbanking/); here
    # the OAuth server's part alone: the consent id rides the code into every token.
    verifier, challenge = pkce_pair()
    code = await container.oauth.issue_code(
        client_id=tpp.id,
        redirect_uri=LOOPBACK_REDIRECT,
        scope="accounts",
        code_challenge=challenge,
        code_challenge_method="S256",
        subject="bcu_0002",
        consent_id="cns_01J8Z3",
    )
    tokens = (await exchange_code(client, tpp, code, verifier)).json()
    context = await container.oauth.verify_access_token(tokens["access_token"])
    assert context.consent_id == "cns_01J8Z3"
    assert context.subject == "bcu_0002"
    refreshed = (await refresh(client, tpp, tokens["refresh_token"])).json()
    assert decode_segment(refreshed["access_token"], 1)["consent_id"] == "cns_01J8Z3"


async def test_the_plain_sandbox_page_never_decides_a_consent(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    _verifier, challenge = pkce_pair()
    before = await snapshot(container)
    response = await client.post(
        "/oauth/authorize",
        data={
            "response_type": "code",
            "client_id": tpp.id,
            "redirect_uri": LOOPBACK_REDIRECT,
            "scope": "accounts",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": "cns_01J8Z3",
            "decision": "approve",
            "psu": "psu_bilal",
        },
    )
    params = _redirect_params(response)
    assert params["error"] == "invalid_request"
    assert "code" not in params
    assert await snapshot(container) == before


async def test_client_id_with_a_nul_byte_is_unknown(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    _verifier, challenge = pkce_pair()
    stranger = replace(tpp, client=replace(tpp.client, id=tpp.id + "\x00"))
    response = await authorize(client, stranger, challenge=challenge)
    assert response.status_code == 400, response.text
    assert "location" not in response.headers


async def test_plain_method_is_refused_at_approval(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    verifier, _challenge = pkce_pair()
    before = await snapshot(container)
    response = await authorize(client, tpp, challenge=verifier, method="plain", state="s4")
    params = _redirect_params(response)
    assert params["error"] == "invalid_request"
    assert params["state"] == "s4"
    assert "code" not in params
    assert await snapshot(container) == before


async def test_missing_challenge_is_refused_at_approval(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    before = await snapshot(container)
    response = await authorize(client, tpp, challenge="")
    assert _redirect_params(response)["error"] == "invalid_request"
    assert await snapshot(container) == before


async def test_scope_outside_the_tpp_roles_is_refused(
    client: httpx.AsyncClient, container: Container
) -> None:
    aisp = await make_client(
        container, roles=("aisp",), redirect_uris=[LOOPBACK_REDIRECT], name="AISP only"
    )
    _verifier, challenge = pkce_pair()
    for scope in ("payments", "payments:read", "*"):
        response = await authorize(client, aisp, challenge=challenge, scope=scope)
        assert _redirect_params(response)["error"] == "invalid_scope"


async def test_merchant_cannot_obtain_psu_consent(
    client: httpx.AsyncClient, container: Container
) -> None:
    merchant = await make_client(container, redirect_uris=[LOOPBACK_REDIRECT])
    _verifier, challenge = pkce_pair()
    response = await authorize(client, merchant, challenge=challenge, scope="")
    assert _redirect_params(response)["error"] == "invalid_scope"


# -- the code exchange -------------------------------------------------------------------


async def test_exchange_with_the_right_verifier(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    code, verifier = await obtain_code(client, tpp, scope="accounts payments")
    response = await exchange_code(client, tpp, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "accounts payments"
    assert body["refresh_token"].startswith("rt_")
    claims = decode_segment(body["access_token"], 1)
    assert claims["sub"] == "psu_ayesha"
    assert claims["client_id"] == tpp.id
    context = await container.oauth.verify_access_token(body["access_token"])
    assert context.subject == "psu_ayesha"
    assert context.scopes == {"accounts", "payments"}


async def test_wrong_verifier(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    code, _verifier = await obtain_code(client, tpp)
    other_verifier, _ = pkce_pair()
    before = await snapshot(container)
    _oauth_error(await exchange_code(client, tpp, code, other_verifier), "invalid_grant")
    _oauth_error(await exchange_code(client, tpp, code, None), "invalid_grant")
    assert await snapshot(container) == before


async def test_challenge_sent_as_the_verifier_is_refused(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    verifier, challenge = pkce_pair()
    response = await authorize(client, tpp, challenge=challenge)
    code = _redirect_params(response)["code"]
    _oauth_error(await exchange_code(client, tpp, code, challenge), "invalid_grant")
    assert (await exchange_code(client, tpp, code, verifier)).status_code == 200


async def test_redirect_uri_mismatch(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    code, verifier = await obtain_code(client, tpp)
    before = await snapshot(container)
    response = await exchange_code(client, tpp, code, verifier, redirect_uri=OTHER_REDIRECT)
    _oauth_error(response, "invalid_grant")
    assert await snapshot(container) == before


async def test_code_and_redirect_uri_are_required(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    code, verifier = await obtain_code(client, tpp)
    _oauth_error(await exchange_code(client, tpp, "", verifier), "invalid_request")
    _oauth_error(
        await exchange_code(client, tpp, code, verifier, redirect_uri=""), "invalid_request"
    )


async def test_unknown_code(client: httpx.AsyncClient, tpp: RegisteredClient) -> None:
    verifier, _ = pkce_pair()
    _oauth_error(await exchange_code(client, tpp, "not-a-code", verifier), "invalid_grant")


async def test_code_issued_to_another_client(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    code, verifier = await obtain_code(client, tpp)
    thief = await make_tpp_client(container)
    before = await snapshot(container)
    _oauth_error(await exchange_code(client, thief, code, verifier), "invalid_grant")
    assert await snapshot(container) == before
    assert (await exchange_code(client, tpp, code, verifier)).status_code == 200


async def test_code_reuse_revokes_what_the_first_exchange_issued(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    code, verifier = await obtain_code(client, tpp)
    first = await exchange_code(client, tpp, code, verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    await container.oauth.verify_access_token(tokens["access_token"])

    _oauth_error(await exchange_code(client, tpp, code, verifier), "invalid_grant")

    assert await _rejected(container, tokens["access_token"]) == "revoked"
    _oauth_error(await refresh(client, tpp, tokens["refresh_token"]), "invalid_grant")
    rows = await audit_actions(container, "refresh_family.revoked")
    assert len(rows) == 1
    assert "authorization_code_reused" in rows[0]["payload"]


async def test_code_reuse_after_a_refresh_revokes_the_newest_tokens(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    code, verifier = await obtain_code(client, tpp)
    first = (await exchange_code(client, tpp, code, verifier)).json()
    second = (await refresh(client, tpp, first["refresh_token"])).json()
    _oauth_error(await exchange_code(client, tpp, code, verifier), "invalid_grant")
    await _rejected(container, second["access_token"])
    _oauth_error(await refresh(client, tpp, second["refresh_token"]), "invalid_grant")


async def test_code_expires_after_60_seconds(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, tpp: RegisteredClient
) -> None:
    code, verifier = await obtain_code(client, tpp)
    clock.advance(seconds=61)
    before = await snapshot(container)
    _oauth_error(await exchange_code(client, tpp, code, verifier), "invalid_grant")
    assert await snapshot(container) == before


async def test_code_is_good_just_before_60_seconds(
    client: httpx.AsyncClient, clock: FrozenClock, tpp: RegisteredClient
) -> None:
    code, verifier = await obtain_code(client, tpp)
    clock.advance(seconds=59)
    assert (await exchange_code(client, tpp, code, verifier)).status_code == 200


# -- refresh tokens ----------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    first = await _tokens(client, tpp)
    response = await refresh(client, tpp, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "accounts"
    context = await container.oauth.verify_access_token(second["access_token"])
    assert context.subject == "psu_ayesha"
    third = await refresh(client, tpp, second["refresh_token"])
    assert third.status_code == 200, third.text


async def test_refresh_token_reuse_revokes_the_whole_family(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    first = await _tokens(client, tpp)
    second = (await refresh(client, tpp, first["refresh_token"])).json()
    third = (await refresh(client, tpp, second["refresh_token"])).json()
    await container.oauth.verify_access_token(third["access_token"])

    _oauth_error(await refresh(client, tpp, first["refresh_token"]), "invalid_grant")

    # The newest refresh token and access token die with the family.
    _oauth_error(await refresh(client, tpp, third["refresh_token"]), "invalid_grant")
    assert await _rejected(container, third["access_token"]) == "revoked"
    assert await _rejected(container, second["access_token"]) == "revoked"
    rows = await audit_actions(container, "refresh_family.revoked")
    assert len(rows) == 1
    assert rows[0]["target_id"] == tpp.id
    assert "refresh_token_reused" in rows[0]["payload"]


async def test_refresh_family_of_another_grant_is_untouched(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    victim = await _tokens(client, tpp)
    bystander = await _tokens(client, tpp)
    (await refresh(client, tpp, victim["refresh_token"])).raise_for_status()
    _oauth_error(await refresh(client, tpp, victim["refresh_token"]), "invalid_grant")
    await container.oauth.verify_access_token(bystander["access_token"])
    assert (await refresh(client, tpp, bystander["refresh_token"])).status_code == 200


async def test_refresh_may_narrow_the_scope(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    first = await _tokens(client, tpp, scope="accounts payments")
    narrowed = await refresh(client, tpp, first["refresh_token"], scope="accounts")
    assert narrowed.status_code == 200, narrowed.text
    body = narrowed.json()
    assert body["scope"] == "accounts"
    context = await container.oauth.verify_access_token(body["access_token"])
    assert context.scopes == {"accounts"}
    # The narrowed refresh token cannot widen back.
    _oauth_error(
        await refresh(client, tpp, body["refresh_token"], scope="accounts payments"),
        "invalid_scope",
    )


@pytest.mark.parametrize("scope", ["accounts payments", "fundsconfirmations", "*", "balance:read"])
async def test_refresh_may_not_widen_the_scope(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient, scope: str
) -> None:
    first = await _tokens(client, tpp, scope="accounts")
    before = await snapshot(container)
    _oauth_error(await refresh(client, tpp, first["refresh_token"], scope=scope), "invalid_scope")
    assert await snapshot(container) == before
    # The refused request did not use the token up.
    assert (await refresh(client, tpp, first["refresh_token"])).status_code == 200


async def test_refresh_drops_scopes_the_partner_lost(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    tokens = await _tokens(client, tpp, scope="accounts payments")
    async with container.db.write() as conn:  # an operator removed the PISP role
        await conn.execute(
            sa.update(partners).where(partners.c.id == tpp.partner.id).values(roles=["aisp"])
        )
    response = await refresh(client, tpp, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "accounts"
    assert decode_segment(body["access_token"], 1)["scope"] == "accounts"
    async with container.db.write() as conn:  # and then the AISP role too
        await conn.execute(
            sa.update(partners).where(partners.c.id == tpp.partner.id).values(roles=["cbpii"])
        )
    before = await snapshot(container)
    _oauth_error(await refresh(client, tpp, body["refresh_token"]), "invalid_scope")
    assert await snapshot(container) == before


async def test_refresh_token_of_another_client(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    tokens = await _tokens(client, tpp)
    thief = await make_tpp_client(container)
    before = await snapshot(container)
    _oauth_error(await refresh(client, thief, tokens["refresh_token"]), "invalid_grant")
    assert await snapshot(container) == before
    assert (await refresh(client, tpp, tokens["refresh_token"])).status_code == 200


async def test_unknown_or_missing_refresh_token(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    _oauth_error(await refresh(client, tpp, "rt_nope"), "invalid_grant")
    _oauth_error(await refresh(client, tpp, ""), "invalid_request")


async def test_refresh_token_expires(
    client: httpx.AsyncClient, clock: FrozenClock, tpp: RegisteredClient
) -> None:
    tokens = await _tokens(client, tpp)
    clock.advance(days=90, seconds=1)
    _oauth_error(await refresh(client, tpp, tokens["refresh_token"]), "invalid_grant")


async def test_revoking_a_refresh_token_revokes_its_family(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    first = await _tokens(client, tpp)
    second = (await refresh(client, tpp, first["refresh_token"])).json()
    assert (await revoke(client, tpp, second["refresh_token"])).status_code == 200
    _oauth_error(await refresh(client, tpp, second["refresh_token"]), "invalid_grant")
    await _rejected(container, second["access_token"])
    assert (await introspect(client, tpp, second["access_token"])).json() == {"active": False}


async def test_another_client_cannot_revoke_a_refresh_token(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    tokens = await _tokens(client, tpp)
    other = await make_tpp_client(container)
    before = await snapshot(container)
    assert (await revoke(client, other, tokens["refresh_token"])).status_code == 200
    assert await snapshot(container) == before
    assert (await refresh(client, tpp, tokens["refresh_token"])).status_code == 200


async def test_client_credentials_never_returns_a_refresh_token(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    assert "refresh_token" not in await fetch_token(client, tpp)


# -- concurrency -------------------------------------------------------------------------


async def test_concurrent_exchanges_of_one_code(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    """Two racing exchanges: one wins, the other is a reuse and revokes what the first got."""
    code, verifier = await obtain_code(client, tpp)
    responses = await asyncio.gather(
        exchange_code(client, tpp, code, verifier), exchange_code(client, tpp, code, verifier)
    )
    assert sorted(r.status_code for r in responses) == [200, 400]
    winner = next(r for r in responses if r.status_code == 200).json()
    loser = next(r for r in responses if r.status_code == 400)
    _oauth_error(loser, "invalid_grant")
    assert await _rejected(container, winner["access_token"]) == "revoked"
    _oauth_error(await refresh(client, tpp, winner["refresh_token"]), "invalid_grant")


async def test_concurrent_refreshes_of_one_token(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    tokens = await _tokens(client, tpp)
    responses = await asyncio.gather(
        refresh(client, tpp, tokens["refresh_token"]),
        refresh(client, tpp, tokens["refresh_token"]),
    )
    assert sorted(r.status_code for r in responses) == [200, 400]
    winner = next(r for r in responses if r.status_code == 200).json()
    _oauth_error(next(r for r in responses if r.status_code == 400), "invalid_grant")
    assert await _rejected(container, winner["access_token"]) == "revoked"
    _oauth_error(await refresh(client, tpp, winner["refresh_token"]), "invalid_grant")
