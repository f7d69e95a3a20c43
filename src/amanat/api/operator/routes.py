"""Operator API routes: login, partners and clients, operators, signing keys, audit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.security import APIKeyCookie
from pydantic import Field

from amanat.api.deps import client_ip, container_of
from amanat.api.errors import ApiProblem
from amanat.api.operator.session import (
    SESSION_COOKIE,
    current_operator,
    operator_actor,
    require_permission,
)
from amanat.api.pagination import CursorParam, LimitParam, decode_cursor, encode_cursor
from amanat.api.ratelimit import enforce
from amanat.api.schemas import RequestModel
from amanat.api.types import Amount
from amanat.domain.access import Permission
from amanat.domain.clock import format_timestamp, parse_timestamp
from amanat.domain.identity import OAuthClient, Operator, Partner
from amanat.services.operators import OperatorSession

session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="operator_session",
    description="Console session cookie from `/operator/v1/login`; "
    "unsafe methods also need `X-CSRF-Token`.",
    auto_error=False,
)
public = APIRouter(prefix="/operator/v1", tags=["operator"])
router = APIRouter(
    prefix="/operator/v1", tags=["operator"], dependencies=[Security(session_cookie)]
)

P = Permission


def partner_view(partner: Partner) -> dict[str, Any]:
    return {
        "id": partner.id,
        "object": "partner",
        "name": partner.name,
        "roles": sorted(r.value for r in partner.roles),
        "mode": partner.mode.value,
        "status": partner.status,
        "allowed_scopes": sorted(partner.allowed_scopes),
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
    summary="Log in with password and TOTP; sets the session cookie",
    responses={
        401: {"description": "Wrong email, password or code."},
        423: {"description": "Locked after repeated failures."},
    },
)
async def login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
    container = container_of(request)
    rate_key = f"{client_ip(request)}|{body.email.strip().lower()}"
    await enforce(request, container.rate_limiter, "login", rate_key)
    result = await container.operators.login(
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        source_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    secure = container.settings.http.public_url.startswith("https://")
    response.set_cookie(
        SESSION_COOKIE,
        result.session_token,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
        max_age=int((result.expires_at - container.clock.now()).total_seconds()),
    )
    return {"operator": operator_view(result.operator), "csrf_token": result.csrf_token}


@router.post("/logout", summary="End the current session")
async def logout(
    request: Request,
    response: Response,
    session: Annotated[OperatorSession, Depends(current_operator)],
) -> dict[str, Any]:
    await container_of(request).operators.logout(session, operator_actor(request, session))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"logged_out": True}


@router.get("/me", summary="The logged-in operator")
async def me(session: Annotated[OperatorSession, Depends(current_operator)]) -> dict[str, Any]:
    return {"operator": operator_view(session.operator), "csrf_token": session.session.csrf_token}


class PartnerBody(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[Literal["merchant", "aisp", "pisp", "cbpii"]] = Field(min_length=1)
    mode: Literal["sandbox", "production"] = "sandbox"


@router.post("/partners", status_code=201, summary="Onboard a partner")
async def create_partner(
    body: PartnerBody,
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_WRITE))],
) -> dict[str, Any]:
    partner = await container_of(request).partners.create_partner(
        operator_actor(request, session), name=body.name, roles=list(body.roles), mode=body.mode
    )
    return partner_view(partner)


@router.get("/partners", summary="List partners, newest first")
async def list_partners(
    request: Request,
    _session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_READ))],
    limit: LimitParam = 20,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    after = decode_cursor(cursor, required_keys=frozenset({"t", "id"}))
    before = (parse_timestamp(str(after["t"])), str(after["id"])) if after else None
    async with container_of(request).transactions.read() as tx:
        page = await tx.partners.list_partners(limit, before)
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


@router.get("/partners/{partner_id}", summary="A partner with its clients")
async def get_partner(
    partner_id: str,
    request: Request,
    _session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_READ))],
) -> dict[str, Any]:
    async with container_of(request).transactions.read() as tx:
        partner = await tx.partners.get_partner(partner_id)
        if partner is None:
            raise ApiProblem("not_found", f"No partner '{partner_id[:40]}'.")
        clients = await tx.partners.list_clients(partner_id)
    return partner_view(partner) | {"clients": [client_view(c) for c in clients]}


class PartnerStatusBody(RequestModel):
    status: Literal["active", "suspended"]


@router.post("/partners/{partner_id}/status", summary="Suspend or reactivate a partner")
async def set_partner_status(
    partner_id: str,
    body: PartnerStatusBody,
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_SUSPEND))],
) -> dict[str, Any]:
    partner = await container_of(request).partners.set_partner_status(
        operator_actor(request, session), partner_id, body.status
    )
    return partner_view(partner)


class LimitBody(RequestModel):
    per_transaction_limit: Amount | None = Field(
        default=None, description="Minor units (paisa); null restores the platform default."
    )


@router.post("/partners/{partner_id}/limits", summary="Set a partner's per-transaction limit")
async def set_limits(
    partner_id: str,
    body: LimitBody,
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.PARTNERS_WRITE))],
) -> dict[str, Any]:
    await container_of(request).partners.set_transaction_limit(
        operator_actor(request, session), partner_id, body.per_transaction_limit
    )
    return {"partner_id": partner_id, "per_transaction_limit": body.per_transaction_limit}


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
    summary="Create an OAuth client; the secret is shown only in this response",
)
async def create_client(
    partner_id: str,
    body: ClientBody,
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.CLIENTS_WRITE))],
) -> dict[str, Any]:
    issued = await container_of(request).partners.create_client(
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
    summary="Issue a new client secret; the old one stops working at once",
)
async def rotate_secret(
    client_id: str,
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.CLIENTS_WRITE))],
) -> dict[str, Any]:
    issued = await container_of(request).partners.rotate_client_secret(
        operator_actor(request, session), client_id
    )
    return client_view(issued.client, issued.secret)


@router.post(
    "/clients/{client_id}/revoke", summary="Revoke a client; its tokens stop working at once"
)
async def revoke_client(
    client_id: str,
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.CLIENTS_WRITE))],
) -> dict[str, Any]:
    client = await container_of(request).partners.revoke_client(
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
    summary="Create an operator; the TOTP secret is shown only in this response",
)
async def create_operator(
    body: OperatorBody,
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.OPERATORS_WRITE))],
) -> dict[str, Any]:
    created = await container_of(request).operators.create_operator(
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


@router.get("/operators", summary="List operators")
async def list_operators(
    request: Request,
    _session: Annotated[OperatorSession, Depends(require_permission(P.OPERATORS_READ))],
) -> dict[str, Any]:
    async with container_of(request).transactions.read() as tx:
        operators = await tx.operators.list_operators()
    return {
        "object": "list",
        "data": [operator_view(o) for o in operators],
        "has_more": False,
        "next_cursor": None,
    }


class RolesBody(RequestModel):
    roles: list[str] = Field(min_length=1, max_length=6)


@router.patch("/operators/{operator_id}", summary="Change an operator's roles")
async def set_roles(
    operator_id: str,
    body: RolesBody,
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.OPERATORS_WRITE))],
) -> dict[str, Any]:
    operator = await container_of(request).operators.set_roles(
        operator_actor(request, session), operator_id, body.roles
    )
    return operator_view(operator)


@router.get("/signing_keys", summary="The token-signing key ring")
async def signing_keys(
    request: Request,
    _session: Annotated[OperatorSession, Depends(require_permission(P.KEYS_ROTATE))],
) -> dict[str, Any]:
    keys = await container_of(request).signing_keys.keys()
    return {
        "object": "list",
        "has_more": False,
        "next_cursor": None,
        "data": [
            {
                "kid": k.kid,
                "alg": k.alg,
                "status": k.status,
                "encrypted": k.encrypted,
                "created_at": format_timestamp(k.created_at),
                "retire_after": format_timestamp(k.retire_after) if k.retire_after else None,
            }
            for k in reversed(keys)
        ],
    }


@router.post("/signing_keys/rotate", summary="Rotate the token-signing key")
async def rotate_signing_key(
    request: Request,
    session: Annotated[OperatorSession, Depends(require_permission(P.KEYS_ROTATE))],
) -> dict[str, Any]:
    container = container_of(request)
    new_key, demoted = await container.signing_keys.rotate(operator_actor(request, session))
    await container.key_ring.refresh(force=True)
    return {"active": new_key.kid, "verifying": [k.kid for k in demoted]}


@router.get("/audit", summary="The audit trail, newest first")
async def audit_trail(
    request: Request,
    _session: Annotated[OperatorSession, Depends(require_permission(P.AUDIT_READ))],
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    action: str | None = None,
    target_id: str | None = None,
) -> dict[str, Any]:
    after = decode_cursor(cursor, required_keys=frozenset({"seq"}))
    before_seq = int(after["seq"]) if after else None
    async with container_of(request).transactions.read() as tx:
        page = await tx.audit.list_records(limit, before_seq, action, target_id)
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
