"""Every route declares its scope, and every scoped route enforces it.

Walks the published OpenAPI document: an operation without the oauth2 security
requirement must be on the short public list; every oauth2 operation must answer 401 to
no token, to an expired token and to a revoked one, and 403 insufficient_scope (with
WWW-Authenticate naming the scope) to a valid token that lacks its scope.
"""

from __future__ import annotations

from typing import Any

import httpx
from tests.support.oauth import fetch_token, make_client, make_tpp_client
from tests.support.openapi_walk import concrete_path, operations

from amanat.bootstrap import Container
from amanat.identity.access import SCOPE_DESCRIPTIONS
from amanat.kernel.clock import FrozenClock

PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/v1/banks"),
    ("get", "/v1/banks/{code}"),
    ("post", "/oauth/token"),
    ("post", "/oauth/revoke"),
    ("post", "/oauth/introspect"),
    ("get", "/.well-known/oauth-authorization-server"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/operator/v1/login"),
}
COOKIE = "operator_session"


def _scopes(op: dict[str, Any]) -> list[str] | None:
    for requirement in op.get("security", []):
        if "oauth2" in requirement:
            return list(requirement["oauth2"])
    return None


async def _call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    headers = headers | {"Idempotency-Key": "scope-walk"}
    if method in {"post", "put", "patch"}:
        return await client.request(method.upper(), concrete_path(path), json={}, headers=headers)
    return await client.request(method.upper(), concrete_path(path), headers=headers)


async def test_every_route_declares_its_scope_and_enforces_it(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    spec = (await client.get("/openapi.json")).json()
    walked = operations(spec)
    scoped = []
    for method, path, op in walked:
        scopes = _scopes(op)
        cookie = any(COOKIE in r for r in op.get("security", []))
        if scopes is None:
            assert (method, path) in PUBLIC or cookie, f"{method.upper()} {path} declares no scope"
            continue
        assert len(scopes) == 1 and scopes[0] in SCOPE_DESCRIPTIONS, (method, path, scopes)
        scoped.append((method, path, scopes[0]))
    assert len(scoped) >= 8, "the partner API's routes are scoped"

    merchant = await make_client(container, name="Walker")
    # A TPP client narrowed to account information holds none of the partner API's
    # scopes (TPP roles also allow payees:check, webhooks:manage and events:read).
    tpp = await make_tpp_client(container, scopes=["accounts"])
    tpp_token = (await fetch_token(client, tpp))["access_token"]
    revoked = (await fetch_token(client, merchant))["access_token"]
    await client.post(
        "/oauth/revoke", data={"token": revoked}, auth=(merchant.id, merchant.secret or "")
    )
    expiring = (await fetch_token(client, merchant))["access_token"]
    for method, path, scope in scoped:
        missing = await _call(client, method, path, {})
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.headers["www-authenticate"].startswith("Bearer")
        gone = await _call(client, method, path, {"Authorization": f"Bearer {revoked}"})
        assert gone.status_code == 401, (method, path)
        if scope in {"accounts", "payments", "fundsconfirmations"}:
            continue
        lacking = await _call(client, method, path, {"Authorization": f"Bearer {tpp_token}"})
        assert lacking.status_code == 403, (method, path, lacking.text)
        assert lacking.json()["code"] == "insufficient_scope"
        assert f'scope="{scope}"' in lacking.headers["www-authenticate"]
    clock.advance(seconds=container.settings.auth.access_token_ttl_seconds + 61)
    for method, path, _scope in scoped:
        expired = await _call(client, method, path, {"Authorization": f"Bearer {expiring}"})
        assert expired.status_code == 401, (method, path)
