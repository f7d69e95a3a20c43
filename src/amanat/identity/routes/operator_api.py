"""Operator API routes: login, partners and clients, operators, signing keys, audit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request, Response, Security
from pydantic import Field

from amanat.identity.access import SCOPE_DESCRIPTIONS, OperatorRole, PartnerRole, Permission
from amanat.identity.domain import (
    MAX_PARTNER_RATE_LIMIT,
    MAX_RATE_LIMIT_WINDOW_SECONDS,
    ClientAuthMethod,
    Mode,
    OAuthClient,
    Operator,
    Partner,
)
from amanat.identity.queries import IdentityQueries
from amanat.identity.services.operators import OperatorService, OperatorSession
from amanat.identity.services.partners import PartnerService
from amanat.identity.sessions import (
    SESSION_COOKIE,
    current_operator,
    operator_actor,
    require_permission,
    session_cookie,
)
from amanat.kernel.clock import Clock, format_timestamp, parse_timestamp
from amanat.platform.audit.queries import AuditQueries
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.openapi import declared_enum
from amanat.platform.http.pagination import CursorParam, LimitParam, decode_cursor, encode_cursor
from amanat.platform.http.ratelimit import enforce
from amanat.platform.http.schemas import ListResponse, RequestModel, ResponseModel
from amanat.platform.http.services import find_service
from amanat.platform.http.types import Amount
from amanat.platform.ratelimit.limiter import RateLimiter
from amanat.platform.settings import Settings

public = APIRouter(prefix="/operator/v1", tags=["operator"])
router = APIRouter(
    prefix="/operator/v1", tags=["operator"], dependencies=[Security(session_cookie)]
)

P = Permission


def _example(summary: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"example": {"summary": summary, "value": value}}


Scope = Annotated[str, Field(json_schema_extra=declared_enum(sorted(SCOPE_DESCRIPTIONS)))]


class RateLimitOut(ResponseModel):
    limit: int
    window_seconds: int


class PartnerOut(ResponseModel):
    id: str
    object: Literal["partner"]
    name: str
    roles: list[PartnerRole]
    mode: Mode
    status: Literal["active", "suspended"]
    allowed_scopes: list[Scope]
    rate_limits: dict[str, RateLimitOut] = Field(
        description="The partner's own quotas by policy; a policy not listed has the "
        "platform's (AMANAT_RATE_LIMITS__<POLICY>)."
    )
    created_at: str
    updated_at: str


class ClientOut(ResponseModel):
    id: str
    object: Literal["client"]
    partner_id: str
    name: str
    token_endpoint_auth_method: ClientAuthMethod
    scopes: list[Scope]
    redirect_uris: list[str]
    jwks_uri: str | None
    has_jwks: bool
    status: Literal["active", "revoked"]
    created_at: str
    secret_rotated_at: str | None


class ClientWithSecret(ClientOut):
    client_secret: str | None = Field(
        default=None,
        description="Shown only in this response; null for a private_key_jwt client.",
    )


class PartnerWithClients(PartnerOut):
    clients: list[ClientOut]


class OperatorOut(ResponseModel):
    id: str
    object: Literal["operator"]
    email: str
    name: str
    roles: list[OperatorRole]
    permissions: list[Permission]
    status: str = Field(description="`active`, or why the operator may not sign in.")
    created_at: str
    last_login_at: str | None


class NewOperatorOut(OperatorOut):
    totp_secret: str = Field(description="Shown only in this response.")
    totp_uri: str = Field(description="`otpauth://` URI for an authenticator app.")


class SessionOut(ResponseModel):
    operator: OperatorOut
    csrf_token: str = Field(description="Send as `X-CSRF-Token` on unsafe requests.")


class LoggedOut(ResponseModel):
    logged_out: Literal[True]


class LimitOut(ResponseModel):
    partner_id: str
    per_transaction_limit: int | None


class AuditActorOut(ResponseModel):
    type: str
    id: str
    source_ip: str | None
    user_agent: str | None
    request_id: str | None


class AuditRecordOut(ResponseModel):
    seq: int
    id: str
    occurred_at: str
    actor: AuditActorOut
    action: str
    target_type: str | None
    target_id: str | None
    payload: dict[str, Any]


def rate_limits_view(partner: Partner) -> dict[str, dict[str, int]]:
    """The partner's own quotas; a policy not listed has the platform's."""
    return {
        name: {"limit": limit, "window_seconds": window}
        for name, (limit, window) in sorted(partner.rate_limits.items())
    }


def partner_view(partner: Partner) -> dict[str, Any]:
    return {
        "id": partner.id,
        "object": "partner",
        "name": partner.name,
        "roles": sorted(r.value for r in partner.roles),
        "mode": partner.mode.value,
        "status": partner.status,
        "allowed_scopes": sorted(partner.allowed_scopes),
        "rate_limits": rate_limits_view(partner),
        "created_at": format_timestamp(partner.created_at),
        "updated_at": format_timestamp(partner.updated_at),
    }


def client_view(client: OAuthClient, secret: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": client.id,
        "object": "client",
        "partner_id": client.partner_id,
        "name": client.name,
        "token_endpoint_auth_method": client.auth_method.value,
        "scopes": sorted(client.allowed_scopes),
        "redirect_uris": list(client.redirect_uris),
        "jwks_uri": client.jwks_uri,
        "has_jwks": client.jwks is not None,
        "status": client.status,
        "created_at": format_timestamp(client.created_at),
        "secret_rotated_at": format_timestamp(client.secret_rotated_at)
        if client.secret_rotated_at
        else None,
    }
    if secret is not None:
        view["client_secret"] = secret
    return view


def operator_view(operator: Operator) -> dict[str, Any]:
    return {
        "id": operator.id,
        "object": "operator",
        "email": operator.email,
        "name": operator.name,
        "roles": sorted(r.value for r in operator.roles),
        "permissions": sorted(p.value for p in operator.permissions),
        "status": operator.status,
        "created_at": format_timestamp(operator.created_at),
        "last_login_at": format_timestamp(operator.last_login_at)
        if operator.last_login_at
        else None,
    }


class LoginBody(RequestModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str = Field(min_length=6, max_length=8)


@public.post(
    "/login",
    response_model=SessionOut,
    summary="Log in with password and TOTP; sets the session cookie",
    responses={
        401: {"description": "Wrong email, password or code."},
        423: {"description": "Locked after repeated failures."},
    },
)
async def login(
    body: Annotated[
        LoginBody,
        Body(
            openapi_examples=_example(
                "The seeded sandbox admin (password and code from `make run`'s output)",
                {
                    "email": "admin@sandbox.amanat.local",
                    "password": "sandbox-0123456789abcdef01",
                    "totp_code": "123456",
                },
            )
        ),
    ],
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Logs an operator in with email, password and the current TOTP code; sets the
    `amanat_session` cookie (HttpOnly, SameSite=Strict) and returns the `csrf_token` that
    unsafe requests must send as `X-CSRF-Token`.

    Errors: `login_failed` (401, the same for every wrong field), `account_locked` (423)
    after repeated failures, `rate_limited` (429).
    """
    rate_key = f"{client_ip(request)}|{body.email.strip().lower()}"
    await enforce(request, find_service(request, RateLimiter), "login", rate_key)
    result = await find_service(request, OperatorService).login(
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        source_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    secure = find_service(request, Settings).http.public_url.startswith("https://")
    response.set_cookie(
        SESSION_COOKIE,
        result.session_token,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
        max_age=int((result.expires_at - find_service(request, Clock).now()).total_seconds()),
    )
    return {"operator": operator_view(result.operator), "csrf_token": result.csrf_token}


@router.post("/logout", response_model=LoggedOut, summary="End the current session")
async def logout(
    request: Request,
    response: Response,
    session: Annotated[OperatorSession, Depends(current_operator)],
) -> dict[str, Any]:
    """Ends the current session and clears its cookie.

    Needs the session cookie and `X-CSRF-Token`. Errors: `unauthorized` (401), `csrf_failed`
    (403).
    """
    await find_service(request, OperatorService).logout(session, operator_actor(request, session))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"logged_out": True}


@router.get("/me", response_model=SessionOut, summary="The logged-in operator")
async def me(session: Annotated[OperatorSession, Depends(current_operator)]) -> dict[str, Any]:
    """The logged-in operator (roles and the permissions they grant) and the session's
    `csrf_token`. Errors: `unauthorized` (401) without a live session.
    """
    return {"operator": operator_view(session.operator), "csrf_token": session.session.csrf_token}


class PartnerBody(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[Literal["merchant", "aisp", "pisp", "cbpii"]] = Field(min_length=1)
    mode: Literal["sandbox", "production"] = "sandbox"


@router.post("/partners", status_code=201, response_model=PartnerOut, summary="Onboard a partner")
async def create_partner(
    body: Annotated[
        PartnerBody,
        Body(
            openapi_examples=_example(
                "A sandbox merchant",
                {"name": "Karachi Traders", "roles": ["merchant"], "mode": "sandbox"},
            )
        ),
    ],
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_WRITE))],
) -> dict[str, Any]:
    """Onboards a partner (a merchant, or a TPP with open-banking roles) in `sandbox` or
    `production` mode. Its OAuth clients are created with `POST .../clients`.

    Session cookie, `X-CSRF-Token` and permission `partners.write` (otherwise
    `unauthorized` 401, `csrf_failed` or `forbidden` 403). Errors: `validation_error` (422).
    """
    partner = await find_service(request, PartnerService).create_partner(
        operator_actor(request, session), name=body.name, roles=list(body.roles), mode=body.mode
    )
    return partner_view(partner)


@router.get(
    "/partners", response_model=ListResponse[PartnerOut], summary="List partners, newest first"
)
async def list_partners(
    request: Request,
    _session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_READ))],
    limit: LimitParam = 20,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    """Every partner, newest first, with roles, mode, status and allowed scopes.

    Session cookie and permission `partners.read`. Pages with `limit` and `cursor`.
    Errors: `invalid_cursor` (400).
    """
    after = decode_cursor(cursor, required_keys=frozenset({"t", "id"}))
    before = (parse_timestamp(str(after["t"])), str(after["id"])) if after else None
    page = await find_service(request, IdentityQueries).partners(limit, before)
    data = [partner_view(p) for p in page.items]
    last = page.items[-1] if page.items else None
    return {
        "object": "list",
        "data": data,
        "has_more": page.has_more,
        "next_cursor": encode_cursor({"t": last.created_at.isoformat(), "id": last.id})
        if page.has_more and last
        else None,
    }


@router.get(
    "/partners/{partner_id}",
    response_model=PartnerWithClients,
    summary="A partner with its clients",
)
async def get_partner(
    partner_id: str,
    request: Request,
    _session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_READ))],
) -> dict[str, Any]:
    """One partner and its OAuth clients (never their secrets).

    Session cookie and permission `partners.read`. Errors: `not_found` (404).
    """
    partner, clients = await find_service(request, IdentityQueries).partner_with_clients(partner_id)
    if partner is None:
        raise ApiProblem("not_found", f"No partner '{partner_id[:40]}'.")
    return partner_view(partner) | {"clients": [client_view(c) for c in clients]}


class PartnerStatusBody(RequestModel):
    status: Literal["active", "suspended"]


@router.post(
    "/partners/{partner_id}/status",
    response_model=PartnerOut,
    summary="Suspend or reactivate a partner",
)
async def set_partner_status(
    partner_id: str,
    body: Annotated[
        PartnerStatusBody,
        Body(openapi_examples=_example("Suspend a partner", {"status": "suspended"})),
    ],
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_SUSPEND))],
) -> dict[str, Any]:
    """Suspends a partner (its tokens stop working at once and it cannot get new ones) or
    reactivates it.

    Session cookie, `X-CSRF-Token` and permission `partners.suspend`. Errors: `not_found`
    (404).
    """
    partner = await find_service(request, PartnerService).set_partner_status(
        operator_actor(request, session), partner_id, body.status
    )
    return partner_view(partner)


class LimitBody(RequestModel):
    per_transaction_limit: Amount | None = Field(
        default=None, description="Minor units (paisa); null restores the platform default."
    )


@router.post(
    "/partners/{partner_id}/limits",
    response_model=LimitOut,
    summary="Set a partner's per-transaction limit",
)
async def set_limits(
    partner_id: str,
    body: Annotated[
        LimitBody,
        Body(
            openapi_examples=_example(
                "At most PKR 500,000.00 per payment", {"per_transaction_limit": 50_000_000}
            )
        ),
    ],
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_WRITE))],
) -> dict[str, Any]:
    """Sets the largest amount one payment of this partner may have (paisa); null
    restores the platform default. Payments above it get `limit_exceeded`.

    Session cookie, `X-CSRF-Token` and permission `partners.write`. Errors: `not_found`
    (404), `validation_error` (422).
    """
    await find_service(request, PartnerService).set_transaction_limit(
        operator_actor(request, session), partner_id, body.per_transaction_limit
    )
    return {"partner_id": partner_id, "per_transaction_limit": body.per_transaction_limit}


class RateLimitBody(RequestModel):
    policy: Literal["read", "write"] = Field(description="The rate-limit policy to set.")
    limit: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PARTNER_RATE_LIMIT,
        description="Requests per window for each of the partner's clients; null restores "
        "the platform's quota.",
    )
    window_seconds: int = Field(default=60, ge=1, le=MAX_RATE_LIMIT_WINDOW_SECONDS)


@router.post(
    "/partners/{partner_id}/rate_limits", summary="Set or clear a partner's own rate limit"
)
async def set_rate_limit(
    partner_id: str,
    body: Annotated[
        RateLimitBody,
        Body(
            openapi_examples=_example(
                "A payroll partner: 30,000 writes a minute",
                {"policy": "write", "limit": 30000, "window_seconds": 60},
            )
        ),
    ],
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_WRITE))],
) -> dict[str, Any]:
    """Gives one partner its own quota for a policy (`read` or `write`), for example a
    high-volume payroll partner; `limit: null` restores the platform's quota
    (`AMANAT_RATE_LIMITS__<POLICY>`). Takes effect on the partner's next request in every
    API process, and shows in its `RateLimit-Policy` headers. Audited as
    `partner.rate_limit_changed` with the quota before and after.

    Session cookie, `X-CSRF-Token` and permission `partners.write`. Errors: `not_found`
    (404), `validation_error` (422).
    """
    quota = None if body.limit is None else (body.limit, body.window_seconds)
    partner = await find_service(request, PartnerService).set_rate_limit(
        operator_actor(request, session), partner_id, body.policy, quota
    )
    return {"partner_id": partner_id, "rate_limits": rate_limits_view(partner)}


class ClientBody(RequestModel):
    name: str = Field(default="", max_length=200)
    token_endpoint_auth_method: Literal[
        "client_secret_basic", "client_secret_post", "private_key_jwt"
    ] = "client_secret_basic"
    scopes: list[str] = Field(default_factory=list, max_length=20)
    redirect_uris: list[str] = Field(default_factory=list, max_length=10)
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = Field(default=None, max_length=500)


@router.post(
    "/partners/{partner_id}/clients",
    status_code=201,
    response_model=ClientWithSecret,
    summary="Create an OAuth client; the secret is shown only in this response",
)
async def create_client(
    partner_id: str,
    body: Annotated[
        ClientBody,
        Body(
            openapi_examples=_example(
                "A merchant's server with a client secret",
                {
                    "name": "Checkout server",
                    "token_endpoint_auth_method": "client_secret_basic",
                    "scopes": ["payments:read", "payments:write"],
                },
            )
        ),
    ],
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.CLIENTS_WRITE))],
) -> dict[str, Any]:
    """Creates an OAuth client for the partner. With `client_secret_basic` or
    `client_secret_post` the response is the only place its `client_secret` is shown; with
    `private_key_jwt` give `jwks` or `jwks_uri`. `scopes` must be allowed for the partner's
    roles (empty: all of them).

    Session cookie, `X-CSRF-Token` and permission `clients.write`. Errors: `invalid_scope`,
    `invalid_redirect_uri`, `invalid_client_metadata` (422), `not_found` (404).
    """
    issued = await find_service(request, PartnerService).create_client(
        operator_actor(request, session),
        partner_id,
        name=body.name,
        auth_method=body.token_endpoint_auth_method,
        scopes=body.scopes,
        redirect_uris=body.redirect_uris,
        jwks=body.jwks,
        jwks_uri=body.jwks_uri,
    )
    return client_view(issued.client, issued.secret)


@router.post(
    "/clients/{client_id}/rotate_secret",
    response_model=ClientWithSecret,
    summary="Issue a new client secret; the old one stops working at once",
)
async def rotate_secret(
    client_id: str,
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.CLIENTS_WRITE))],
) -> dict[str, Any]:
    """Issues a new client secret, shown only in this response; the old one stops
    working at once, and tokens already issued keep working until they expire.

    Session cookie, `X-CSRF-Token` and permission `clients.write`. Errors: `not_found`
    (404), `conflict` (409) for a `private_key_jwt` client.
    """
    issued = await find_service(request, PartnerService).rotate_client_secret(
        operator_actor(request, session), client_id
    )
    return client_view(issued.client, issued.secret)


@router.post(
    "/clients/{client_id}/revoke",
    response_model=ClientOut,
    summary="Revoke a client; its tokens stop working at once",
)
async def revoke_client(
    client_id: str,
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.CLIENTS_WRITE))],
) -> dict[str, Any]:
    """Revokes the client: it can get no new tokens and its tokens stop working at once.

    Session cookie, `X-CSRF-Token` and permission `clients.write`. Errors: `not_found` (404).
    """
    client = await find_service(request, PartnerService).revoke_client(
        operator_actor(request, session), client_id
    )
    return client_view(client)


class OperatorBody(RequestModel):
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=6)
    password: str = Field(min_length=12, max_length=1024)


@router.post(
    "/operators",
    status_code=201,
    response_model=NewOperatorOut,
    summary="Create an operator; the TOTP secret is shown only in this response",
)
async def create_operator(
    body: Annotated[
        OperatorBody,
        Body(
            openapi_examples=_example(
                "An operations colleague",
                {
                    "email": "sana.iqbal@bank.example.pk",
                    "name": "Sana Iqbal",
                    "roles": ["operations"],
                    "password": "a long passphrase of words",
                },
            )
        ),
    ],
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.OPERATORS_WRITE))],
) -> dict[str, Any]:
    """Creates a console operator. The response is the only place the TOTP secret (and
    its `otpauth://` URI for an authenticator app) is shown.

    Session cookie, `X-CSRF-Token` and permission `operators.write`. Errors: `weak_password`
    (422, under 12 characters), `invalid_role` (422), `conflict` (409) for a taken email.
    """
    created = await find_service(request, OperatorService).create_operator(
        operator_actor(request, session),
        email=body.email,
        name=body.name,
        roles=body.roles,
        password=body.password,
    )
    return operator_view(created.operator) | {
        "totp_secret": created.totp_secret,
        "totp_uri": created.provisioning_uri,
    }


@router.get("/operators", response_model=ListResponse[OperatorOut], summary="List operators")
async def list_operators(
    request: Request,
    _session: Annotated[OperatorSession, Depends(require_permission(P.OPERATORS_READ))],
) -> dict[str, Any]:
    """Every operator with roles, permissions, status and last login.

    Session cookie and permission `operators.read`.
    """
    operators = await find_service(request, IdentityQueries).operators()
    return {
        "object": "list",
        "data": [operator_view(o) for o in operators],
        "has_more": False,
        "next_cursor": None,
    }


class RolesBody(RequestModel):
    roles: list[str] = Field(min_length=1, max_length=6)


@router.patch(
    "/operators/{operator_id}", response_model=OperatorOut, summary="Change an operator's roles"
)
async def set_roles(
    operator_id: str,
    body: Annotated[
        RolesBody,
        Body(openapi_examples=_example("Make an operator a support agent", {"roles": ["support"]})),
    ],
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.OPERATORS_WRITE))],
) -> dict[str, Any]:
    """Replaces an operator's roles; the permissions follow at their next request.

    Session cookie, `X-CSRF-Token` and permission `operators.write`. Errors: `invalid_role`
    (422), `not_found` (404).
    """
    operator = await find_service(request, OperatorService).set_roles(
        operator_actor(request, session), operator_id, body.roles
    )
    return operator_view(operator)


@router.get(
    "/audit", response_model=ListResponse[AuditRecordOut], summary="The audit trail, newest first"
)
async def audit_trail(
    request: Request,
    _session: Annotated[OperatorSession, Depends(require_permission(P.AUDIT_READ))],
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    action: str | None = None,
    target_id: str | None = None,
) -> dict[str, Any]:
    """The tamper-evident audit trail, newest first: who did what to which object, from
    where. Filter by `action` (e.g. `partner.created`) and `target_id`.

    Session cookie and permission `audit.read`. Pages with `limit` and `cursor`. Errors:
    `invalid_cursor` (400).
    """
    after = decode_cursor(cursor, required_keys=frozenset({"seq"}))
    before_seq = int(after["seq"]) if after else None
    page = await find_service(request, AuditQueries).records(limit, before_seq, action, target_id)
    data = [
        {
            "seq": r.seq,
            "id": r.id,
            "occurred_at": format_timestamp(r.occurred_at),
            "actor": {
                "type": r.actor.type,
                "id": r.actor.id,
                "source_ip": r.actor.source_ip,
                "user_agent": r.actor.user_agent,
                "request_id": r.actor.request_id,
            },
            "action": r.action,
            "target_type": r.target_type,
            "target_id": r.target_id,
            "payload": r.payload,
        }
        for r in page.items
    ]
    last = page.items[-1] if page.items else None
    return {
        "object": "list",
        "data": data,
        "has_more": page.has_more,
        "next_cursor": encode_cursor({"seq": last.seq}) if page.has_more and last else None,
    }
