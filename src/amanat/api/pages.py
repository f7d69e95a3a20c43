"""Human pages served by the API process: problem-type docs and offline API reference."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from amanat.api.errors import ApiProblem
from amanat.api.problems import CATALOGUE, lookup

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

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
    return TEMPLATES.TemplateResponse(request, "problem.html", {"entry": entry})


@router.get("/docs", response_class=HTMLResponse)
async def api_reference(request: Request) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "docs.html", {})
