"""The reconciliation breaks queue: what did not match, why, and its resolution.

Reads through reconciliation's service; resolving a break (``reconciliation.write``)
goes through the same audited use case as the operator API, with its reason.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from amanat.console.routes.common import (
    P,
    Session,
    console_router,
    parse_before,
    render,
    require,
    text_field,
)
from amanat.identity.sessions import operator_actor
from amanat.kernel.errors import DomainError
from amanat.platform.http.errors import domain_error_status
from amanat.platform.http.services import find_service
from amanat.reconciliation.services.reconciliation import RESOLUTIONS, ReconciliationService

router = console_router()

PAGE_SIZE = 50
STATUSES = ("open", "resolved")


async def _page(
    request: Request,
    *,
    status_filter: str,
    before: str = "",
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> Response:
    rows, more = await find_service(request, ReconciliationService).breaks(
        status=status_filter or None,
        kind=None,
        source=None,
        payment_id=None,
        limit=PAGE_SIZE,
        before=parse_before(before),
    )
    last = rows[-1] if rows else None
    return render(
        request,
        "console/reconciliation.html",
        status=status,
        breaks=rows,
        status_filter=status_filter,
        statuses=STATUSES,
        resolutions=RESOLUTIONS,
        older=f"{last.opened_at.isoformat()}|{last.id}" if more and last else None,
        notice=notice,
        error=error,
    )


@router.get("/reconciliation")
async def breaks(
    request: Request, session: Session, status: str = "open", before: str = ""
) -> Response:
    require(session, P.RECONCILIATION_READ)
    return await _page(request, status_filter=status if status in STATUSES else "", before=before)


@router.post("/reconciliation/breaks/{break_id}/resolve")
async def resolve(break_id: str, request: Request, session: Session) -> Response:
    require(session, P.RECONCILIATION_WRITE)
    form = await request.form()
    try:
        row = await find_service(request, ReconciliationService).resolve(
            operator_actor(request, session),
            break_id[:40],
            text_field(form, "resolution"),
            text_field(form, "reason")[:600],
            counterpart=text_field(form, "counterpart")[:64] or None,
        )
    except DomainError as exc:
        return await _page(
            request, status_filter="open", status=domain_error_status(exc), error=exc.message
        )
    return await _page(
        request,
        status_filter="open",
        notice=f"Break {row.id} resolved: {row.resolution}"
        + (f" (journal {row.journal_id})" if row.journal_id else "")
        + ".",
    )
