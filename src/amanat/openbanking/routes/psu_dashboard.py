"""The PSU's consent dashboard: every consent they gave, and a button to withdraw any.

Signing in is the same walk as authorising a consent (password, then a one-time code),
without a consent; the signed-in walk's id and secret ride in a cookie for the rest of its
lifetime. Withdrawing is a form POST carrying a token derived from that secret, so another
site cannot make the browser withdraw anything.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from amanat.kernel.errors import DomainError
from amanat.kernel.masking import mask_iban
from amanat.openbanking.domain.authorisation import WALK_LIFETIME, WalkError
from amanat.openbanking.domain.consents import ConsentStatus
from amanat.openbanking.domain.permissions import PERMISSION_DESCRIPTIONS
from amanat.openbanking.routes.psu_pages import (
    DASHBOARD_COOKIE,
    client_name_of,
    ended_page,
    guard,
    psu_actor,
    render_page,
    see_other,
    walk_cookie,
)
from amanat.openbanking.services.authorisation import AuthorisationService
from amanat.openbanking.services.consents import ConsentService
from amanat.platform.http.services import find_service

router = APIRouter(include_in_schema=False)


def _session(request: Request) -> tuple[str, str]:
    walk_id, _, secret = request.cookies.get(DASHBOARD_COOKIE, "").partition(".")
    return walk_id[:40], secret[:128]


def _csrf(secret: str) -> str:
    return hashlib.sha256(f"dashboard-csrf\x1f{secret}".encode()).hexdigest()


async def _signed_in(request: Request) -> str | None:
    walk_id, secret = _session(request)
    if not walk_id or not secret:
        return None
    try:
        return await find_service(request, AuthorisationService).dashboard_psu(walk_id, secret)
    except WalkError:
        return None


def _when(moment: object) -> str | None:
    return moment.strftime("%d %b %Y %H:%M UTC") if moment else None  # type: ignore[attr-defined]


@router.get("/psu/consents", response_class=HTMLResponse)
async def dashboard(request: Request, withdrawn: str | None = None) -> Response:
    guard(request)
    psu_id = await _signed_in(request)
    if psu_id is None:
        walk, secret = await find_service(request, AuthorisationService).start_dashboard()
        response = see_other(f"/psu/walks/{walk.id}")
        response.set_cookie(
            walk_cookie(walk.id),
            secret,
            max_age=int(WALK_LIFETIME.total_seconds()),
            path="/psu/walks",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response
    consents = await find_service(request, ConsentService).of_psu(psu_id)
    accounts = {
        a.id: f"{a.nickname} {mask_iban(a.iban)}"
        for a in await find_service(request, AuthorisationService).accounts_of(psu_id)
    }
    names: dict[str, str] = {}
    shown = []
    for consent in consents:
        if consent.client_id not in names:
            names[consent.client_id] = await client_name_of(request, consent.client_id)
        shown.append(
            {
                "id": consent.id,
                "client_name": names[consent.client_id],
                "status": consent.status.value,
                "reason": (consent.ended_reason or "").replace("_", " "),
                "permissions": [PERMISSION_DESCRIPTIONS.get(p, p) for p in consent.permissions],
                "accounts": [accounts.get(a, a) for a in consent.account_ids],
                "created": _when(consent.created_at),
                "expires": _when(consent.expires_at),
                "can_withdraw": consent.status is ConsentStatus.AUTHORISED,
            }
        )
    _walk_id, secret = _session(request)
    withdrawn_name = next((c["client_name"] for c in shown if c["id"] == withdrawn), None)
    return render_page(
        request,
        "consents",
        {"consents": shown, "csrf_token": _csrf(secret), "withdrawn": withdrawn_name},
    )


@router.post("/psu/consents/{consent_id}/withdraw", response_class=HTMLResponse)
async def withdraw(
    request: Request, consent_id: str, csrf_token: Annotated[str, Form(max_length=128)]
) -> Response:
    guard(request)
    psu_id = await _signed_in(request)
    _walk_id, secret = _session(request)
    if psu_id is None or not hmac.compare_digest(csrf_token, _csrf(secret)):
        return ended_page(
            request, "Please sign in again", "Your session ended. Open your consents again.", 403
        )
    try:
        await find_service(request, ConsentService).withdraw(
            psu_id, consent_id[:40], psu_actor(request, psu_id)
        )
    except DomainError as exc:
        return ended_page(request, "This access cannot be withdrawn", exc.message, 409)
    return see_other(f"/psu/consents?withdrawn={consent_id[:40]}")
