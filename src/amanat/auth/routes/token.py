"""``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect`` and the discovery documents.

OAuth clients expect RFC 6749 error bodies (``error``, ``error_description``); we send
those fields and, alongside them, the problem-document fields every other error carries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from amanat.auth.errors import OAuthError
from amanat.auth.ports import SigningKeyRing
from amanat.auth.routes.forms import client_credentials, read_form
from amanat.auth.service import ClientCredentials, OAuthService, TokenResult
from amanat.identity.access import SCOPE_DESCRIPTIONS
from amanat.platform.audit.domain import Actor
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.context import current_request_id
from amanat.platform.http.errors import problem_body
from amanat.platform.http.ratelimit import enforce, refuse_if_exhausted
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.services import find_service
from amanat.platform.ratelimit.limiter import RateLimiter

log = structlog.get_logger("amanat.oauth")
router = APIRouter(tags=["oauth"])

T = TypeVar("T")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _form_body(summary: str, example: dict[str, str]) -> dict[str, Any]:
    """The form schema with this endpoint's own example (client authentication goes in
    the `Authorization: Basic` header, or as `client_id`/`client_secret` fields)."""
    body: dict[str, Any] = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": _FORM_SCHEMA,
                "examples": {"example": {"summary": summary, "value": example}},
            }
        },
    }
    return {"requestBody": body}


_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "grant_type": {
            "type": "string",
            "enum": ["client_credentials", "authorization_code", "refresh_token"],
        },
        "scope": {"type": "string"},
        "code": {"type": "string"},
        "redirect_uri": {"type": "string"},
        "code_verifier": {"type": "string"},
        "refresh_token": {"type": "string"},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "client_assertion_type": {"type": "string"},
        "client_assertion": {"type": "string"},
        "token": {"type": "string"},
        "token_type_hint": {"type": "string"},
    },
}

_OAUTH_ERROR = {
    "description": "RFC 6749 error (`error`, `error_description`) with problem fields.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {"type": "string"},
                    "error_description": {"type": "string"},
                },
            }
        }
    },
}


def oauth_status(exc: OAuthError) -> int:
    """RFC 6749 §5.2: a failed client authentication is 401, every other error 400."""
    return 401 if exc.error == "invalid_client" else 400


def oauth_error_response(request: Request, exc: OAuthError) -> JsonResponse:
    headers = dict(NO_STORE)
    status = oauth_status(exc)
    if status == 401:
        # Every 401 needs a challenge (RFC 9110 §15.5.2), and the only HTTP scheme these
        # endpoints accept is Basic; a Bearer challenge would point at resource access.
        headers["WWW-Authenticate"] = 'Basic realm="amanat"'
    body = {
        "error": exc.error,
        "error_description": exc.description,
        # The problem `code` carries the `oauth_` prefix so that it names the page `type`
        # points at (`invalid_scope` alone is the operator API's role-scope problem).
        **problem_body(
            f"oauth_{exc.error}",
            status=status,
            detail=exc.description,
            instance=request.url.path,
        ),
    }
    log.info("oauth_error", error=exc.error, path=request.url.path)
    return JsonResponse(body, status_code=status, headers=headers)


async def _authenticated_call(
    request: Request, form: dict[str, str], work: Callable[[ClientCredentials], Awaitable[T]]
) -> T:
    """Run ``work`` with the request's client credentials, within the token rate limits.

    Volume is counted per (client id, source IP) and failed client authentications per
    (client id, source IP) and per source IP, so whoever guesses at a client's secret
    spends only their own address's budgets: the client itself, calling from elsewhere,
    is never refused for it, and invented client ids share their IP's failure budget.
    """
    limiter = find_service(request, RateLimiter)
    ip = client_ip(request) or "unknown"
    await refuse_if_exhausted(request, limiter, "token_failures_ip", ip)
    try:
        creds = client_credentials(request, form)
    except OAuthError as exc:
        await _count_failure(request, exc, None, ip)
        raise
    pair = f"{creds.client_id or ''}|{ip}"
    if creds.client_id:
        await refuse_if_exhausted(request, limiter, "token_failures", pair)
    await enforce(request, limiter, "token", pair)
    try:
        return await work(creds)
    except OAuthError as exc:
        await _count_failure(request, exc, creds.client_id, ip)
        raise


async def _count_failure(request: Request, exc: OAuthError, client: str | None, ip: str) -> None:
    if exc.error != "invalid_client":
        return
    limiter = find_service(request, RateLimiter)
    await limiter.hit("token_failures_ip", ip)
    if client:
        await limiter.hit("token_failures", f"{client}|{ip}")


@router.post(
    "/oauth/token",
    summary="Obtain an access token",
    openapi_extra=_form_body(
        "Client credentials for payouts (client authenticated with HTTP Basic)",
        {"grant_type": "client_credentials", "scope": "payments:read payments:write"},
    ),
    responses={
        200: {"description": "Token response (RFC 6749 §5.1)."},
        400: _OAUTH_ERROR,
        401: _OAUTH_ERROR,
    },
)
async def token(request: Request) -> Response:
    """The OAuth 2.0 token endpoint (RFC 6749). Grants: `client_credentials` (a merchant's
    server), `authorization_code` with PKCE S256 (a TPP acting for a customer) and
    `refresh_token`. Authenticate the client with HTTP Basic, `client_id`/`client_secret`
    form fields, or a `private_key_jwt` assertion; `scope` is space-separated (omit it for
    every scope the client may have). Send the `access_token` as `Authorization: Bearer`.

    Errors use RFC 6749 fields (`error`, `error_description`) plus the problem fields:
    `invalid_client` (401), `invalid_grant`, `invalid_scope`, `invalid_request`,
    `unsupported_grant_type` (400); `rate_limited` (429).
    """
    try:
        form = await read_form(request)

        async def issue(creds: ClientCredentials) -> TokenResult:
            return await find_service(request, OAuthService).token(
                form.get("grant_type"), form, creds
            )

        result = await _authenticated_call(request, form, issue)
    except OAuthError as exc:
        return oauth_error_response(request, exc)
    return JsonResponse(result.as_response(), headers=NO_STORE)


@router.post(
    "/oauth/revoke",
    summary="Revoke a token (RFC 7009)",
    openapi_extra=_form_body(
        "Revoke an access token (client authenticated with HTTP Basic)",
        {"token": "eyJhbGciOiJFUzI1NiIsImtpZCI6IjEifQ...", "token_type_hint": "access_token"},
    ),
    responses={
        200: {"description": "Revoked, or unknown (RFC 7009 §2.2)."},
        400: _OAUTH_ERROR,
        401: _OAUTH_ERROR,
    },
)
async def revoke(request: Request) -> Response:
    """Revokes an access or refresh token the authenticated client holds (RFC 7009); it
    stops working at once. Answers 200 with an empty body also for an unknown token, so it
    reveals nothing.

    Errors: `invalid_client` (401), `invalid_request` (400) without `token`.
    """
    try:
        form = await read_form(request)

        async def revoke_token(creds: ClientCredentials) -> None:
            presented = form.get("token")
            if not presented:
                raise OAuthError("invalid_request", "token is required.")
            actor = Actor(
                type="client",
                id=creds.client_id or "unknown",
                source_ip=client_ip(request),
                user_agent=request.headers.get("user-agent"),
                request_id=current_request_id(),
            )
            await find_service(request, OAuthService).revoke(
                presented, form.get("token_type_hint"), creds, actor
            )

        await _authenticated_call(request, form, revoke_token)
    except OAuthError as exc:
        return oauth_error_response(request, exc)
    return Response(status_code=200, headers=NO_STORE)


@router.post(
    "/oauth/introspect",
    summary="Introspect a token (RFC 7662)",
    openapi_extra=_form_body(
        "Is this token active? (client authenticated with HTTP Basic)",
        {"token": "eyJhbGciOiJFUzI1NiIsImtpZCI6IjEifQ..."},
    ),
    responses={
        200: {"description": "Introspection response."},
        400: _OAUTH_ERROR,
        401: _OAUTH_ERROR,
    },
)
async def introspect(request: Request) -> Response:
    """Says whether a token is active and, if so, its client, scopes and expiry (RFC
    7662). An expired, revoked, malformed or foreign token answers `{"active": false}`.

    Errors: `invalid_client` (401), `invalid_request` (400) without `token`.
    """
    try:
        form = await read_form(request)

        async def introspect_token(creds: ClientCredentials) -> dict[str, Any]:
            presented = form.get("token")
            if not presented:
                raise OAuthError("invalid_request", "token is required.")
            return await find_service(request, OAuthService).introspect(presented, creds)

        body = await _authenticated_call(request, form, introspect_token)
    except OAuthError as exc:
        return oauth_error_response(request, exc)
    return JsonResponse(body, headers=NO_STORE)


@router.get(
    "/.well-known/oauth-authorization-server", summary="Authorization server metadata (RFC 8414)"
)
async def metadata(request: Request) -> dict[str, Any]:
    """The authorization server's metadata (RFC 8414): endpoints, grant types, client
    authentication methods and scopes. Public, no authentication."""
    issuer = find_service(request, OAuthService).config.issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "PS256"],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "scopes_supported": sorted(SCOPE_DESCRIPTIONS),
        "authorization_response_iss_parameter_supported": True,
    }


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(request: Request) -> JsonResponse:
    """The public keys (JWK Set) that verify amanat's access tokens, the active key and
    those still verifying; cache for at most 60 seconds. Public, no authentication."""
    keys = await find_service(request, SigningKeyRing).public_jwks()
    return JsonResponse(keys, headers={"Cache-Control": "public, max-age=60"})
