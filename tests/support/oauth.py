"""Helpers for OAuth tests: partners and clients, tokens, PKCE, client assertions, keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from amanat.auth.domain import Caller, SigningKey
from amanat.auth.tables import (
    authorization_codes,
    client_assertion_jtis,
    refresh_tokens,
    revoked_tokens,
)
from amanat.bootstrap import Container
from amanat.identity.domain import OAuthClient, Partner
from amanat.identity.tables import oauth_clients, partners
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.tables import audit_inbox, audit_log

ACTOR = Actor(type="cli", id="test")
TOKEN_URL = "/oauth/token"
LOOPBACK_REDIRECT = "http://127.0.0.1:8765/callback"
TPP_ROLES = ("aisp", "pisp", "cbpii")


@dataclass(frozen=True)
class RegisteredClient:
    partner: Partner
    client: OAuthClient
    secret: str | None

    @property
    def id(self) -> str:
        return self.client.id


async def ensure_signing_key(container: Container) -> SigningKey:
    return await container.signing_keys.ensure_active(ACTOR)


async def make_client(
    container: Container,
    *,
    roles: tuple[str, ...] = ("merchant",),
    name: str = "Test partner",
    auth_method: str = "client_secret_basic",
    scopes: list[str] | None = None,
    redirect_uris: list[str] | None = None,
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    mode: str = "sandbox",
) -> RegisteredClient:
    """A new partner with one client; also makes sure a signing key exists."""
    await ensure_signing_key(container)
    partner = await container.partners.create_partner(
        ACTOR, name=name, roles=list(roles), mode=mode
    )
    issued = await container.partners.create_client(
        ACTOR,
        partner.id,
        name=f"{name} client",
        auth_method=auth_method,
        scopes=scopes,
        redirect_uris=redirect_uris,
        jwks=jwks,
        jwks_uri=jwks_uri,
    )
    return RegisteredClient(partner=partner, client=issued.client, secret=issued.secret)


async def make_tpp_client(container: Container, **kwargs: Any) -> RegisteredClient:
    kwargs.setdefault("redirect_uris", [LOOPBACK_REDIRECT])
    return await make_client(container, roles=TPP_ROLES, name="Test TPP", **kwargs)


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def client_auth(
    registered: RegisteredClient, method: str = "basic"
) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, form fields) authenticating ``registered`` with a secret."""
    assert registered.secret is not None
    if method == "basic":
        return basic_auth(registered.id, registered.secret), {}
    return {}, {"client_id": registered.id, "client_secret": registered.secret}


async def post_form(
    http: httpx.AsyncClient,
    url: str,
    data: dict[str, str],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await http.post(url, data=data, headers=headers or {})


async def request_token(
    http: httpx.AsyncClient,
    registered: RegisteredClient,
    *,
    scope: str | None = None,
    method: str = "basic",
    grant_type: str = "client_credentials",
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    headers, form = client_auth(registered, method)
    form["grant_type"] = grant_type
    if scope is not None:
        form["scope"] = scope
    form.update(extra or {})
    return await post_form(http, TOKEN_URL, form, headers)


async def fetch_token(
    http: httpx.AsyncClient,
    registered: RegisteredClient,
    *,
    scope: str | None = None,
    method: str = "basic",
) -> dict[str, Any]:
    """A client_credentials token response body; fails the test unless it is a 200."""
    response = await request_token(http, registered, scope=scope, method=method)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def bearer(
    http: httpx.AsyncClient, registered: RegisteredClient, *, scope: str | None = None
) -> dict[str, str]:
    """The Authorization header of a fresh client_credentials token for ``registered``."""
    token = await fetch_token(http, registered, scope=scope)
    return {"Authorization": f"Bearer {token['access_token']}"}


async def funded_merchant(
    container: Container, name: str, balance: int = 10_000_000
) -> RegisteredClient:
    """A merchant client whose partner holds ``balance`` (minor units) to pay out from."""
    registered = await make_client(container, name=name)
    await container.payments.top_up(Caller(registered.partner.id, None, ACTOR), balance)
    return registered


async def revoke(
    http: httpx.AsyncClient, registered: RegisteredClient, token: str
) -> httpx.Response:
    headers, form = client_auth(registered)
    return await post_form(http, "/oauth/revoke", {**form, "token": token}, headers)


async def introspect(
    http: httpx.AsyncClient, registered: RegisteredClient, token: str
) -> httpx.Response:
    headers, form = client_auth(registered)
    return await post_form(http, "/oauth/introspect", {**form, "token": token}, headers)


# -- PKCE ------------------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def authorize(
    http: httpx.AsyncClient,
    registered: RegisteredClient,
    *,
    challenge: str,
    scope: str = "accounts",
    redirect_uri: str = LOOPBACK_REDIRECT,
    state: str = "st-123",
    decision: str = "approve",
    psu: str = "psu_ayesha",
    method: str = "S256",
) -> httpx.Response:
    """Approve (or decline) in the sandbox bank's page; the 303 redirect is returned."""
    return await http.post(
        "/oauth/authorize",
        data={
            "response_type": "code",
            "client_id": registered.id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": method,
            "decision": decision,
            "psu": psu,
        },
    )


async def obtain_code(
    http: httpx.AsyncClient, registered: RegisteredClient, *, scope: str = "accounts"
) -> tuple[str, str]:
    """(code, verifier) from an approved authorization request."""
    verifier, challenge = pkce_pair()
    response = await authorize(http, registered, challenge=challenge, scope=scope)
    assert response.status_code == 303, response.text
    params = query_of(response.headers["location"])
    assert "code" in params, params
    return params["code"], verifier


async def exchange_code(
    http: httpx.AsyncClient,
    registered: RegisteredClient,
    code: str,
    verifier: str | None,
    *,
    redirect_uri: str = LOOPBACK_REDIRECT,
) -> httpx.Response:
    headers, form = client_auth(registered)
    form.update({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})
    if verifier is not None:
        form["code_verifier"] = verifier
    return await post_form(http, TOKEN_URL, form, headers)


async def refresh(
    http: httpx.AsyncClient,
    registered: RegisteredClient,
    refresh_token: str,
    *,
    scope: str | None = None,
) -> httpx.Response:
    headers, form = client_auth(registered)
    form.update({"grant_type": "refresh_token", "refresh_token": refresh_token})
    if scope is not None:
        form["scope"] = scope
    return await post_form(http, TOKEN_URL, form, headers)


# -- keys and client assertions ----------------------------------------------------------


def ec_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256"}, private=True)


def public_jwks(*keys: ECKey) -> dict[str, Any]:
    return {"keys": [dict(k.as_dict(private=False)) for k in keys]}


def sign_assertion(
    key: ECKey | RSAKey,
    *,
    client_id: str,
    audience: str | list[str],
    now: int,
    lifetime: int = 120,
    jti: str | None = None,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """An RFC 7523 client assertion: iss = sub = client_id."""
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti or secrets.token_urlsafe(16),
    }
    body.update(claims or {})
    head = {"alg": "ES256", "kid": key.kid, "typ": "JWT"}
    head.update(header or {})
    return jwt.encode(head, body, key, algorithms=[head["alg"]])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    """A hand-made compact JWS (for alg=none and other forgeries)."""

    def part(value: dict[str, Any]) -> str:
        return _b64(json.dumps(value, separators=(",", ":")).encode())

    return f"{part(header)}.{part(claims)}.{signature}"


def hs256_jwt(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HMAC-signed JWT made by hand (joserfc rightly refuses asymmetric keys as secrets)."""
    unsigned = unsigned_jwt({**header, "alg": "HS256"}, claims)[:-1]
    mac = hmac.new(secret, unsigned.encode("ascii"), hashlib.sha256).digest()
    return f"{unsigned}.{_b64(mac)}"


def decode_segment(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    value: dict[str, Any] = json.loads(raw)
    return value


def assertion_form(client_id: str | None, assertion: str) -> dict[str, str]:
    form = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    if client_id is not None:
        form["client_id"] = client_id
    return form


# -- audit -----------------------------------------------------------------------------


async def audit_actions(container: Container, action: str) -> list[dict[str, Any]]:
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq)
            )
        ).all()
    return [dict(r._mapping) for r in rows]


STATE_TABLES = (
    partners,
    oauth_clients,
    revoked_tokens,
    authorization_codes,
    refresh_tokens,
    client_assertion_jtis,
    audit_log,
    audit_inbox,
)


async def snapshot(container: Container) -> dict[str, list[str]]:
    """Every row of the OAuth state tables, to assert that a refused request changed nothing."""
    state: dict[str, list[str]] = {}
    async with container.db.read() as conn:
        for table in STATE_TABLES:
            rows = (await conn.execute(sa.select(table))).all()
            state[table.name] = sorted(repr(tuple(r)) for r in rows)
    return state


# -- generated forgeries -------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
HEADER_NAMES = ("alg", "kid", "typ", "crit", "b64", "jwk", "x5c", "zip", "cty")
CLAIM_NAMES = ("iss", "aud", "sub", "exp", "nbf", "iat", "jti", "client_id", "azp", "scope", "scp")


def examples(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` values drawn deterministically from a Hypothesis strategy, for async tests
    (which cannot be decorated with @given)."""
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


def forgeries(token: str, count: int) -> list[str]:
    """Variants of ``token`` with arbitrary JSON in its header and claims, keeping its
    signature: every one must be refused cleanly, never crash the verifier."""
    header, claims = decode_segment(token, 0), decode_segment(token, 1)
    signature = token.split(".")[2]
    edits = st.tuples(
        st.dictionaries(st.sampled_from(HEADER_NAMES), _JSON, max_size=4),
        st.dictionaries(st.sampled_from(CLAIM_NAMES), _JSON, max_size=5),
    )
    return [
        unsigned_jwt({**header, **h}, {**claims, **c}, signature) for h, c in examples(edits, count)
    ]


def tpp_key_jwks() -> dict[str, Any]:
    """The public JWKS of the test TPP's signing key (tests/support/open_banking.py)."""
    from tests.support.open_banking import tpp_key

    return {"keys": [tpp_key().as_dict(private=False)]}
