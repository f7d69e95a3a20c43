"""The support playbooks (docs/playbooks.md) rendered in the console: one section per
payment failure code and alert kind, each at ``/console/playbooks#<code>``."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from amanat.console import playbooks
from amanat.console.routes.common import P, Session, console_router, render, require

router = console_router()


@router.get("/playbooks")
async def playbook_page(request: Request, session: Session) -> Response:
    require(session, P.PAYMENTS_READ)
    text = playbooks.load()
    return render(
        request,
        "console/playbooks.html",
        status=200 if text is not None else 404,
        body=playbooks.as_html(text) if text is not None else None,
        where=playbooks.SOURCE_URL_HINT,
    )
