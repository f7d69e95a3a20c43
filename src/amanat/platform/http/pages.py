"""Human pages served by the API process: problem-type docs, offline API reference, and
the sandbox TPP's OAuth redirect page."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.markdown import render
from amanat.platform.http.problems import CATALOGUE, lookup

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters["markdown"] = render

router = APIRouter(include_in_schema=False)


@router.get("/problems", response_class=HTMLResponse)
async def problem_index(request: Request) -> HTMLResponse:
    entries = sorted(CATALOGUE.values(), key=lambda e: e.code)
    return TEMPLATES.TemplateResponse(request, "problems.html", {"entries": entries})


@router.get("/problems/{code}", response_class=HTMLResponse)
async def problem_page(request: Request, code: str) -> HTMLResponse:
    entry = lookup(code)
    if entry is None:
        raise ApiProblem("not_found", f"No problem type named '{code}'.")
    example = entry.example_document(str(request.base_url).rstrip("/"))
    return TEMPLATES.TemplateResponse(
        request,
        "problem.html",
        {"entry": entry, "example": json.dumps(example, indent=2, ensure_ascii=False)},
    )


@router.get("/docs", response_class=HTMLResponse)
async def api_reference(request: Request) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "docs.html", {})


@router.get("/sandbox/oauth/callback", response_class=HTMLResponse)
async def sandbox_oauth_callback(request: Request) -> HTMLResponse:
    """The seeded sandbox TPP's redirect_uri: shows what the authorization server sent back
    (code and state, or the error), so a developer can take the code to /oauth/token."""
    params = request.query_params
    shown = {
        name: params.get(name)
        for name in ("code", "state", "iss", "error", "error_description")
        if params.get(name)
    }
    token_url = str(request.app.state.settings.http.public_url) + "/oauth/token"
    return TEMPLATES.TemplateResponse(
        request, "oauth_callback.html", {"shown": shown, "token_url": token_url}
    )
