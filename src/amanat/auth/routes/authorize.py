"""The authorization endpoint for the authorization-code grant (PKCE S256 only).

In the sandbox it plays the bank: a page shows what the TPP asks for, the tester picks a
sandbox customer (PSU) and approves or declines. In production the PSU must be
authenticated by the bank's own login, which is not part of amanat; the endpoint then
answers 501 with a problem document instead of pretending.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from amanat.auth.errors import OAuthError
from amanat.auth.service import OAuthService
from amanat.identity.queries import IdentityQueries
from amanat.platform.http import pages as http_pages
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.services import find_service
from amanat.platform.settings import Settings

TEMPLATES = Jinja2Templates(directory=str(Path(http_pages.__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)

SANDBOX_PSUS = {
    "psu_ayesha": "Ayesha Khan (sandbox)",
    "psu_bilal": "Bilal Ahmed (sandbox)",
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


def _redirect(redirect_uri: str, issuer: str, **params: str | None) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v is not None} | {"iss": issuer})
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{query}", status_code=303)


async def _validated_client(request: Request, params: dict[str, str]) -> tuple[str, str]:
    """Checks that must pass before we may redirect anywhere (RFC 6749 §4.1.2.1)."""
    if find_service(request, Settings).is_production:
        raise ApiProblem("psu_authentication_not_configured", status=501)
    client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
    client, partner = await find_service(request, IdentityQueries).client_and_partner(client_id)
    # A revoked client or a suspended partner is as good as unknown: never redirect to it.
    if client is None or partner is None or not client.is_active or not partner.is_active:
        raise ApiProblem("validation_error", "Unknown or inactive client_id.", status=400)
    if redirect_uri not in client.redirect_uris:
        raise ApiProblem(
            "validation_error", "redirect_uri is not registered for this client.", status=400
        )
    return client.name, redirect_uri


@router.get("/oauth/authorize", response_class=HTMLResponse)
async def authorize_page(request: Request) -> Response:
    params = {k: request.query_params[k] for k in _PARAMS if k in request.query_params}
    client_name, redirect_uri = await _validated_client(request, params)
    issuer = find_service(request, OAuthService).config.issuer
    if params.get("response_type") != "code":
        return _redirect(
            redirect_uri, issuer, error="unsupported_response_type", state=params.get("state")
        )
    if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
        return _redirect(
            redirect_uri,
            issuer,
            error="invalid_request",
            error_description="PKCE with code_challenge_method=S256 is required.",
            state=params.get("state"),
        )
    if params.get("consent_id"):
        # A PSU authorising an open-banking consent: the bank's hosted consent pages take
        # it from here (sign-in, one-time code, accounts, approve or deny).
        return RedirectResponse(f"/psu/authorize?{urlencode(params)}", status_code=303)
    return TEMPLATES.TemplateResponse(
        request,
        "authorize.html",
        {
            "client_name": client_name,
            "params": params,
            "psus": SANDBOX_PSUS,
            "scopes": (params.get("scope") or "").split(),
        },
    )


@router.post("/oauth/authorize")
async def authorize_decision(request: Request) -> Response:
    form = await request.form()
    params = {k: str(form[k]) for k in _PARAMS if k in form}
    _client_name, redirect_uri = await _validated_client(request, params)
    issuer = find_service(request, OAuthService).config.issuer
    state = params.get("state")
    if params.get("response_type") != "code":
        return _redirect(redirect_uri, issuer, error="unsupported_response_type", state=state)
    if params.get("consent_id"):
        # Consents are decided only in the bank's consent pages (/psu/authorize), after
        # the PSU signed in and passed the one-time code.
        return _redirect(
            redirect_uri,
            issuer,
            error="invalid_request",
            error_description="Consents are authorised through GET /oauth/authorize.",
            state=state,
        )
    if form.get("decision") != "approve":
        return _redirect(redirect_uri, issuer, error="access_denied", state=state)
    subject = str(form.get("psu", ""))
    if subject not in SANDBOX_PSUS:
        return _redirect(redirect_uri, issuer, error="access_denied", state=state)
    try:
        code = await find_service(request, OAuthService).issue_code(
            client_id=params["client_id"],
            redirect_uri=redirect_uri,
            scope=params.get("scope"),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method"),
            subject=subject,
            consent_id=params.get("consent_id"),
        )
    except OAuthError as exc:
        return _redirect(
            redirect_uri, issuer, error=exc.error, error_description=exc.description, state=state
        )
    return _redirect(redirect_uri, issuer, code=code, state=state)
