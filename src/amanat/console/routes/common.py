"""What every console screen shares: the route class, sessions, rendering, errors, and
the access log.

The console is HTML pages over the same services and session as the operator API, one
module per screen (``routes/*.py``), each with its own :func:`console_router`.

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

Every response to a signed-in operator is written to the console's access log before it
is sent (:class:`ConsoleRoute`): the screen, the path's ids, the status, and whatever the
screen adds with :func:`note_access` (a search's masked terms, a reveal's reason).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from amanat.identity.access import (
    ROLE_PERMISSIONS,
    Permission,
)
from amanat.identity.services.operators import OperatorSession
from amanat.identity.sessions import current_operator
from amanat.kernel.clock import format_timestamp, parse_timestamp
from amanat.kernel.errors import DomainError
from amanat.platform.access_log import AccessEntry, AccessLog
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.context import current_request_id
from amanat.platform.http.errors import ApiProblem, domain_error_status
from amanat.platform.http.problems import lookup
from amanat.platform.http.services import find_service

logger = structlog.get_logger("amanat.console")
_ID = re.compile(r"[a-z]{2,4}_[0-9A-Z]{26}")

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


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def harden(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def render(
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
    if replace_main and is_htmx(request):
        # An error page replaces the whole main area, whatever the form targeted.
        response.headers["HX-Retarget"] = "#main"
        response.headers["HX-Reselect"] = "#main"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


def forbidden_page(request: Request, permission: Permission) -> HTMLResponse:
    granting = sorted(r.value for r, perms in ROLE_PERMISSIONS.items() if permission in perms)
    return render(
        request,
        "console/forbidden.html",
        status=403,
        replace_main=True,
        missing=permission.value,
        granting_roles=granting,
    )


def error_page(
    request: Request,
    *,
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    entry = lookup(code)
    title = entry.title if entry else code.replace("_", " ").capitalize()
    return render(
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


def login_redirect(request: Request) -> Response:
    if is_htmx(request):
        # fetch() would follow a 303 silently; htmx performs this one as a navigation.
        return Response(status_code=401, headers={"HX-Redirect": LOGIN_PATH})
    return see_other(LOGIN_PATH)


def problem_page(request: Request, exc: ApiProblem) -> Response:
    if exc.code == "unauthorized":
        return login_redirect(request)
    if exc.code == "csrf_failed":
        return error_page(
            request,
            status=403,
            code=exc.code,
            detail="The form was missing this session's anti-forgery token, or it was stale. "
            "Reload the page and try again.",
        )
    return error_page(
        request, status=exc.status, code=exc.code, detail=exc.detail, headers=exc.headers
    )


class ConsoleRoute(APIRoute):
    """Turns the edge's exceptions into console pages and adds the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        screen = getattr(self.endpoint, "__module__", "console").rsplit(".", 1)[-1]

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except MissingPermission as exc:
                response = forbidden_page(request, exc.permission)
            except ApiProblem as exc:
                response = problem_page(request, exc)
            except DomainError as exc:
                response = error_page(
                    request, status=domain_error_status(exc), code=exc.code, detail=exc.message
                )
            except RequestValidationError:
                response = error_page(
                    request,
                    status=422,
                    code="validation_error",
                    detail="The request was not understood; go back and try again.",
                )
            try:
                await _log_access(request, response, screen)
            except Exception:
                logger.exception("console.access_log_failed", screen=screen)
                response = error_page(
                    request,
                    status=503,
                    code="service_unavailable",
                    detail="The page could not be recorded in the access log, so it is not "
                    "shown. Try again in a moment.",
                    headers={"Retry-After": "5"},
                )
            return harden(response)

        return console_handler


def console_router() -> APIRouter:
    """A screen's router: under ``/console``, out of the API schema, with pages for errors."""
    return APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


Session = Annotated[OperatorSession, Depends(current_operator)]


def note_access(
    request: Request, *, action: str | None = None, subject: str | None = None, detail: str = ""
) -> None:
    """What the access log should say of this request beyond its screen and path ids: a
    search's masked terms, a reveal's reason. Never a personal value in clear."""
    if action is not None:
        request.state.access_action = action
    if subject is not None:
        request.state.access_subject = subject
    if detail:
        request.state.access_detail = detail


async def _log_access(request: Request, response: Response, screen: str) -> None:
    session: OperatorSession | None = getattr(request.state, "operator", None)
    if session is None:
        return  # the sign-in form, or no session: nothing was shown
    status = response.status_code
    if status == 403:
        action = "denied"
    else:
        default = "view" if request.method in {"GET", "HEAD"} else "action"
        action = getattr(request.state, "access_action", default)
    # Only ids are logged as typed: a path segment that is not one (a phone number put in
    # a URL by hand) is logged as such, never as its value.
    ids = [
        value if _ID.fullmatch(value) else "(not an id)"
        for value in (str(v) for v in request.path_params.values())
    ]
    subject = getattr(request.state, "access_subject", None) or (" ".join(ids) or None)
    route = request.scope.get("route")
    template = getattr(route, "path", None) or request.url.path
    detail = " · ".join(
        part
        for part in (
            f"{request.method} {template} → {status}",
            getattr(request.state, "access_detail", ""),
        )
        if part
    )
    await find_service(request, AccessLog).record(
        AccessEntry(
            operator_id=session.operator.id,
            operator_email=session.operator.email,
            action=action,
            screen=screen,
            subject=subject,
            detail=detail,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            request_id=current_request_id(),
        )
    )


def parse_before(before: str) -> tuple[datetime, str] | None:
    """A list page's ``before`` link (``<time>|<id>`` of its last row), or None: a
    malformed one starts from the newest rather than failing the page."""
    if "|" not in before or len(before) > 120:
        return None
    at, _, row_id = before.partition("|")
    try:
        return parse_timestamp(at), row_id
    except ValueError:
        return None


def require(session: OperatorSession, permission: Permission) -> None:
    if permission not in session.operator.permissions:
        raise MissingPermission(permission)


def text_field(form: FormData, name: str, *, strip: bool = True) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return value.strip() if strip else value


def text_fields(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]
