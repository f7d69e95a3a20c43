"""Access tokens from an external authorization server (a bank's Keycloak, say): found by
RFC 8414 / OpenID discovery, verified with the issuer's JWKS, and never granting more
than the client's partner roles allow."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from tests.support.oauth import (
    ACTOR,
    RegisteredClient,
    basic_auth,
    ec_key,
    fetch_token,
    hs256_jwt,
    introspect,
    make_client,
    post_form,
    public_jwks,
    unsigned_jwt,
)

from amanat.app import create_app
from amanat.auth.adapters.remote_jwks import RemoteJwks
from amanat.auth.errors import TokenRejected
from amanat.auth.ports import InvalidToken
from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import FrozenClock
from amanat.platform.settings import Settings

ISSUER = "https://idp.bank.example/realms/amanat"
AUDIENCE = "amanat-api"
CERTS = f"{ISSUER}/protocol/openid-connect/certs"


class IdentityProvider:
    """A stand-in for the bank's IdP, behind an httpx.MockTransport."""

    def __init__(self) -> None:
        self.key = ec_key("idp-key-1")
        self.discovery: dict[str, Any] | str = {"issuer": ISSUER, "jwks_uri": CERTS}
        self.requests: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        if url == f"{ISSUER}/.well-known/openid-configuration":
            if isinstance(self.discovery, str):
                return httpx.Response(200, text=self.discovery)
            return httpx.Response(200, json=self.discovery)
        if url == CERTS:
            return httpx.Response(200, json=public_jwks(self.key))
        return httpx.Response(404)

    def token(
        self,
        now: int,
        *,
        key: ECKey | None = None,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        key = key or self.key
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "service-account-1",
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(16),
            "scope": "payments:read",
        }
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        head = {"alg": "ES256", "kid": key.kid, "typ": "JWT", **(header or {})}
        return jwt.encode(head, body, key)


@pytest.fixture
def idp() -> IdentityProvider:
    return IdentityProvider()


def _external_settings(settings: Settings, **auth: Any) -> Settings:
    values = {"external_issuer": ISSUER, "external_audience": AUDIENCE, **auth}
    return settings.model_copy(update={"auth": settings.auth.model_copy(update=values)})


@pytest.fixture
async def external(
    settings: Settings, clock: FrozenClock, idp: IdentityProvider, container: Container
) -> AsyncIterator[Container]:
    """A container trusting the IdP, on the test database; ``container`` wipes that
    database once this one is closed."""
    http = httpx.AsyncClient(transport=httpx.MockTransport(idp.handler))
    built = build_container(_external_settings(settings), clock=clock, http=http)
    try:
        yield built
    finally:
        await built.close()  # closes the mocked HTTP client


@pytest.fixture
async def ext_http(external: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container=external)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def merchant(external: Container) -> RegisteredClient:
    return await make_client(external, name="IdP-registered merchant")


def _now(container: Container) -> int:
    return int(container.clock.now().timestamp())


async def _rejected(container: Container, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        await container.oauth.verify_access_token(token)
    return caught.value.reason


async def test_token_with_azp_verifies(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    token = idp.token(_now(external), azp=merchant.id, scope="payments:read balance:read")
    context = await external.oauth.verify_access_token(token)
    assert context.client_id == merchant.id
    assert context.partner_id == merchant.partner.id
    assert context.scopes == {"payments:read", "balance:read"}
    assert context.subject == "service-account-1"
    assert f"{ISSUER}/.well-known/openid-configuration" in idp.requests


async def test_token_with_client_id_verifies(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    token = idp.token(_now(external), client_id=merchant.id)
    assert (await external.oauth.verify_access_token(token)).client_id == merchant.id


async def test_scp_array_is_read_too(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    token = idp.token(
        _now(external), azp=merchant.id, drop=("scope",), scp=["payments:read", "accounts"]
    )
    assert (await external.oauth.verify_access_token(token)).scopes == {"payments:read"}


async def test_scopes_beyond_the_partner_roles_are_dropped(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    token = idp.token(
        _now(external),
        azp=merchant.id,
        scope="payments:read accounts payments fundsconfirmations * admin",
    )
    assert (await external.oauth.verify_access_token(token)).scopes == {"payments:read"}


async def test_scopes_beyond_the_client_registration_are_dropped(
    external: Container, idp: IdentityProvider
) -> None:
    narrow = await make_client(external, scopes=["balance:read"])
    token = idp.token(_now(external), azp=narrow.id, scope="balance:read payments:write")
    assert (await external.oauth.verify_access_token(token)).scopes == {"balance:read"}


async def test_unknown_kid_is_rejected(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    stranger = ec_key("idp-key-2")
    token = idp.token(_now(external), key=stranger, azp=merchant.id)
    await _rejected(external, token)


async def test_foreign_key_with_the_issuers_kid_is_rejected(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    impostor = ec_key("idp-key-1")
    await _rejected(external, idp.token(_now(external), key=impostor, azp=merchant.id))


@pytest.mark.parametrize(
    "iss",
    [
        "https://idp.bank.example/realms/other",
        "https://idp.bank.example/realms/amanat/",
        "https://evil.example/realms/amanat",
        "http://127.0.0.1:8000",
    ],
)
async def test_wrong_issuer_is_rejected(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient, iss: str
) -> None:
    await _rejected(external, idp.token(_now(external), azp=merchant.id, iss=iss))


@pytest.mark.parametrize("aud", ["someone-else", ["someone-else", "account"], None])
async def test_wrong_audience_is_rejected(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient, aud: Any
) -> None:
    if aud is None:
        token = idp.token(_now(external), azp=merchant.id, drop=("aud",))
    else:
        token = idp.token(_now(external), azp=merchant.id, aud=aud)
    await _rejected(external, token)


async def test_audience_list_containing_ours_is_accepted(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    token = idp.token(_now(external), azp=merchant.id, aud=["account", AUDIENCE])
    await external.oauth.verify_access_token(token)


async def test_missing_jti_is_rejected(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    await _rejected(external, idp.token(_now(external), azp=merchant.id, drop=("jti",)))


async def test_missing_exp_is_rejected(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    await _rejected(external, idp.token(_now(external), azp=merchant.id, drop=("exp",)))


async def test_expired_token_is_rejected(
    external: Container, clock: FrozenClock, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    token = idp.token(_now(external), azp=merchant.id)
    await external.oauth.verify_access_token(token)
    clock.advance(seconds=300 + 31)
    await _rejected(external, token)


async def test_unregistered_or_revoked_client_is_rejected(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    await _rejected(external, idp.token(_now(external), azp="client_01UNKNOWN"))
    await _rejected(external, idp.token(_now(external), drop=("scope",)))  # no client at all
    token = idp.token(_now(external), azp=merchant.id)
    await external.partners.revoke_client(ACTOR, merchant.id)
    await _rejected(external, token)


async def test_alg_none_and_hmac_are_rejected(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    now = _now(external)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "azp": merchant.id,
        "exp": now + 300,
        "jti": "forged",
        "scope": "payments:read",
    }
    await _rejected(external, unsigned_jwt({"alg": "none", "kid": idp.key.kid}, claims))
    secret = idp.key.as_pem(private=False)
    await _rejected(external, hs256_jwt({"kid": idp.key.kid}, claims, secret))


async def test_our_own_tokens_still_verify(
    external: Container, ext_http: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    token = (await fetch_token(ext_http, merchant, scope="payments:read"))["access_token"]
    assert (await external.oauth.verify_access_token(token)).scopes == {"payments:read"}


async def test_external_token_can_be_revoked(
    external: Container,
    ext_http: httpx.AsyncClient,
    idp: IdentityProvider,
    merchant: RegisteredClient,
) -> None:
    token = idp.token(_now(external), azp=merchant.id)
    body = (await introspect(ext_http, merchant, token)).json()
    assert body["active"] is True
    assert body["scope"] == "payments:read"
    assert merchant.secret is not None
    response = await post_form(
        ext_http, "/oauth/revoke", {"token": token}, basic_auth(merchant.id, merchant.secret)
    )
    assert response.status_code == 200
    assert await _rejected(external, token) == "revoked"


async def test_external_token_with_an_absurd_exp_does_not_break_revocation(
    external: Container,
    ext_http: httpx.AsyncClient,
    idp: IdentityProvider,
    merchant: RegisteredClient,
) -> None:
    token = idp.token(_now(external), azp=merchant.id, exp=10**15)
    assert merchant.secret is not None
    response = await post_form(
        ext_http, "/oauth/revoke", {"token": token}, basic_auth(merchant.id, merchant.secret)
    )
    assert response.status_code == 200, response.text
    assert await _rejected(external, token) == "revoked"


async def test_long_external_jti_can_be_revoked(
    external: Container,
    ext_http: httpx.AsyncClient,
    idp: IdentityProvider,
    merchant: RegisteredClient,
) -> None:
    token = idp.token(_now(external), azp=merchant.id, jti="j" * 200)
    await external.oauth.verify_access_token(token)
    assert merchant.secret is not None
    response = await post_form(
        ext_http, "/oauth/revoke", {"token": token}, basic_auth(merchant.id, merchant.secret)
    )
    assert response.status_code == 200, response.text
    assert await _rejected(external, token) == "revoked"


@pytest.mark.parametrize(
    "discovery",
    [
        {"issuer": "https://idp.bank.example/realms/other", "jwks_uri": CERTS},
        {"issuer": ISSUER},
        {"issuer": 42, "jwks_uri": CERTS},
        "this is not json",
        ["a", "list"],
    ],
)
async def test_bad_discovery_document_rejects_tokens(
    external: Container,
    idp: IdentityProvider,
    merchant: RegisteredClient,
    discovery: Any,
) -> None:
    idp.discovery = discovery
    await _rejected(external, idp.token(_now(external), azp=merchant.id))


async def test_configured_jwks_url_skips_discovery(
    settings: Settings, clock: FrozenClock, idp: IdentityProvider, container: Container
) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(idp.handler))
    built = build_container(
        _external_settings(settings, external_jwks_url=CERTS), clock=clock, http=http
    )
    try:
        merchant = await make_client(built)
        token = idp.token(_now(built), azp=merchant.id)
        await built.oauth.verify_access_token(token)
        assert idp.requests == [CERTS]
    finally:
        await built.close()


async def test_protected_route_accepts_an_external_token(
    external: Container, idp: IdentityProvider, merchant: RegisteredClient
) -> None:
    from fastapi import APIRouter, Depends

    from amanat.auth.service import AccessContext
    from amanat.auth.verification import require_scope

    router = APIRouter()

    @router.get("/v1/_test/balance")
    async def balance(access: AccessContext = Depends(require_scope("balance:read"))) -> Any:
        return {"client_id": access.client_id}

    app = create_app(container=external)
    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        good = idp.token(_now(external), azp=merchant.id, scope="balance:read")
        response = await http.get("/v1/_test/balance", headers={"Authorization": f"Bearer {good}"})
        assert response.status_code == 200, response.text
        # A scope the partner's roles do not allow never satisfies a route.
        tpp_scope = idp.token(_now(external), azp=merchant.id, scope="accounts")
        response = await http.get(
            "/v1/_test/balance", headers={"Authorization": f"Bearer {tpp_scope}"}
        )
        assert response.status_code == 403


# -- the remote JWKS cache ---------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Certs:
    def __init__(self, *keys: ECKey) -> None:
        self.document: dict[str, Any] = public_jwks(*keys)
        self.status = 200
        self.fetches = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(self.status, json=self.document)


@pytest.fixture
async def certs_http() -> AsyncIterator[tuple[Certs, httpx.AsyncClient]]:
    certs = Certs(ec_key("c1"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(certs.handler)) as http:
        yield certs, http


async def test_remote_jwks_is_cached_for_its_ttl(
    certs_http: tuple[Certs, httpx.AsyncClient],
) -> None:
    certs, http = certs_http
    clock = FakeMonotonic()
    jwks = RemoteJwks(CERTS, http, ttl=300, min_refetch=10, monotonic=clock)
    await jwks.keyset("c1")
    clock.now += 299
    await jwks.keyset("c1")
    assert certs.fetches == 1
    clock.now += 2
    await jwks.keyset("c1")
    assert certs.fetches == 2


async def test_unknown_kid_refetches_at_most_every_min_refetch(
    certs_http: tuple[Certs, httpx.AsyncClient],
) -> None:
    certs, http = certs_http
    clock = FakeMonotonic()
    jwks = RemoteJwks(CERTS, http, ttl=300, min_refetch=10, monotonic=clock)
    await jwks.keyset("c1")
    for _ in range(5):
        await jwks.keyset("garbage-kid")
    assert certs.fetches == 1
    clock.now += 11
    certs.document = public_jwks(ec_key("c1"), ec_key("c2"))
    keyset = await jwks.keyset("c2")
    assert certs.fetches == 2
    assert keyset.get_by_kid("c2") is not None


async def test_last_good_keys_survive_an_outage(
    certs_http: tuple[Certs, httpx.AsyncClient],
) -> None:
    certs, http = certs_http
    clock = FakeMonotonic()
    jwks = RemoteJwks(CERTS, http, ttl=300, min_refetch=10, monotonic=clock)
    first = await jwks.keyset("c1")
    certs.status = 503
    clock.now += 301
    assert await jwks.keyset("c1") is first
    assert certs.fetches == 2
    for _ in range(5):  # not retried on every request
        assert await jwks.keyset("c1") is first
    assert certs.fetches == 2
    clock.now += 10
    await jwks.keyset("c1")
    assert certs.fetches == 3
    certs.status = 200
    clock.now += 10
    await jwks.keyset("c1")
    assert certs.fetches == 4


async def test_unreachable_jwks_is_not_called_on_every_request(
    certs_http: tuple[Certs, httpx.AsyncClient],
) -> None:
    certs, http = certs_http
    certs.status = 500
    clock = FakeMonotonic()
    jwks = RemoteJwks(CERTS, http, ttl=300, min_refetch=10, monotonic=clock)
    for _ in range(3):
        with pytest.raises(InvalidToken):
            await jwks.keyset("c1")
    assert certs.fetches == 1
    certs.status = 200
    clock.now += 10
    await jwks.keyset("c1")
    assert certs.fetches == 2
