"""The console's home: who is signed in, with which roles and permissions."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from amanat.console.routes.common import (
    Session,
    console_router,
    render,
)
from amanat.identity.access import Permission

router = console_router()


@router.get("")
async def dashboard(request: Request, session: Session) -> Response:
    return render(
        request,
        "console/dashboard.html",
        roles=sorted(r.value for r in session.operator.roles),
        all_permissions=[p.value for p in Permission],
        session_expires_at=session.session.expires_at,
    )
