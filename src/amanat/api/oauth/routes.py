"""``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect`` and the discovery documents.

OAuth clients expect RFC 6749 error bodies (``error``, ``error_description``); we send
those fields and, alongside them, the problem-document fields every other error carries.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from amanat.api.context import current_request_id
from amanat.api.deps import client_ip, container_of
from amanat.api.errors import problem_body
from amanat.api.oauth.forms import client_credentials, read_form
from amanat.api.ratelimit import enforce
from amanat.api.responses import JsonResponse
from amanat.domain.access import SCOPE_DESCRIPTIONS
from amanat.domain.audit import Actor
from amanat.services.oauth import OAuthError

log = structlog.get_logger("amanat.oauth")
router = APIRouter(tags=["oauth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
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
            }
        },
    }
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


def oauth_error_response(request: Request, exc: OAuthError) -> JsonResponse:
    headers = dict(NO_STORE)
    if exc.status == 401:
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
            status=exc.status,
            detail=exc.description,
            instance=request.url.path,
        ),
    }
    log.info("oauth_error", error=exc.error, path=request.url.path)
    return JsonResponse(body, status_code=exc.status, headers=headers)


def _rate_key(request: Request, form: dict[str, str]) -> str:
    return form.get("client_id") or client_ip(request) or "unknown"


@router.post(
    "/oauth/token",
    summary="Obtain an access token",
    openapi_extra=_FORM_BODY,
    responses={
        200: {"description": "Token response (RFC 6749 §5.1)."},
        400: _OAUTH_ERROR,
        401: _OAUTH_ERROR,
    },
)
async def token(request: Request) -> Response:
    container = container_of(request)
    try:
        form = await read_form(request)
        await enforce(request, container.rate_limiter, "token", _rate_key(request, form))
        creds = client_credentials(request, form)
        result = await container.oauth.token(form.get("grant_type"), form, creds)
    except OAuthError as exc:
        return oauth_error_response(request, exc)
    return JsonResponse(result.as_response(), headers=NO_STORE)


@router.post(
    "/oauth/revoke",
    summary="Revoke a token (RFC 7009)",
    openapi_extra=_FORM_BODY,
    responses={
        200: {"description": "Revoked, or unknown (RFC 7009 §2.2)."},
        400: _OAUTH_ERROR,
        401: _OAUTH_ERROR,
    },
)
async def revoke(request: Request) -> Response:
    container = container_of(request)
    try:
        form = await read_form(request)
        await enforce(request, container.rate_limiter, "token", _rate_key(request, form))
        presented = form.get("token")
        if not presented:
            raise OAuthError("invalid_request", "token is required.")
        creds = client_credentials(request, form)
        actor = Actor(
            type="client",
            id=creds.client_id or "unknown",
            source_ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            request_id=current_request_id(),
        )
        await container.oauth.revoke(presented, form.get("token_type_hint"), creds, actor)
    except OAuthError as exc:
        return oauth_error_response(request, exc)
    return Response(status_code=200, headers=NO_STORE)


@router.post(
    "/oauth/introspect",
    summary="Introspect a token (RFC 7662)",
    openapi_extra=_FORM_BODY,
    responses={
        200: {"description": "Introspection response."},
        400: _OAUTH_ERROR,
        401: _OAUTH_ERROR,
    },
)
async def introspect(request: Request) -> Response:
    container = container_of(request)
    try:
        form = await read_form(request)
        await enforce(request, container.rate_limiter, "token", _rate_key(request, form))
        presented = form.get("token")
        if not presented:
            raise OAuthError("invalid_request", "token is required.")
        body = await container.oauth.introspect(presented, client_credentials(request, form))
    except OAuthError as exc:
        return oauth_error_response(request, exc)
    return JsonResponse(body, headers=NO_STORE)


@router.get(
    "/.well-known/oauth-authorization-server", summary="Authorization server metadata (RFC 8414)"
)
async def metadata(request: Request) -> dict[str, Any]:
    issuer = container_of(request).oauth.config.issuer
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
    keys = await container_of(request).key_ring.public_jwks()
    return JsonResponse(keys, headers={"Cache-Control": "public, max-age=60"})
