"""Signing in to the console (email, password, TOTP code) and out."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from amanat.console.routes.common import (
    LOGIN_FAILED,
    LOGIN_INCOMPLETE,
    LOGIN_LOCKED,
    LOGIN_PATH,
    Session,
    console_router,
    render,
    see_other,
    text_field,
)
from amanat.identity.errors import AccountLocked, LoginFailed
from amanat.identity.services.operators import OperatorService
from amanat.identity.sessions import SESSION_COOKIE, operator_actor
from amanat.kernel.clock import Clock
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.ratelimit import enforce
from amanat.platform.http.services import find_service
from amanat.platform.ratelimit.limiter import RateLimiter
from amanat.platform.settings import Settings

router = console_router()


@router.get("/login")
async def login_form(request: Request) -> Response:
    if (
        await find_service(request, OperatorService).session(request.cookies.get(SESSION_COOKIE))
        is not None
    ):
        return see_other("/console")
    return render(request, "console/login.html", email="")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email = text_field(form, "email")
    password = text_field(form, "password", strip=False)
    code = text_field(form, "totp_code").replace(" ", "")
    shown_email = email[:254]
    ip = client_ip(request)
    try:
        await enforce(request, find_service(request, RateLimiter), "login", f"{ip}|{email.lower()}")
    except ApiProblem as exc:
        retry = exc.headers.get("Retry-After", "a few")
        return render(
            request,
            "console/login.html",
            status=429,
            headers=exc.headers,
            email=shown_email,
            error=f"Too many sign-in attempts. Wait {retry} seconds, then try again.",
        )
    if not (0 < len(email) <= 254 and 0 < len(password) <= 1024 and 6 <= len(code) <= 8):
        return render(
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
        return render(
            request,
            "console/login.html",
            status=423,
            headers={"Retry-After": str(exc.retry_after_seconds)},
            email=shown_email,
            error=LOGIN_LOCKED,
        )
    except LoginFailed:
        return render(
            request, "console/login.html", status=401, email=shown_email, error=LOGIN_FAILED
        )
    response = see_other("/console")
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
    response = see_other(LOGIN_PATH)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        secure=find_service(request, Settings).http.public_url.startswith("https://"),
        samesite="strict",
    )
    return response
