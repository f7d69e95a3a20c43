"""Human pages served by the API process: problem-type docs and offline API reference."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from amanat.api.errors import ApiProblem
from amanat.api.markdown import render
from amanat.api.problems import CATALOGUE, lookup

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
