"""The operator console: HTML pages over the same services and session as the operator API.

Every page but the login form needs a session (the cookie the operator API sets), and every
POST needs the session's CSRF token, as the hidden ``csrf_token`` field of each form or the
``X-CSRF-Token`` header htmx sends (``hx-headers`` on ``<body>``). Both checks live in
:func:`amanat.identity.sessions.current_operator`; this module adds the HTML answers:
no session is a 303 to the login form, a missing permission is a 403 page naming it, and
problems raised by the edge or the services become pages instead of problem+json.

Actions go through the partner, operator and signing-key services with
:func:`operator_actor`, so each one is audited. A client
secret or TOTP secret is rendered only in the response to the request that created it;
pages showing one are ``Cache-Control: no-store`` like every console page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from amanat.auth.ports import SigningKeyRing
from amanat.auth.signing_keys import SigningKeyService
from amanat.identity.access import (
    OPT_IN_SCOPES,
    ROLE_PERMISSIONS,
    OperatorRole,
    PartnerRole,
    Permission,
)
from amanat.identity.domain import ClientAuthMethod, Mode
from amanat.identity.errors import AccountLocked, LoginFailed
from amanat.identity.queries import IdentityQueries
from amanat.identity.services.operators import NewOperator, OperatorService, OperatorSession
from amanat.identity.services.partners import IssuedClient, PartnerService
from amanat.identity.sessions import SESSION_COOKIE, current_operator, operator_actor
from amanat.kernel.clock import Clock, format_timestamp, parse_timestamp
from amanat.kernel.errors import DomainError
from amanat.platform.audit.queries import AuditQueries
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.errors import ApiProblem, domain_error_status
from amanat.platform.http.pagination import decode_cursor, encode_cursor
from amanat.platform.http.problems import lookup
from amanat.platform.http.ratelimit import PARTNER_POLICIES, enforce, parse_policy
from amanat.platform.http.services import find_service
from amanat.platform.ratelimit.limiter import RateLimiter
from amanat.platform.settings import Settings

P = Permission
LOGIN_PATH = "/console/login"
PARTNERS_PAGE_SIZE = 20
AUDIT_PAGE_SIZE = 50
MAX_CURSOR = 512
LOGIN_FAILED = "Sign-in failed: the email, password or code is wrong."
LOGIN_LOCKED = "Too many failed attempts from this address: sign-in is paused. Try again later."
LOGIN_INCOMPLETE = "Enter your email, your password and the 6-digit code from your app."

# The console loads only its own assets; nothing inline, nothing third-party.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))


def _timestamp(value: datetime | None) -> str:
    return format_timestamp(value) if value is not None else "—"


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


TEMPLATES.env.filters["ts"] = _timestamp
TEMPLATES.env.filters["as_json"] = _as_json


class MissingPermission(Exception):
    """The operator's roles do not grant ``permission``; answered with a 403 page."""

    def __init__(self, permission: Permission) -> None:
        super().__init__(permission.value)
        self.permission = permission


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _harden(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    replace_main: bool = False,
    **context: Any,
) -> HTMLResponse:
    session: OperatorSession | None = getattr(request.state, "operator", None)
    base: dict[str, Any] = {
        "me": session.operator if session else None,
        "csrf_token": session.session.csrf_token if session else None,
        "can": frozenset(p.value for p in session.operator.permissions) if session else (),
    }
    response = TEMPLATES.TemplateResponse(
        request, template, base | context, status_code=status, headers=dict(headers or {})
    )
    if replace_main and _is_htmx(request):
        # An error page replaces the whole main area, whatever the form targeted.
        response.headers["HX-Retarget"] = "#main"
        response.headers["HX-Reselect"] = "#main"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


def _forbidden_page(request: Request, permission: Permission) -> HTMLResponse:
    granting = sorted(r.value for r, perms in ROLE_PERMISSIONS.items() if permission in perms)
    return _render(
        request,
        "console/forbidden.html",
        status=403,
        replace_main=True,
        missing=permission.value,
        granting_roles=granting,
    )


def _error_page(
    request: Request,
    *,
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    entry = lookup(code)
    title = entry.title if entry else code.replace("_", " ").capitalize()
    return _render(
        request,
        "console/error.html",
        status=status,
        headers=headers,
        replace_main=True,
        title=title,
        code=code,
        detail=detail,
        remedy=entry.remedy if entry else None,
    )


def _login_redirect(request: Request) -> Response:
    if _is_htmx(request):
        # fetch() would follow a 303 silently; htmx performs this one as a navigation.
        return Response(status_code=401, headers={"HX-Redirect": LOGIN_PATH})
    return _see_other(LOGIN_PATH)


def _problem_page(request: Request, exc: ApiProblem) -> Response:
    if exc.code == "unauthorized":
        return _login_redirect(request)
    if exc.code == "csrf_failed":
        return _error_page(
            request,
            status=403,
            code=exc.code,
            detail="The form was missing this session's anti-forgery token, or it was stale. "
            "Reload the page and try again.",
        )
    return _error_page(
        request, status=exc.status, code=exc.code, detail=exc.detail, headers=exc.headers
    )


class ConsoleRoute(APIRoute):
    """Turns the edge's exceptions into console pages and adds the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except MissingPermission as exc:
                response = _forbidden_page(request, exc.permission)
            except ApiProblem as exc:
                response = _problem_page(request, exc)
            except DomainError as exc:
                response = _error_page(
                    request, status=domain_error_status(exc), code=exc.code, detail=exc.message
                )
            except RequestValidationError:
                response = _error_page(
                    request,
                    status=422,
                    code="validation_error",
                    detail="The request was not understood; go back and try again.",
                )
            return _harden(response)

        return console_handler


router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)

Session = Annotated[OperatorSession, Depends(current_operator)]


def _require(session: OperatorSession, permission: Permission) -> None:
    if permission not in session.operator.permissions:
        raise MissingPermission(permission)


def _text(form: FormData, name: str, *, strip: bool = True) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return value.strip() if strip else value


def _texts(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


# ---------------------------------------------------------------------------- sign in/out


@router.get("/login")
async def login_form(request: Request) -> Response:
    if (
        await find_service(request, OperatorService).session(request.cookies.get(SESSION_COOKIE))
        is not None
    ):
        return _see_other("/console")
    return _render(request, "console/login.html", email="")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email = _text(form, "email")
    password = _text(form, "password", strip=False)
    code = _text(form, "totp_code").replace(" ", "")
    shown_email = email[:254]
    ip = client_ip(request)
    try:
        await enforce(request, find_service(request, RateLimiter), "login", f"{ip}|{email.lower()}")
    except ApiProblem as exc:
        retry = exc.headers.get("Retry-After", "a few")
        return _render(
            request,
            "console/login.html",
            status=429,
            headers=exc.headers,
            email=shown_email,
            error=f"Too many sign-in attempts. Wait {retry} seconds, then try again.",
        )
    if not (0 < len(email) <= 254 and 0 < len(password) <= 1024 and 6 <= len(code) <= 8):
        return _render(
            request, "console/login.html", status=422, email=shown_email, error=LOGIN_INCOMPLETE
        )
    try:
        result = await find_service(request, OperatorService).login(
            email=email,
            password=password,
            totp_code=code,
            source_ip=ip,
            user_agent=request.headers.get("user-agent"),
        )
    except AccountLocked as exc:
        return _render(
            request,
            "console/login.html",
            status=423,
            headers={"Retry-After": str(exc.retry_after_seconds)},
            email=shown_email,
            error=LOGIN_LOCKED,
        )
    except LoginFailed:
        return _render(
            request, "console/login.html", status=401, email=shown_email, error=LOGIN_FAILED
        )
    response = _see_other("/console")
    response.set_cookie(
        SESSION_COOKIE,
        result.session_token,
        httponly=True,
        secure=find_service(request, Settings).http.public_url.startswith("https://"),
        samesite="strict",
        path="/",
        max_age=int((result.expires_at - find_service(request, Clock).now()).total_seconds()),
    )
    return response


@router.post("/logout")
async def logout(request: Request, session: Session) -> Response:
    await find_service(request, OperatorService).logout(session, operator_actor(request, session))
    response = _see_other(LOGIN_PATH)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        secure=find_service(request, Settings).http.public_url.startswith("https://"),
        samesite="strict",
    )
    return response


# ---------------------------------------------------------------------------- dashboard


@router.get("")
async def dashboard(request: Request, session: Session) -> Response:
    return _render(
        request,
        "console/dashboard.html",
        roles=sorted(r.value for r in session.operator.roles),
        all_permissions=[p.value for p in Permission],
        session_expires_at=session.session.expires_at,
    )


# ---------------------------------------------------------------------------- partners


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
    return _render(
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
    _require(session, P.PARTNERS_READ)
    return await _partners_page(request, session, cursor or None)


@router.post("/partners")
async def create_partner(request: Request, session: Session) -> Response:
    _require(session, P.PARTNERS_WRITE)
    form = await request.form()
    name = _text(form, "name")
    roles = _texts(form, "roles")
    mode = _text(form, "mode") or Mode.SANDBOX.value
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
            return _see_other(f"/console/partners/{partner.id}")
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
    return _render(
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
    _require(session, P.PARTNERS_READ)
    return await _partner_page(request, session, partner_id)


@router.post("/partners/{partner_id}/status")
async def set_partner_status(partner_id: str, request: Request, session: Session) -> Response:
    _require(session, P.PARTNERS_SUSPEND)
    form = await request.form()
    status = _text(form, "status")
    if status not in {"active", "suspended"}:
        raise ApiProblem("validation_error", "Status must be active or suspended.", status=422)
    await find_service(request, PartnerService).set_partner_status(
        operator_actor(request, session), partner_id, status
    )
    return _see_other(f"/console/partners/{partner_id}")


@router.post("/partners/{partner_id}/rate_limits")
async def set_partner_rate_limit(partner_id: str, request: Request, session: Session) -> Response:
    _require(session, P.PARTNERS_WRITE)
    form = await request.form()
    policy = _text(form, "policy")
    quota = _text(form, "quota")
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
    return _see_other(f"/console/partners/{partner_id}#rate-limits")


@router.post("/partners/{partner_id}/clients")
async def create_client(partner_id: str, request: Request, session: Session) -> Response:
    _require(session, P.CLIENTS_WRITE)
    form = await request.form()
    name = _text(form, "name")
    auth_method = _text(form, "auth_method") or ClientAuthMethod.SECRET_BASIC.value
    scopes = _texts(form, "scopes")
    uris_text = _text(form, "redirect_uris")
    redirect_uris = [line.strip() for line in uris_text.splitlines() if line.strip()]
    jwks_uri = _text(form, "jwks_uri") or None
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
    _require(session, P.CLIENTS_WRITE)
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
    _require(session, P.CLIENTS_WRITE)
    partner_id = await _partner_of_client(request, client_id)
    await find_service(request, PartnerService).revoke_client(
        operator_actor(request, session), client_id
    )
    return _see_other(f"/console/partners/{partner_id}")


# ---------------------------------------------------------------------------- operators


async def _operators_page(
    request: Request,
    *,
    status: int = 200,
    created: NewOperator | None = None,
    section_error: str | None = None,
    form_values: Mapping[str, Any] | None = None,
) -> Response:
    operators = await find_service(request, IdentityQueries).operators()
    return _render(
        request,
        "console/operators.html",
        status=status,
        operators=operators,
        created=created,
        section_error=section_error,
        operator_roles=[r.value for r in OperatorRole],
        form=dict(form_values or {"email": "", "name": "", "roles": []}),
    )


@router.get("/operators")
async def operators(request: Request, session: Session) -> Response:
    _require(session, P.OPERATORS_READ)
    return await _operators_page(request)


@router.post("/operators")
async def create_operator(request: Request, session: Session) -> Response:
    _require(session, P.OPERATORS_WRITE)
    form = await request.form()
    email = _text(form, "email")
    name = _text(form, "name")
    roles = _texts(form, "roles")
    password = _text(form, "password", strip=False)
    values = {"email": email[:254], "name": name[:200], "roles": roles}
    error: str | None = None
    status = 422
    if not 3 <= len(email) <= 254:
        error = "Enter the operator's email address."
    elif not 1 <= len(name) <= 200:
        error = "Enter the operator's name (at most 200 characters)."
    elif not 1 <= len(roles) <= len(OperatorRole):
        error = "Choose at least one role."
    elif not 12 <= len(password) <= 1024:
        error = "The initial password needs at least 12 characters."
    else:
        try:
            created = await find_service(request, OperatorService).create_operator(
                operator_actor(request, session),
                email=email,
                name=name,
                roles=roles,
                password=password,
            )
        except DomainError as exc:
            error, status = exc.message, domain_error_status(exc)
        else:
            return await _operators_page(request, status=201, created=created)
    return await _operators_page(request, status=status, section_error=error, form_values=values)


# ---------------------------------------------------------------------------- audit


@router.get("/audit")
async def audit(
    request: Request,
    session: Session,
    action: str = "",
    target_id: str = "",
    cursor: str = "",
) -> Response:
    _require(session, P.AUDIT_READ)
    action, target_id = action.strip()[:64], target_id.strip()[:64]
    if len(cursor) > MAX_CURSOR:
        raise ApiProblem("invalid_cursor")
    after = decode_cursor(cursor or None, required_keys=frozenset({"seq"}))
    before_seq = int(after["seq"]) if after else None
    page = await find_service(request, AuditQueries).records(
        AUDIT_PAGE_SIZE, before_seq, action or None, target_id or None
    )
    last = page.items[-1] if page.items else None
    next_cursor = encode_cursor({"seq": last.seq}) if page.has_more and last else None
    return _render(
        request,
        "console/audit.html",
        records=page.items,
        action=action,
        target_id=target_id,
        next_cursor=next_cursor,
        first_page=not cursor,
    )


# ---------------------------------------------------------------------------- signing keys


@router.get("/keys")
async def signing_keys(request: Request, session: Session) -> Response:
    _require(session, P.KEYS_ROTATE)
    keys = await find_service(request, SigningKeyService).keys()
    return _render(request, "console/keys.html", keys=list(reversed(keys)))


@router.post("/keys/rotate")
async def rotate_signing_key(request: Request, session: Session) -> Response:
    _require(session, P.KEYS_ROTATE)
    await find_service(request, SigningKeyService).rotate(operator_actor(request, session))
    await find_service(request, SigningKeyRing).refresh(force=True)
    return _see_other("/console/keys")
