"""The alert inbox: what needs an operator now, from every capability's alert source,
and acknowledging one with a note (``alerts.acknowledge``; audited).

Reading needs ``payments.read``. An acknowledgement of an alert whose condition has
cleared is refused with a 404 page saying so; a second acknowledgement of the same
occurrence with a 409 and the first one's author and time (it stands).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from amanat.console import playbooks
from amanat.console.alerts import MAX_NOTE, AlertGone, AlertInbox, AlreadyAcknowledged
from amanat.console.operations import duration
from amanat.console.routes.common import (
    P,
    Session,
    console_router,
    note_access,
    render,
    require,
    see_other,
    text_field,
)
from amanat.identity.sessions import operator_actor
from amanat.kernel.errors import InvalidInput
from amanat.kernel.ids import is_id_of
from amanat.platform.http.services import find_service

router = console_router()
MAX_KEY = 200


def timeline_href(subject_id: str | None) -> str | None:
    """Where an alert's subject opens: its timeline, unless it is no transaction (a
    webhook endpoint has no timeline of its own)."""
    if not subject_id or is_id_of("webhook_endpoint", subject_id):
        return None
    return f"/console/timeline/{subject_id}"


async def _page(
    request: Request,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    failed_key: str | None = None,
    note: str = "",
) -> Response:
    inbox = await find_service(request, AlertInbox).inbox()
    return render(
        request,
        "console/alerts.html",
        status=status,
        inbox=inbox,
        notice=notice,
        error=error,
        failed_key=failed_key,
        note=note,
        max_note=MAX_NOTE,
        playbook=playbooks.href,
        timeline=timeline_href,
        age=lambda since: duration(max(inbox.at - since, timedelta(0))),
    )


@router.get("/alerts")
async def alerts(request: Request, session: Session, acknowledged: str = "") -> Response:
    require(session, P.PAYMENTS_READ)
    notice = f"Acknowledged {acknowledged[:MAX_KEY]}." if acknowledged else None
    return await _page(request, notice=notice)


@router.post("/alerts/{key}/acknowledge")
async def acknowledge(key: str, request: Request, session: Session) -> Response:
    require(session, P.ALERTS_ACKNOWLEDGE)
    form = await request.form()
    note = text_field(form, "note")
    note_access(request, action="action", subject=key[:MAX_KEY])
    inbox = find_service(request, AlertInbox)
    try:
        await inbox.acknowledge(
            operator_actor(request, session), session.operator.name, key[:MAX_KEY], note
        )
    except InvalidInput as exc:
        return await _page(
            request, status=422, error=exc.message, failed_key=key, note=note[:MAX_NOTE]
        )
    except AlreadyAcknowledged as exc:
        return await _page(request, status=409, notice=exc.message)
    except AlertGone as exc:
        return await _page(request, status=404, error=exc.message)
    return see_other(f"/console/alerts?acknowledged={quote(key[:MAX_KEY], safe='')}")
