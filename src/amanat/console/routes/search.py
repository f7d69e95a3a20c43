"""Finding a transaction the way a partner asks about it.

One box takes an id, an end-to-end id, a reference, a partner id, or the customer's phone
number, CNIC or IBAN. The platform's search service decides which it is; personal
identifiers are matched through blind indexes, never in clear, and the access log records
what kind of value was searched in masked form, never the value.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from amanat.console.routes.common import (
    P,
    Session,
    console_router,
    note_access,
    render,
    require,
    text_field,
)
from amanat.platform.http.services import find_service
from amanat.platform.search import SearchService

router = console_router()

MAX_QUERY = 100


@router.get("/search")
async def search_form(request: Request, session: Session) -> Response:
    require(session, P.PAYMENTS_READ)
    return render(request, "console/search.html", q="", outcome=None)


@router.post("/search")
async def search(request: Request, session: Session) -> Response:
    """A POST, so what was typed (a phone number, a CNIC) never lands in a URL: not in the
    browser's history, a proxy's log or a Referer header."""
    require(session, P.PAYMENTS_READ)
    form = await request.form()
    text = text_field(form, "q")[:MAX_QUERY]
    if not text:
        return render(request, "console/search.html", q="", outcome=None)
    outcome = await find_service(request, SearchService).search(text)
    note_access(request, action="search", detail=outcome.described)
    # A personal identifier is not echoed back into the page, only its masked form.
    shown = "" if outcome.classified.personal else text
    return render(request, "console/search.html", q=shown, outcome=outcome)
