"""The bank's hosted pages where a PSU authorises a TPP's consent.

The TPP sends the PSU to ``/oauth/authorize`` with ``consent_id`` (authorization-code
grant with PKCE); that endpoint hands consent requests on to ``/psu/authorize``, which
checks the request once more, starts a walk and sets the walk's secret as a cookie only
the walk's own pages receive. Every answer is ``no-store``, cannot be framed (a consent
page inside someone else's frame is a clickjacking target) and runs no inline script.

In production the PSU must be authenticated by the bank's own login: these pages answer
501 there, like the sandbox's plain authorization page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from amanat.auth.service import OAuthService
from amanat.identity.queries import IdentityQueries
from amanat.kernel.errors import DomainError
from amanat.kernel.masking import mask_iban, mask_phone
from amanat.kernel.pakistan import bank_by_code
from amanat.openbanking.domain.authorisation import WALK_LIFETIME, Stage, WalkError
from amanat.openbanking.domain.consents import Consent, ConsentKind
from amanat.openbanking.domain.permissions import PERMISSION_DESCRIPTIONS
from amanat.openbanking.domain.sandbox_credentials import SANDBOX_PSU_PASSWORD
from amanat.openbanking.ports import BankAccount
from amanat.openbanking.services.authorisation import (
    AskCode,
    AuthorisationService,
    Finish,
    Retry,
    SignedIn,
    WalkRequest,
)
from amanat.platform.audit.domain import Actor
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.context import current_request_id
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.services import find_service
from amanat.platform.settings import Settings

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
router = APIRouter(include_in_schema=False)

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "consent_id",
)
_RETRY_MESSAGES = {
    "wrong_credentials": "The username or password is not right.",
    "wrong_code": "That code is not right. Check the latest code and try again.",
    "code_expired": "That code has expired. Ask for a new one.",
    "choose_accounts": "Choose at least one of your accounts to share.",
    "choose_one_account": "Choose the one account to pay from.",
    "locked": (
        "Too many failed attempts for this customer or from this address. Try again in 15 minutes."
    ),
}


DASHBOARD_COOKIE = "psu_dashboard"
# RFC 7636: an S256 challenge is 43 characters of base64url; a longer one is accepted
# as the verifier's length allows.
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43,128}")


def walk_cookie(walk_id: str) -> str:
    return f"psu_{walk_id}"


def see_other(location: str) -> Response:
    response = RedirectResponse(location, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def guard(request: Request) -> None:
    if find_service(request, Settings).is_production:
        raise ApiProblem("psu_authentication_not_configured", status=501)


def render_page(
    request: Request, name: str, context: dict[str, Any], status: int = 200
) -> Response:
    response = TEMPLATES.TemplateResponse(request, f"psu/{name}.html", context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def ended_page(request: Request, heading: str, message: str, status: int = 400) -> Response:
    return render_page(request, "ended", {"heading": heading, "message": message}, status)


def _locked_page(request: Request) -> Response:
    return ended_page(
        request,
        "Too many failed attempts",
        "This sign-in has ended. Open your consents again to start over.",
        403,
    )


def _finish(request: Request, finish: Finish) -> Response:
    issuer = find_service(request, OAuthService).config.issuer
    params = {
        "code": finish.code,
        "error": finish.error,
        "error_description": finish.description,
        "state": finish.state,
    }
    query = urlencode({k: v for k, v in params.items() if v is not None} | {"iss": issuer})
    separator = "&" if "?" in finish.redirect_uri else "?"
    response = RedirectResponse(f"{finish.redirect_uri}{separator}{query}", status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def psu_actor(request: Request, psu_id: str | None) -> Actor:
    return Actor(
        type="psu",
        id=psu_id or "unknown",
        source_ip=client_ip(request),
        user_agent=(request.headers.get("user-agent") or "")[:256] or None,
        request_id=current_request_id(),
    )


async def client_name_of(request: Request, client_id: str) -> str:
    client, _partner = await find_service(request, IdentityQueries).client_and_partner(client_id)
    return client.name if client else client_id


@router.get("/psu/authorize", response_class=HTMLResponse)
async def start(request: Request) -> Response:
    guard(request)
    params = {k: request.query_params[k] for k in _PARAMS if k in request.query_params}
    client, partner = await find_service(request, IdentityQueries).client_and_partner(
        params.get("client_id", "")
    )
    redirect_uri = params.get("redirect_uri", "")
    # Nothing may redirect to an unknown or unregistered place (RFC 6749 §4.1.2.1).
    if client is None or partner is None or not client.is_active or not partner.is_active:
        return ended_page(
            request, "Unknown application", "The application is not known to the bank."
        )
    if redirect_uri not in client.redirect_uris:
        return ended_page(
            request, "Unknown return address", "The application's return address is not registered."
        )
    state = params.get("state")

    def back(error: str, description: str) -> Response:
        return _finish(request, Finish(redirect_uri, state, error=error, description=description))

    if params.get("response_type") != "code":
        return back("unsupported_response_type", "response_type must be code.")
    if params.get("code_challenge_method") != "S256" or not _CHALLENGE.fullmatch(
        params.get("code_challenge", "")
    ):
        return back(
            "invalid_request",
            "PKCE with code_challenge_method=S256 and a 43-128 character code_challenge "
            "is required.",
        )
    if state is not None and len(state) > 512:
        return back("invalid_request", "state is at most 512 characters.")
    try:
        started = await find_service(request, AuthorisationService).start(
            WalkRequest(
                consent_id=params.get("consent_id", "")[:64],
                client_id=client.id,
                redirect_uri=redirect_uri,
                scope=params.get("scope", "")[:256],
                state=state,
                code_challenge=params.get("code_challenge", "")[:128],
            )
        )
    except DomainError as exc:
        return back("invalid_request", exc.message)
    response = RedirectResponse(f"/psu/walks/{started.walk.id}", status_code=303)
    response.set_cookie(
        walk_cookie(started.walk.id),
        started.secret,
        max_age=int(WALK_LIFETIME.total_seconds()),
        path="/psu/walks",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def _secret(request: Request, walk_id: str) -> str:
    return request.cookies.get(walk_cookie(walk_id[:40]), "")


def _decision_context(
    client_name: str, consent: Consent, accounts: list[BankAccount]
) -> dict[str, Any]:
    def when(moment: Any) -> str | None:
        return moment.strftime("%d %b %Y %H:%M %Z") if moment else None

    funds = consent.kind is ConsentKind.FUNDS_CONFIRMATION
    payment = consent.kind is ConsentKind.DOMESTIC_PAYMENT
    details = consent.details or {}
    named = (details.get("DebtorAccount") or {}).get("Identification")
    if payment:
        initiation = details.get("Initiation") or {}
        creditor = initiation.get("CreditorAccount") or {}
        amount = initiation.get("InstructedAmount") or {}
        remittance = initiation.get("RemittanceInformation") or {}
        payee = creditor.get("Identification", "")
        shown_payee = (
            mask_iban(payee)
            if creditor.get("SchemeName") == "UK.OBIE.IBAN"
            else (mask_phone(payee))
        )
        permissions = [
            f"Pay {amount.get('Currency', '')} {amount.get('Amount', '')} to "
            f"{creditor.get('Name', '')} ({shown_payee}), once, now, over Raast",
            f"Reference: {remittance.get('Reference') or initiation.get('EndToEndIdentification')}",
        ]
        named = (initiation.get("DebtorAccount") or {}).get("Identification")
    elif funds:
        permissions = [
            "Whether your account below holds enough for a payment you are making: "
            "a yes or no each time, never your balance"
        ]
    else:
        permissions = [PERMISSION_DESCRIPTIONS.get(p, p) for p in consent.permissions]
    return {
        "client_name": client_name,
        "consent_id": consent.id,
        "funds": funds,
        "payment": payment,
        "named": bool(named),
        "named_account": mask_iban(named) if named else None,
        "permissions": permissions,
        "expires": when(consent.expires_at),
        "tx_from": when(consent.transactions_from),
        "tx_to": when(consent.transactions_to),
        "accounts": [
            {
                "id": a.id,
                "nickname": a.nickname,
                "bank": (bank.name if (bank := bank_by_code(a.bank_code)) else a.bank_code),
                "masked_iban": mask_iban(a.iban),
            }
            for a in accounts
        ],
    }


async def _walk_errors(request: Request, step: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await step()
    except WalkError as exc:
        if exc.reason == "wrong_stage":
            return ended_page(
                request,
                "This step is already done",
                "Go back to the application and start again if you need to.",
                409,
            )
        return ended_page(
            request,
            "This request has ended",
            "It timed out, was finished, or was opened in another browser. Go back to the "
            "application and start again.",
        )
    except DomainError as exc:
        return ended_page(request, "This request cannot go on", exc.message, 409)


@router.get("/psu/walks/{walk_id}", response_class=HTMLResponse)
async def show(request: Request, walk_id: str) -> Response:
    guard(request)
    service = find_service(request, AuthorisationService)

    async def step() -> Response:
        walk, consent = await service.view(walk_id[:40], _secret(request, walk_id))
        if consent is None and walk.stage is Stage.DECIDE:
            return see_other("/psu/consents")
        client_name = await client_name_of(request, walk.client_id) if consent else None
        if walk.stage is Stage.SIGN_IN:
            return render_page(
                request,
                "sign_in",
                {
                    "walk_id": walk.id,
                    "client_name": client_name,
                    "sandbox_password": SANDBOX_PSU_PASSWORD,
                },
            )
        if walk.stage is Stage.SCA:
            return render_page(request, "code", {"walk_id": walk.id, "masked_mobile": "on file"})
        if walk.stage is Stage.DECIDE and consent is not None and client_name is not None:
            accounts = await service.accounts_for_decision(walk, consent)
            return render_page(
                request,
                "decide",
                {"walk_id": walk.id} | _decision_context(client_name, consent, accounts),
            )
        raise WalkError("walk_over")

    return await _walk_errors(request, step)


@router.post("/psu/walks/{walk_id}/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    walk_id: str,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> Response:
    guard(request)
    service = find_service(request, AuthorisationService)

    async def step() -> Response:
        outcome = await service.sign_in(
            walk_id[:40], _secret(request, walk_id), username, password, psu_actor(request, None)
        )
        if isinstance(outcome, Finish):
            return _finish(request, outcome)
        if isinstance(outcome, Retry) and outcome.reason == "walk_locked":
            return _locked_page(request)
        if isinstance(outcome, Retry):
            return render_page(
                request,
                "sign_in",
                {
                    "walk_id": outcome.walk.id,
                    "client_name": (
                        await client_name_of(request, outcome.walk.client_id)
                        if outcome.walk.consent_id
                        else None
                    ),
                    "sandbox_password": SANDBOX_PSU_PASSWORD,
                    "error": _RETRY_MESSAGES[outcome.reason],
                },
                401,
            )
        return _code_page(request, outcome)

    return await _walk_errors(request, step)


def _code_page(request: Request, outcome: AskCode, error: str | None = None) -> Response:
    return render_page(
        request,
        "code",
        {
            "walk_id": outcome.walk.id,
            "masked_mobile": mask_phone(outcome.customer.mobile),
            "sandbox_code": outcome.code,
            "customer_name": outcome.customer.full_name,
            "error": error,
        },
    )


@router.post("/psu/walks/{walk_id}/resend", response_class=HTMLResponse)
async def resend(request: Request, walk_id: str) -> Response:
    guard(request)
    service = find_service(request, AuthorisationService)

    async def step() -> Response:
        return _code_page(
            request, await service.resend_code(walk_id[:40], _secret(request, walk_id))
        )

    return await _walk_errors(request, step)


@router.post("/psu/walks/{walk_id}/code", response_class=HTMLResponse)
async def code(
    request: Request, walk_id: str, code: Annotated[str, Form(max_length=12)]
) -> Response:
    guard(request)
    service = find_service(request, AuthorisationService)

    async def step() -> Response:
        outcome = await service.verify_code(
            walk_id[:40], _secret(request, walk_id), code, psu_actor(request, None)
        )
        if isinstance(outcome, Finish):
            return _finish(request, outcome)
        if isinstance(outcome, Retry) and outcome.reason == "walk_locked":
            return _locked_page(request)
        if isinstance(outcome, Retry):
            return render_page(
                request,
                "code",
                {
                    "walk_id": outcome.walk.id,
                    "masked_mobile": "on file",
                    "error": _RETRY_MESSAGES[outcome.reason],
                },
                401,
            )
        if isinstance(outcome, SignedIn):
            response = see_other("/psu/consents")
            response.set_cookie(
                DASHBOARD_COOKIE,
                f"{outcome.walk.id}.{_secret(request, walk_id)}",
                max_age=int(WALK_LIFETIME.total_seconds()),
                path="/psu",
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
            return response
        name = await client_name_of(request, outcome.walk.client_id)
        return render_page(
            request,
            "decide",
            {"walk_id": outcome.walk.id}
            | _decision_context(name, outcome.consent, outcome.accounts),
        )

    return await _walk_errors(request, step)


@router.post("/psu/walks/{walk_id}/decision", response_class=HTMLResponse)
async def decision(
    request: Request,
    walk_id: str,
    decision: Annotated[str, Form(max_length=16)],
    accounts: Annotated[list[str] | None, Form(max_length=50)] = None,
    device: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    guard(request)
    service = find_service(request, AuthorisationService)
    secret = _secret(request, walk_id)

    async def step() -> Response:
        if decision not in ("approve", "deny"):
            return ended_page(request, "Nothing was decided", "Choose Allow or Deny.", 400)
        walk, consent = await service.view(walk_id[:40], secret)
        if consent is None:
            raise WalkError("wrong_stage")
        outcome = await service.decide(
            walk.id,
            secret,
            approve=decision == "approve",
            account_ids=[a[:40] for a in accounts or []],
            actor=psu_actor(request, walk.psu_id),
            device=device,
        )
        if isinstance(outcome, Retry):
            listed = await service.accounts_for_decision(outcome.walk, consent)
            return render_page(
                request,
                "decide",
                {"walk_id": walk.id, "error": _RETRY_MESSAGES[outcome.reason]}
                | _decision_context(await client_name_of(request, walk.client_id), consent, listed),
                400,
            )
        return _finish(request, outcome)

    return await _walk_errors(request, step)
