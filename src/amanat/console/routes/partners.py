"""Partners and their clients: onboarding, suspension, rate limits, credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from amanat.console.routes.common import (
    MAX_CURSOR,
    PARTNERS_PAGE_SIZE,
    P,
    Session,
    console_router,
    render,
    require,
    see_other,
    text_field,
    text_fields,
)
from amanat.identity.access import OPT_IN_SCOPES, PartnerRole
from amanat.identity.domain import ClientAuthMethod, Mode
from amanat.identity.queries import IdentityQueries
from amanat.identity.services.operators import OperatorSession
from amanat.identity.services.partners import IssuedClient, PartnerService
from amanat.identity.sessions import operator_actor
from amanat.kernel.clock import parse_timestamp
from amanat.kernel.errors import DomainError
from amanat.platform.http.errors import ApiProblem, domain_error_status
from amanat.platform.http.pagination import decode_cursor, encode_cursor
from amanat.platform.http.ratelimit import PARTNER_POLICIES, parse_policy
from amanat.platform.http.services import find_service
from amanat.platform.ratelimit.limiter import RateLimiter

router = console_router()


async def _partners_page(
    request: Request,
    session: OperatorSession,
    cursor: str | None,
    *,
    status: int = 200,
    form_error: str | None = None,
    form_values: Mapping[str, Any] | None = None,
) -> Response:
    if cursor is not None and len(cursor) > MAX_CURSOR:
        raise ApiProblem("invalid_cursor")
    after = decode_cursor(cursor, required_keys=frozenset({"t", "id"}))
    try:
        before = (parse_timestamp(str(after["t"])), str(after["id"])) if after else None
    except ValueError:
        raise ApiProblem("invalid_cursor") from None
    page = await find_service(request, IdentityQueries).partners(PARTNERS_PAGE_SIZE, before)
    last = page.items[-1] if page.items else None
    next_cursor = (
        encode_cursor({"t": last.created_at.isoformat(), "id": last.id})
        if page.has_more and last
        else None
    )
    return render(
        request,
        "console/partners.html",
        status=status,
        partners=page.items,
        next_cursor=next_cursor,
        first_page=cursor is None,
        partner_roles=[r.value for r in PartnerRole],
        modes=[m.value for m in Mode],
        form_error=form_error,
        form=dict(form_values or {"name": "", "roles": [], "mode": Mode.SANDBOX.value}),
    )


@router.get("/partners")
async def partners(request: Request, session: Session, cursor: str | None = None) -> Response:
    require(session, P.PARTNERS_READ)
    return await _partners_page(request, session, cursor or None)


@router.post("/partners")
async def create_partner(request: Request, session: Session) -> Response:
    require(session, P.PARTNERS_WRITE)
    form = await request.form()
    name = text_field(form, "name")
    roles = text_fields(form, "roles")
    mode = text_field(form, "mode") or Mode.SANDBOX.value
    values = {"name": name[:200], "roles": roles, "mode": mode}
    error: str | None = None
    status = 422
    if not name or len(name) > 200:
        error = "Give the partner a name of at most 200 characters."
    elif not roles:
        error = "Choose at least one role."
    elif mode not in {m.value for m in Mode}:
        error = "Mode must be sandbox or production."
    else:
        try:
            partner = await find_service(request, PartnerService).create_partner(
                operator_actor(request, session), name=name, roles=roles, mode=mode
            )
        except DomainError as exc:
            error, status = exc.message, domain_error_status(exc)
        else:
            return see_other(f"/console/partners/{partner.id}")
    return await _partners_page(
        request, session, None, status=status, form_error=error, form_values=values
    )


async def _partner_page(
    request: Request,
    session: OperatorSession,
    partner_id: str,
    *,
    status: int = 200,
    issued: IssuedClient | None = None,
    notice: str | None = None,
    client_error: str | None = None,
    client_values: Mapping[str, Any] | None = None,
) -> Response:
    partner, clients = await find_service(request, IdentityQueries).partner_with_clients(partner_id)
    if partner is None:
        raise ApiProblem("not_found", f"No partner '{partner_id[:40]}'.")
    allowed = sorted(partner.allowed_scopes)
    return render(
        request,
        "console/partner.html",
        status=status,
        partner=partner,
        clients=clients,
        issued=issued,
        notice=notice,
        section_error=client_error,
        allowed_scopes=allowed,
        rate_limits=[
            {
                "policy": name,
                "platform": find_service(request, RateLimiter).policies[name],
                "own": partner.rate_limits.get(name),
            }
            for name in sorted(PARTNER_POLICIES)
        ],
        auth_methods=[m.value for m in ClientAuthMethod],
        form=dict(
            client_values
            or {
                "name": "",
                "auth_method": ClientAuthMethod.SECRET_BASIC.value,
                # Opt-in scopes (customers:reveal) are ticked by hand, never by default.
                "scopes": [s for s in allowed if s not in OPT_IN_SCOPES],
                "redirect_uris": "",
                "jwks_uri": "",
            }
        ),
    )


@router.get("/partners/{partner_id}")
async def partner_detail(partner_id: str, request: Request, session: Session) -> Response:
    require(session, P.PARTNERS_READ)
    return await _partner_page(request, session, partner_id)


@router.post("/partners/{partner_id}/status")
async def set_partner_status(partner_id: str, request: Request, session: Session) -> Response:
    require(session, P.PARTNERS_SUSPEND)
    form = await request.form()
    status = text_field(form, "status")
    if status not in {"active", "suspended"}:
        raise ApiProblem("validation_error", "Status must be active or suspended.", status=422)
    await find_service(request, PartnerService).set_partner_status(
        operator_actor(request, session), partner_id, status
    )
    return see_other(f"/console/partners/{partner_id}")


@router.post("/partners/{partner_id}/rate_limits")
async def set_partner_rate_limit(partner_id: str, request: Request, session: Session) -> Response:
    require(session, P.PARTNERS_WRITE)
    form = await request.form()
    policy = text_field(form, "policy")
    quota = text_field(form, "quota")
    if policy not in PARTNER_POLICIES:
        raise ApiProblem("validation_error", "Policy must be read or write.", status=422)
    try:
        parsed = parse_policy(policy, quota) if quota else None
    except ValueError as exc:
        raise ApiProblem("validation_error", str(exc), status=422) from None
    await find_service(request, PartnerService).set_rate_limit(
        operator_actor(request, session),
        partner_id,
        policy,
        None if parsed is None else (parsed.limit, parsed.window_seconds),
    )
    return see_other(f"/console/partners/{partner_id}#rate-limits")


@router.post("/partners/{partner_id}/clients")
async def create_client(partner_id: str, request: Request, session: Session) -> Response:
    require(session, P.CLIENTS_WRITE)
    form = await request.form()
    name = text_field(form, "name")
    auth_method = text_field(form, "auth_method") or ClientAuthMethod.SECRET_BASIC.value
    scopes = text_fields(form, "scopes")
    uris_text = text_field(form, "redirect_uris")
    redirect_uris = [line.strip() for line in uris_text.splitlines() if line.strip()]
    jwks_uri = text_field(form, "jwks_uri") or None
    values = {
        "name": name[:200],
        "auth_method": auth_method,
        "scopes": scopes,
        "redirect_uris": uris_text[:5000],
        "jwks_uri": (jwks_uri or "")[:500],
    }
    error: str | None = None
    status = 422
    if len(name) > 200:
        error = "The client name can have at most 200 characters."
    elif auth_method not in {m.value for m in ClientAuthMethod}:
        error = "Choose a token endpoint authentication method from the list."
    elif not scopes or len(scopes) > 20:
        error = "Choose at least one scope."
    elif len(redirect_uris) > 10 or any(len(u) > 500 for u in redirect_uris):
        error = "Give at most 10 redirect URIs of at most 500 characters each."
    elif jwks_uri is not None and len(jwks_uri) > 500:
        error = "The JWKS URI can have at most 500 characters."
    else:
        try:
            issued = await find_service(request, PartnerService).create_client(
                operator_actor(request, session),
                partner_id,
                name=name,
                auth_method=auth_method,
                scopes=scopes,
                redirect_uris=redirect_uris,
                jwks_uri=jwks_uri,
            )
        except DomainError as exc:
            error, status = exc.message, domain_error_status(exc)
        else:
            return await _partner_page(
                request,
                session,
                partner_id,
                status=201,
                issued=issued,
                notice=f"Client {issued.client.id} created.",
            )
    return await _partner_page(
        request, session, partner_id, status=status, client_error=error, client_values=values
    )


async def _partner_of_client(request: Request, client_id: str) -> str:
    client = await find_service(request, IdentityQueries).client(client_id)
    if client is None:
        raise ApiProblem("not_found", f"No client '{client_id[:40]}'.")
    return client.partner_id


@router.post("/clients/{client_id}/rotate_secret")
async def rotate_secret(client_id: str, request: Request, session: Session) -> Response:
    require(session, P.CLIENTS_WRITE)
    partner_id = await _partner_of_client(request, client_id)
    try:
        issued = await find_service(request, PartnerService).rotate_client_secret(
            operator_actor(request, session), client_id
        )
    except DomainError as exc:
        return await _partner_page(
            request,
            session,
            partner_id,
            status=domain_error_status(exc),
            client_error=exc.message,
        )
    return await _partner_page(
        request,
        session,
        partner_id,
        issued=issued,
        notice=f"New secret issued for {client_id}; the old one stopped working.",
    )


@router.post("/clients/{client_id}/revoke")
async def revoke_client(client_id: str, request: Request, session: Session) -> Response:
    require(session, P.CLIENTS_WRITE)
    partner_id = await _partner_of_client(request, client_id)
    await find_service(request, PartnerService).revoke_client(
        operator_actor(request, session), client_id
    )
    return see_other(f"/console/partners/{partner_id}")
