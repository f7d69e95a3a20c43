"""The operations dashboard: what failed, where, who is impacted and how recovery goes,
over the last 15 minutes, hour or day, with tiles judged against the business
thresholds (``AMANAT_OPERATIONS__*``). Reads through the capabilities' operations
queries (console/operations.py)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from amanat.console import playbooks
from amanat.console.operations import (
    DEFAULT_WINDOW,
    WINDOWS,
    OperationsBoard,
    duration,
    percent,
    pkr,
)
from amanat.console.routes.common import P, Session, console_router, render, require
from amanat.platform.http.services import find_service

router = console_router()


@router.get("/operations")
async def operations(request: Request, session: Session, window: str = DEFAULT_WINDOW) -> Response:
    require(session, P.PAYMENTS_READ)
    chosen = window if window in WINDOWS else DEFAULT_WINDOW
    board = await find_service(request, OperationsBoard).board(chosen)
    return render(
        request,
        "console/operations.html",
        board=board,
        windows=list(WINDOWS.values()),
        pkr=pkr,
        percent=percent,
        duration=duration,
        playbook=playbooks.href,
    )
