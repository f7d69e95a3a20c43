"""Operator sessions: cookie in, permission-checked operator out."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.security import APIKeyCookie

from amanat.identity.access import Permission
from amanat.identity.services.operators import OperatorService, OperatorSession
from amanat.platform.access_log import AccessEntry, AccessLog
from amanat.platform.audit.domain import Actor
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.context import current_request_id
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.services import find_service

SESSION_COOKIE = "amanat_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def current_operator(request: Request) -> OperatorSession:
    session = await find_service(request, OperatorService).session(
        request.cookies.get(SESSION_COOKIE)
    )
    if session is None:
        raise ApiProblem(
            "unauthorized",
            "Log in to the console first.",
            status=401,
            headers={"WWW-Authenticate": 'Cookie realm="amanat-console"'},
        )
    if request.method not in _SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            presented = value if isinstance(value, str) else None
        if not presented or not secrets.compare_digest(presented, session.session.csrf_token):
            raise ApiProblem("csrf_failed", status=403)
    request.state.operator = session
    if (
        request.method in _SAFE_METHODS
        and request.url.path.startswith(OPERATOR_API)
        and request.url.path not in _NOT_LOGGED
    ):
        await _log_api_access(request, session)
    return session


# The operator API's reads show what the console shows (every merchant's disputes, their
# explanations and evidence, breaks, partners), so they are access-logged like its pages.
# Its writes are in the audit trail already (and a refused one changes nothing at all).
# Console pages are logged by the console itself, with their status and what they showed.
OPERATOR_API = "/operator/v1/"
_NOT_LOGGED = frozenset({"/operator/v1/me", "/operator/v1/logout"})
_ID = re.compile(r"[a-z]{2,4}_[0-9A-Z]{26}")


async def _log_api_access(request: Request, session: OperatorSession) -> None:
    ids = [
        value if _ID.fullmatch(value) else "(not an id)"
        for value in (str(v) for v in request.path_params.values())
    ]
    route = request.scope.get("route")
    template = getattr(route, "path", None) or request.url.path
    entry = AccessEntry(
        operator_id=session.operator.id,
        operator_email=session.operator.email,
        action="view",
        screen="operator_api",
        subject=" ".join(ids) or None,
        detail=f"{request.method} {template}",
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        request_id=current_request_id(),
    )
    # Before the handler runs: nothing is answered that the log does not hold (a write
    # the database refuses answers 503 with Retry-After, like any contention).
    await find_service(request, AccessLog).record(entry)


def require_permission(permission: Permission) -> Callable[..., Awaitable[OperatorSession]]:
    async def dependency(request: Request) -> OperatorSession:
        session = await current_operator(request)
        if permission not in session.operator.permissions:
            raise ApiProblem(
                "forbidden", f"Your roles do not grant '{permission.value}'.", status=403
            )
        return session

    dependency.__name__ = f"require_{permission.value.replace('.', '_')}"
    return dependency


def operator_actor(request: Request, session: OperatorSession | None = None) -> Actor:
    operator_id = session.operator.id if session else "anonymous"
    return Actor(
        type="operator",
        id=operator_id,
        source_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        request_id=current_request_id(),
    )


session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="operator_session",
    description="Console session cookie from `/operator/v1/login`; "
    "unsafe methods also need `X-CSRF-Token`.",
    auto_error=False,
)
