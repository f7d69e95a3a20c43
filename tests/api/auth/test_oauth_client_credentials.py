"""The client_credentials grant, the access token it returns, and what a resource server
does with it: verification, revocation (RFC 7009), introspection (RFC 7662), and the
bearer challenge of a scope-protected route (RFC 6750)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI
from joserfc import jwt
from tests.support.oauth import (
    ACTOR,
    RegisteredClient,
    audit_actions,
    basic_auth,
    decode_segment,
    ec_key,
    fetch_token,
    forgeries,
    introspect,
    make_client,
    make_tpp_client,
    post_form,
    request_token,
    revoke,
    snapshot,
    unsigned_jwt,
)

from amanat.app import create_app
from amanat.auth.errors import TokenRejected
from amanat.auth.service import AccessContext
from amanat.auth.tables import revoked_tokens
from amanat.auth.verification import require_scope
from amanat.bootstrap import Container
from amanat.identity.access import OPT_IN_SCOPES, ROLE_SCOPES, PartnerRole
from amanat.identity.adapters.passwords import Argon2Hasher
from amanat.identity.tables import oauth_clients
from amanat.kernel.clock import FrozenClock

# What a merchant's client holds by default: everything but the opt-in scopes.
MERCHANT_SCOPES = " ".join(sorted(ROLE_SCOPES[PartnerRole.MERCHANT] - OPT_IN_SCOPES))


def _oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert body["error_description"]
    assert response.headers["cache-control"] == "no-store"
    return body


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    return await make_client(container, name="Chai Wala Online")


# -- client authentication ---------------------------------------------------------------


async def test_client_secret_basic(client: httpx.AsyncClient, merchant: RegisteredClient) -> None:
    response = await request_token(client, merchant, scope="payments:read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "payments:read"
    assert "refresh_token" not in body
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_client_secret_post(client: httpx.AsyncClient, merchant: RegisteredClient) -> None:
    response = await request_token(client, merchant, scope="balance:read", method="post")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "balance:read"
    assert response.headers["cache-control"] == "no-store"


async def test_wrong_secret_basic(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    before = await snapshot(container)
    response = await _with_a_wrong_secret(client, merchant)
    _oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert await snapshot(container) == before


async def _with_a_wrong_secret(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> httpx.Response:
    return await post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials"},
        basic_auth(merchant.id, "cs_not-the-secret"),
    )


async def test_wrong_secret_post(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    before = await snapshot(container)
    response = await post_form(
        client,
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": merchant.id,
            "client_secret": "cs_not-the-secret",
        },
    )
    _oauth_error(response, 401, "invalid_client")
    # A 401 needs a challenge; on the token endpoint it is Basic, never Bearer.
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert await snapshot(container) == before


async def test_unknown_client(client: httpx.AsyncClient, container: Container) -> None:
    before = await snapshot(container)
    response = await post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials"},
        basic_auth("client_01NOSUCHCLIENT", "cs_whatever"),
    )
    _oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert await snapshot(container) == before


async def test_secret_is_stored_as_a_sha256_digest(
    container: Container, merchant: RegisteredClient
) -> None:
    async with container.db.read() as conn:
        stored = (
            await conn.execute(
                sa.select(oauth_clients.c.secret_hash).where(oauth_clients.c.id == merchant.id)
            )
        ).scalar_one()
    assert stored.startswith("sha256$")
    assert merchant.secret and merchant.secret not in stored


async def test_a_secret_hashed_with_argon2_before_still_works(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    assert merchant.secret
    legacy = await Argon2Hasher().hash(merchant.secret)
    async with container.db.write() as conn:
        await conn.execute(
            oauth_clients.update()
            .where(oauth_clients.c.id == merchant.id)
            .values(secret_hash=legacy)
        )
    _oauth_error(await _with_a_wrong_secret(client, merchant), 401, "invalid_client")
    assert await _stored_secret_hash(container, merchant.id) == legacy, (
        "a wrong secret changes nothing"
    )

    assert (await request_token(client, merchant)).status_code == 200
    upgraded = await _stored_secret_hash(container, merchant.id)
    assert upgraded.startswith("sha256$"), "stored again in the current scheme once proven"
    assert (await request_token(client, merchant)).status_code == 200


async def test_a_rehash_never_overwrites_a_rotation_made_meanwhile(
    container: Container, merchant: RegisteredClient
) -> None:
    rotated = "sha256$" + "0" * 64
    async with container.db.write() as conn:
        await conn.execute(
            oauth_clients.update()
            .where(oauth_clients.c.id == merchant.id)
            .values(secret_hash=rotated)
        )
    async with container.transactions.write() as tx:
        assert not await tx.partners.rehash_client_secret(merchant.id, "$argon2id$old", "x")
    assert await _stored_secret_hash(container, merchant.id) == rotated


async def _stored_secret_hash(container: Container, client_id: str) -> str:
    async with container.db.read() as conn:
        stored: str = (
            await conn.execute(
                sa.select(oauth_clients.c.secret_hash).where(oauth_clients.c.id == client_id)
            )
        ).scalar_one()
    return stored


@pytest.mark.parametrize("client_id", ["client_\x00x", "\x00", "client_01\x00"])
async def test_client_id_with_a_nul_byte(
    client: httpx.AsyncClient, container: Container, client_id: str
) -> None:
    """PostgreSQL text cannot hold NUL; such an id is unknown, never a 500."""
    before = await snapshot(container)
    basic = await post_form(
        client, "/oauth/token", {"grant_type": "client_credentials"}, basic_auth(client_id, "x")
    )
    _oauth_error(basic, 401, "invalid_client")
    post = await post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"},
    )
    _oauth_error(post, 401, "invalid_client")
    assert await snapshot(container) == before


async def test_no_client_authentication(client: httpx.AsyncClient) -> None:
    response = await post_form(client, "/oauth/token", {"grant_type": "client_credentials"})
    _oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")


async def test_public_client_id_alone_is_not_authentication(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    response = await post_form(
        client, "/oauth/token", {"grant_type": "client_credentials", "client_id": merchant.id}
    )
    _oauth_error(response, 401, "invalid_client")


async def test_revoked_client(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    await container.partners.revoke_client(ACTOR, merchant.id)
    before = await snapshot(container)
    _oauth_error(await request_token(client, merchant), 401, "invalid_client")
    assert await snapshot(container) == before


async def test_suspended_partner(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    await container.partners.set_partner_status(ACTOR, merchant.partner.id, "suspended")
    before = await snapshot(container)
    _oauth_error(await request_token(client, merchant), 401, "invalid_client")
    assert await snapshot(container) == before


async def test_two_authentication_methods_at_once(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    assert merchant.secret is not None
    before = await snapshot(container)
    response = await post_form(
        client,
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": merchant.id,
            "client_secret": merchant.secret,
        },
        basic_auth(merchant.id, merchant.secret),
    )
    _oauth_error(response, 400, "invalid_request")
    assert await snapshot(container) == before


async def test_basic_with_a_different_client_id_in_the_form(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    other = await make_client(container, name="Other merchant")
    assert merchant.secret is not None
    response = await post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials", "client_id": other.id},
        basic_auth(merchant.id, merchant.secret),
    )
    _oauth_error(response, 400, "invalid_request")


async def test_bearer_scheme_on_the_token_endpoint(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    response = await post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials"},
        {"Authorization": "Bearer something"},
    )
    _oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")


async def test_malformed_basic_credentials(client: httpx.AsyncClient) -> None:
    response = await post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials"},
        {"Authorization": "Basic %%%not-base64"},
    )
    _oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")


async def test_repeated_parameter(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    assert merchant.secret is not None
    before = await snapshot(container)
    response = await client.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&scope=payments:read&scope=balance:read",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            **basic_auth(merchant.id, merchant.secret),
        },
    )
    _oauth_error(response, 400, "invalid_request")
    assert await snapshot(container) == before


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/json", b'{"grant_type": "client_credentials"}'),
        ("text/plain", b"grant_type=client_credentials"),
        ("multipart/form-data; boundary=x", b"--x\r\n--x--\r\n"),
    ],
)
async def test_non_form_content_type(
    client: httpx.AsyncClient,
    container: Container,
    merchant: RegisteredClient,
    content_type: str,
    content: bytes,
) -> None:
    assert merchant.secret is not None
    before = await snapshot(container)
    response = await client.post(
        "/oauth/token",
        content=content,
        headers={"content-type": content_type, **basic_auth(merchant.id, merchant.secret)},
    )
    _oauth_error(response, 400, "invalid_request")
    assert await snapshot(container) == before


async def test_missing_grant_type(client: httpx.AsyncClient, merchant: RegisteredClient) -> None:
    assert merchant.secret is not None
    response = await post_form(
        client, "/oauth/token", {"scope": "payments:read"}, basic_auth(merchant.id, merchant.secret)
    )
    _oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:x:custom", ""])
async def test_unsupported_grant_type(
    client: httpx.AsyncClient, merchant: RegisteredClient, grant_type: str
) -> None:
    response = await request_token(client, merchant, grant_type=grant_type)
    expected = "invalid_request" if grant_type == "" else "unsupported_grant_type"
    _oauth_error(response, 400, expected)


# -- scopes ------------------------------------------------------------------------------


async def test_scope_outside_the_partner_roles(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    before = await snapshot(container)
    _oauth_error(await request_token(client, merchant, scope="accounts"), 400, "invalid_scope")
    _oauth_error(
        await request_token(client, merchant, scope="payments:read accounts"),
        400,
        "invalid_scope",
    )
    assert await snapshot(container) == before


async def test_tpp_may_not_ask_for_merchant_scopes(
    client: httpx.AsyncClient, container: Container
) -> None:
    tpp = await make_tpp_client(container)
    _oauth_error(await request_token(client, tpp, scope="payments:write"), 400, "invalid_scope")


async def test_scope_outside_the_client_registration(
    client: httpx.AsyncClient, container: Container
) -> None:
    narrow = await make_client(container, scopes=["payments:read"])
    _oauth_error(await request_token(client, narrow, scope="payments:write"), 400, "invalid_scope")
    body = await fetch_token(client, narrow)
    assert body["scope"] == "payments:read"


@pytest.mark.parametrize("scope", ["payments:admin", "*", "payments:*", "all", "PAYMENTS:READ"])
async def test_unknown_or_wildcard_scope(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient, scope: str
) -> None:
    before = await snapshot(container)
    _oauth_error(await request_token(client, merchant, scope=scope), 400, "invalid_scope")
    assert await snapshot(container) == before


async def test_empty_scope_grants_the_clients_allowed_scopes(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    assert (await fetch_token(client, merchant))["scope"] == MERCHANT_SCOPES
    assert (await fetch_token(client, merchant, scope=""))["scope"] == MERCHANT_SCOPES
    narrow = await make_client(container, scopes=["balance:read", "events:read"])
    assert (await fetch_token(client, narrow))["scope"] == "balance:read events:read"


async def test_duplicate_scopes_are_granted_once(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    body = await fetch_token(client, merchant, scope="payments:read  payments:read balance:read")
    assert body["scope"] == "payments:read balance:read"


# -- the access token --------------------------------------------------------------------


async def test_access_token_header(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    header = decode_segment(token, 0)
    assert header["alg"] == "ES256"
    assert header["typ"] == "at+jwt"
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert all("d" not in k for k in jwks["keys"])


async def test_access_token_claims(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    body = await fetch_token(client, merchant, scope="payments:read payments:write")
    claims = decode_segment(body["access_token"], 1)
    config = container.oauth.config
    assert claims["iss"] == config.issuer
    assert claims["aud"] == config.audience
    assert claims["sub"] == merchant.id
    assert claims["client_id"] == merchant.id
    assert claims["scope"] == "payments:read payments:write"
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    assert claims["iat"] == int(container.clock.now().timestamp())
    assert claims["exp"] - claims["iat"] == 300
    other = decode_segment((await fetch_token(client, merchant))["access_token"], 1)
    assert other["jti"] != claims["jti"]


async def test_access_token_verifies(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant, scope="payments:read"))["access_token"]
    context = await container.oauth.verify_access_token(token)
    assert isinstance(context, AccessContext)
    assert context.client_id == merchant.id
    assert context.partner_id == merchant.partner.id
    assert context.scopes == frozenset({"payments:read"})


async def _rejected(container: Container, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        await container.oauth.verify_access_token(token)
    return caught.value.reason


async def test_alg_none_is_rejected(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    header, claims = decode_segment(token, 0), decode_segment(token, 1)
    for forged in (
        unsigned_jwt({**header, "alg": "none"}, claims),
        unsigned_jwt({"alg": "none", "typ": "at+jwt"}, claims),
        unsigned_jwt({**header, "alg": "none"}, claims, token.split(".")[2]),
    ):
        await _rejected(container, forged)


async def test_modified_payload_is_rejected(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant, scope="balance:read"))["access_token"]
    header, claims = decode_segment(token, 0), decode_segment(token, 1)
    signature = token.split(".")[2]
    forged = unsigned_jwt(header, {**claims, "scope": "balance:read payments:write"}, signature)
    await _rejected(container, forged)
    longer = unsigned_jwt(header, {**claims, "exp": claims["exp"] + 3600}, signature)
    await _rejected(container, longer)


async def test_unknown_kid_is_rejected(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    claims = decode_segment(token, 1)
    stranger = ec_key("20260101-deadbeef")
    forged = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": stranger.kid}, claims, stranger)
    assert await _rejected(container, forged) == "unknown_kid"


async def test_unrelated_key_with_a_known_kid_is_rejected(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    header, claims = decode_segment(token, 0), decode_segment(token, 1)
    stranger = ec_key(header["kid"])
    forged = jwt.encode(header, {**claims, "jti": "forged-jti-123456"}, stranger)
    await _rejected(container, forged)


async def test_other_algorithms_and_types_are_rejected(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    header, claims = decode_segment(token, 0), decode_segment(token, 1)
    signature = token.split(".")[2]
    await _rejected(container, unsigned_jwt({**header, "alg": "HS256"}, claims, signature))
    await _rejected(container, unsigned_jwt({**header, "typ": "JWT"}, claims, signature))
    await _rejected(
        container, unsigned_jwt({k: v for k, v in header.items() if k != "kid"}, claims)
    )


@pytest.mark.parametrize("crit", [None, 5, "exp", [None], [{}], ["b64"], {"a": 1}])
async def test_malformed_critical_header_is_rejected(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient, crit: object
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    header, claims = decode_segment(token, 0), decode_segment(token, 1)
    await _rejected(container, unsigned_jwt({**header, "crit": crit}, claims, token.split(".")[2]))


async def test_forged_headers_and_claims_never_crash_the_verifier(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    for forged in forgeries(token, 300):
        if forged == token:
            continue
        with pytest.raises(TokenRejected):
            await container.oauth.verify_access_token(forged)


@pytest.mark.parametrize(
    "garbage", ["", "abc", "a.b.c", "....", "eyJhbGciOiJub25lIn0.e30.", "x" * 9000]
)
async def test_garbage_is_rejected(container: Container, garbage: str) -> None:
    await _rejected(container, garbage)


async def test_token_rejected_after_expiry_and_leeway(
    client: httpx.AsyncClient,
    container: Container,
    clock: FrozenClock,
    merchant: RegisteredClient,
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    clock.advance(seconds=299)
    await container.oauth.verify_access_token(token)
    clock.advance(seconds=1 + 31)  # past exp and the 30 s leeway
    await _rejected(container, token)


async def test_token_of_a_revoked_client_or_suspended_partner_is_rejected(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    await container.partners.set_partner_status(ACTOR, merchant.partner.id, "suspended")
    assert await _rejected(container, token) == "client_inactive"
    await container.partners.set_partner_status(ACTOR, merchant.partner.id, "active")
    await container.oauth.verify_access_token(token)
    await container.partners.revoke_client(ACTOR, merchant.id)
    assert await _rejected(container, token) == "client_inactive"


async def test_metadata_document(client: httpx.AsyncClient, container: Container) -> None:
    body = (await client.get("/.well-known/oauth-authorization-server")).json()
    issuer = container.oauth.config.issuer
    assert body["issuer"] == issuer
    assert body["token_endpoint"] == container.oauth.config.token_endpoint
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert "*" not in body["scopes_supported"]


# -- revocation (RFC 7009) ---------------------------------------------------------------


async def test_client_revokes_its_own_access_token(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    jti = decode_segment(token, 1)["jti"]
    response = await revoke(client, merchant, token)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert await _rejected(container, token) == "revoked"
    rows = await audit_actions(container, "token.revoked")
    assert len(rows) == 1
    assert rows[0]["target_id"] == merchant.id
    assert rows[0]["actor_type"] == "client"
    assert rows[0]["actor_id"] == merchant.id
    assert jti in rows[0]["payload"]
    # Revoking twice is fine and audits nothing more.
    assert (await revoke(client, merchant, token)).status_code == 200
    assert len(await audit_actions(container, "token.revoked")) == 1


async def test_concurrent_revocations_of_one_token(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    responses = await asyncio.gather(*(revoke(client, merchant, token) for _ in range(3)))
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert await _rejected(container, token) == "revoked"


async def test_revoking_another_clients_token_does_nothing(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    other = await make_client(container, name="Other merchant")
    token = (await fetch_token(client, merchant))["access_token"]
    before = await snapshot(container)
    response = await revoke(client, other, token)
    assert response.status_code == 200, response.text
    assert await snapshot(container) == before
    await container.oauth.verify_access_token(token)


@pytest.mark.parametrize("token", ["not-a-token", "rt_unknown", "a.b.c"])
async def test_revoking_an_unknown_token_is_200(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient, token: str
) -> None:
    before = await snapshot(container)
    response = await revoke(client, merchant, token)
    assert response.status_code == 200, response.text
    assert await snapshot(container) == before


async def test_revocation_needs_client_authentication(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    before = await snapshot(container)
    response = await post_form(
        client, "/oauth/revoke", {"token": token}, basic_auth(merchant.id, "cs_wrong")
    )
    _oauth_error(response, 401, "invalid_client")
    assert await snapshot(container) == before
    await container.oauth.verify_access_token(token)


async def test_revocation_needs_a_token(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    assert merchant.secret is not None
    response = await post_form(
        client, "/oauth/revoke", {}, basic_auth(merchant.id, merchant.secret)
    )
    _oauth_error(response, 400, "invalid_request")


async def test_revoked_jti_is_stored_with_its_expiry(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    claims = decode_segment(token, 1)
    await revoke(client, merchant, token)
    async with container.db.read() as conn:
        row = (
            await conn.execute(
                sa.select(revoked_tokens).where(revoked_tokens.c.jti == claims["jti"])
            )
        ).one()
    assert row.client_id == merchant.id
    assert int(row.expires_at.timestamp()) == claims["exp"]


# -- introspection (RFC 7662) ------------------------------------------------------------


async def test_introspect_an_active_token(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant, scope="payments:read balance:read"))[
        "access_token"
    ]
    response = await introspect(client, merchant, token)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    claims = decode_segment(token, 1)
    assert body["active"] is True
    assert set(body["scope"].split()) == {"payments:read", "balance:read"}
    assert body["client_id"] == merchant.id
    assert body["exp"] == claims["exp"]
    assert body["jti"] == claims["jti"]
    assert body["token_type"] == "Bearer"


async def test_introspect_a_revoked_token(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    await revoke(client, merchant, token)
    assert (await introspect(client, merchant, token)).json() == {"active": False}


async def test_introspect_an_expired_token(
    client: httpx.AsyncClient, clock: FrozenClock, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    clock.advance(seconds=300 + 31)
    assert (await introspect(client, merchant, token)).json() == {"active": False}


@pytest.mark.parametrize("garbage", ["garbage", "rt_garbage", "a.b.c"])
async def test_introspect_garbage(
    client: httpx.AsyncClient, merchant: RegisteredClient, garbage: str
) -> None:
    response = await introspect(client, merchant, garbage)
    assert response.status_code == 200
    assert response.json() == {"active": False}


async def test_introspect_another_clients_token(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    other = await make_client(container, name="Other merchant")
    token = (await fetch_token(client, merchant))["access_token"]
    assert (await introspect(client, other, token)).json() == {"active": False}
    assert (await introspect(client, merchant, token)).json()["active"] is True


async def test_introspection_needs_client_authentication(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(client, merchant))["access_token"]
    response = await post_form(
        client, "/oauth/introspect", {"token": token}, basic_auth(merchant.id, "cs_wrong")
    )
    _oauth_error(response, 401, "invalid_client")
    assert "active" not in response.json()


# -- a scope-protected route (RFC 6750) --------------------------------------------------


def _protected_router() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/_test/payments")
    async def payments(
        access: AccessContext = Depends(require_scope("payments:read")),
    ) -> dict[str, Any]:
        return {"client_id": access.client_id, "scopes": sorted(access.scopes)}

    return router


@pytest.fixture
async def api(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(container=container)
    app.include_router(_protected_router())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _unauthorized(response: httpx.Response, *, with_error: bool = True) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "unauthorized"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is with_error


async def test_protected_route_with_a_valid_token(
    api: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(api, merchant, scope="payments:read"))["access_token"]
    response = await api.get("/v1/_test/payments", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json() == {"client_id": merchant.id, "scopes": ["payments:read"]}


async def test_protected_route_without_a_token(api: httpx.AsyncClient) -> None:
    _unauthorized(await api.get("/v1/_test/payments"), with_error=False)
    _unauthorized(
        await api.get("/v1/_test/payments", headers={"Authorization": "Basic abc"}),
        with_error=False,
    )


async def test_protected_route_with_an_expired_token(
    api: httpx.AsyncClient, clock: FrozenClock, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(api, merchant, scope="payments:read"))["access_token"]
    clock.advance(seconds=331)
    _unauthorized(await api.get("/v1/_test/payments", headers={"Authorization": f"Bearer {token}"}))


async def test_protected_route_with_a_revoked_token(
    api: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(api, merchant, scope="payments:read"))["access_token"]
    await revoke(api, merchant, token)
    _unauthorized(await api.get("/v1/_test/payments", headers={"Authorization": f"Bearer {token}"}))


async def test_protected_route_with_a_tampered_token(
    api: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(api, merchant, scope="balance:read"))["access_token"]
    header, claims = decode_segment(token, 0), decode_segment(token, 1)
    forged = unsigned_jwt(header, {**claims, "scope": "payments:read"}, token.split(".")[2])
    _unauthorized(
        await api.get("/v1/_test/payments", headers={"Authorization": f"Bearer {forged}"})
    )


async def test_protected_route_with_a_malformed_header(
    api: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(api, merchant, scope="payments:read"))["access_token"]
    header, claims = decode_segment(token, 0), decode_segment(token, 1)
    forged = unsigned_jwt({**header, "crit": None}, claims, token.split(".")[2])
    _unauthorized(
        await api.get("/v1/_test/payments", headers={"Authorization": f"Bearer {forged}"})
    )


async def test_protected_route_with_insufficient_scope(
    api: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(api, merchant, scope="balance:read"))["access_token"]
    response = await api.get("/v1/_test/payments", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "insufficient_scope"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="payments:read"' in challenge
