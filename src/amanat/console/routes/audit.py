"""The audit trail, filtered by action and target."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from amanat.console.routes.common import (
    AUDIT_PAGE_SIZE,
    MAX_CURSOR,
    P,
    Session,
    console_router,
    render,
    require,
)
from amanat.platform.audit.queries import AuditQueries
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.pagination import decode_cursor, encode_cursor
from amanat.platform.http.services import find_service

router = console_router()


@router.get("/audit")
async def audit(
    request: Request,
    session: Session,
    action: str = "",
    target_id: str = "",
    cursor: str = "",
) -> Response:
    require(session, P.AUDIT_READ)
    action, target_id = action.strip()[:64], target_id.strip()[:64]
    if len(cursor) > MAX_CURSOR:
        raise ApiProblem("invalid_cursor")
    after = decode_cursor(cursor or None, required_keys=frozenset({"seq"}))
    before_seq = int(after["seq"]) if after else None
    page = await find_service(request, AuditQueries).records(
        AUDIT_PAGE_SIZE, before_seq, action or None, target_id or None
    )
    last = page.items[-1] if page.items else None
    next_cursor = encode_cursor({"seq": last.seq}) if page.has_more and last else None
    return render(
        request,
        "console/audit.html",
        records=page.items,
        action=action,
        target_id=target_id,
        next_cursor=next_cursor,
        first_page=not cursor,
    )
