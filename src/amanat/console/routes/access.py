"""The console's access log: who viewed, searched, revealed or acted on what, and when.

For compliance, admins and auditors (``access_log.read``). Filter by operator (id or
email), by kind of access and by subject (the id that was viewed or revealed).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from amanat.console.routes.common import P, Session, console_router, render, require
from amanat.platform.access_log import ACTIONS, AccessFilter, AccessLog
from amanat.platform.http.services import find_service

router = console_router()

PAGE_SIZE = 50


@router.get("/access")
async def access_log(
    request: Request,
    session: Session,
    operator: str = "",
    action: str = "",
    subject: str = "",
    before: str = "",
) -> Response:
    require(session, P.ACCESS_LOG_READ)
    operator, subject = operator.strip()[:254], subject.strip()[:200]
    action = action if action in ACTIONS else ""
    before_id = int(before) if before.isdigit() and len(before) <= 19 else None
    records, more = await find_service(request, AccessLog).browse(
        AccessFilter(
            operator=operator or None,
            action=action or None,
            subject=subject or None,
            before_id=before_id,
        ),
        PAGE_SIZE,
    )
    return render(
        request,
        "console/access.html",
        records=records,
        operator=operator,
        action=action,
        subject=subject,
        actions=ACTIONS,
        older=records[-1].id if more and records else None,
        first_page=before_id is None,
    )
