"""Dependencies every route declares: who is calling, with which scope, at what rate.

``require_scope("payments:write")`` verifies the bearer token, checks the scope, applies
the client's rate limit and records the scope in the OpenAPI document, so the published
contract and the enforcement cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes

from amanat.auth.errors import TokenRejected
from amanat.auth.service import AccessContext, OAuthService
from amanat.identity.access import SCOPE_DESCRIPTIONS
from amanat.platform.audit.domain import Actor
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.context import current_request_id
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.ratelimit import Policy, enforce
from amanat.platform.http.services import find_service
from amanat.platform.ratelimit.limiter import RateLimiter

log = structlog.get_logger("amanat.auth")

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/oauth/token", scopes=dict(SCOPE_DESCRIPTIONS)
        )
    ),
    scheme_name="oauth2",
    description="Client-credentials access tokens from `POST /oauth/token`.",
    auto_error=False,
)


def client_actor(request: Request, context: AccessContext) -> Actor:
    """The audit actor for a partner's API call."""
    return Actor(
        type="client",
        id=context.client_id,
        source_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        request_id=current_request_id(),
    )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _unauthorized(detail: str, error: str | None = "invalid_token") -> ApiProblem:
    challenge = 'Bearer realm="amanat"'
    if error:
        challenge += f', error="{error}", error_description="{detail}"'
    return ApiProblem("unauthorized", detail, status=401, headers={"WWW-Authenticate": challenge})


async def _authenticate(
    request: Request,
    security_scopes: SecurityScopes,
    _token: Any = Depends(oauth2_scheme),
) -> AccessContext:
    return await authenticate(request, security_scopes.scopes)


async def authenticate(request: Request, needed: list[str]) -> AccessContext:
    """The verified caller of ``request``, holding every scope in ``needed``."""
    token = _bearer(request)
    if token is None:
        raise _unauthorized("An access token is required.", error=None)
    try:
        context = await find_service(request, OAuthService).verify_access_token(token)
    except TokenRejected as exc:
        log.info("token_rejected", reason=exc.reason)
        raise _unauthorized("The access token is invalid, expired or revoked.") from None
    missing = [s for s in needed if s not in context.scopes]
    if missing:
        wanted = " ".join(needed)
        raise ApiProblem(
            "insufficient_scope",
            f"This endpoint requires the scope '{wanted}'.",
            status=403,
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="amanat", error="insufficient_scope", scope="{wanted}"'
                )
            },
        )
    request.state.access = context
    structlog.contextvars.bind_contextvars(client_id=context.client_id)
    return context


def _partner_quota(context: AccessContext, policy_name: str) -> Policy | None:
    """The partner's own quota for ``policy_name``, read with the token check (so an
    operator's change applies from the partner's next request, in every process)."""
    quotas = context.partner.rate_limits if context.partner else {}
    quota = quotas.get(policy_name)
    return Policy(policy_name, quota[0], quota[1]) if quota else None


async def within_limit(request: Request, context: AccessContext, policy: str) -> None:
    """Count the caller's request against its quota for ``policy`` (429 when spent)."""
    await enforce(
        request,
        find_service(request, RateLimiter),
        policy,
        context.client_id,
        override=_partner_quota(context, policy),
    )


async def authenticate_and_limit(request: Request, scope: str, policy: str) -> AccessContext:
    """What :func:`require_scope`'s dependency does, for a caller outside FastAPI's
    dependency injection (platform/http/lean_routes.py)."""
    context = await authenticate(request, [scope])
    await within_limit(request, context, policy)
    return context


def require_scope(scope: str, *, policy: str = "read") -> Callable[..., Awaitable[AccessContext]]:
    """A dependency: a verified caller holding ``scope``, within its rate limit."""

    async def dependency(
        request: Request,
        context: AccessContext = Security(_authenticate, scopes=[scope]),
    ) -> AccessContext:
        await within_limit(request, context, policy)
        return context

    # What the lean way in (platform/http/lean_routes.py) runs instead, the same parts.
    dependency.amanat_guard_for = dependency  # type: ignore[attr-defined]
    dependency.amanat_guard = authenticate_and_limit  # type: ignore[attr-defined]
    dependency.amanat_scope = scope  # type: ignore[attr-defined]
    dependency.amanat_policy = policy  # type: ignore[attr-defined]
    return dependency


# Scope dependencies used by more than one router.
PaymentsWrite = Annotated[AccessContext, Depends(require_scope("payments:write", policy="write"))]
PaymentsRead = Annotated[AccessContext, Depends(require_scope("payments:read"))]
