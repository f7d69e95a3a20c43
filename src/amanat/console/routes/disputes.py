"""Disputes for operations: the queue with its deadlines, one dispute's story, and the
actions an operator takes on it (open one for a merchant, submit the merchant's response
given by phone, accept, decide won or lost), each through the disputes service, which
checks the transition, moves the money and audits it."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from amanat.console.routes.common import (
    P,
    Session,
    console_router,
    note_access,
    parse_before,
    render,
    require,
    see_other,
    text_field,
)
from amanat.disputes.domain.disputes import REASONS, DisputeStatus, Opener
from amanat.disputes.services.disputes import DisputeService
from amanat.identity.sessions import operator_actor
from amanat.kernel.errors import DomainError, InvalidInput
from amanat.platform.http.errors import domain_error_status
from amanat.platform.http.services import find_service

router = console_router()

PAGE_SIZE = 50
STATUSES = [s.value for s in DisputeStatus]


@router.get("/disputes")
async def disputes(
    request: Request, session: Session, status: str = "", before: str = ""
) -> Response:
    require(session, P.DISPUTES_READ)
    status = status if status in STATUSES else ""
    page = await find_service(request, DisputeService).list(
        status=status or None, cursor=parse_before(before), limit=PAGE_SIZE
    )
    older = f"{page.next_cursor[0].isoformat()}|{page.next_cursor[1]}" if page.next_cursor else None
    return render(
        request,
        "console/disputes.html",
        disputes=[d.dispute for d in page.items],
        status_filter=status,
        statuses=STATUSES,
        reasons=[r.value for r in REASONS],
        older=older,
    )


async def _detail(
    request: Request,
    dispute_id: str,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> Response:
    detail = await find_service(request, DisputeService).get(dispute_id[:40])
    return render(
        request,
        "console/dispute.html",
        status=status,
        d=detail.dispute,
        evidence=detail.evidence,
        history=detail.history,
        explanation=detail.explanation,
        is_open=detail.dispute.status in {DisputeStatus.NEEDS_RESPONSE, DisputeStatus.UNDER_REVIEW},
        notice=notice,
        error=error,
    )


@router.get("/disputes/{dispute_id}")
async def dispute(dispute_id: str, request: Request, session: Session) -> Response:
    require(session, P.DISPUTES_READ)
    return await _detail(request, dispute_id)


@router.post("/disputes")
async def open_dispute(request: Request, session: Session) -> Response:
    """Operations opens a dispute for a merchant (a complaint that came by phone)."""
    require(session, P.DISPUTES_WRITE)
    form = await request.form()
    amount_text = text_field(form, "amount")
    try:
        amount = int(amount_text) if amount_text else None
    except ValueError:
        amount = -1
    try:
        if amount is not None and amount <= 0:
            raise InvalidInput("The amount is a whole number of paisa above zero.")
        opened = await find_service(request, DisputeService).open(
            operator_actor(request, session),
            payment_id=text_field(form, "payment_id")[:40],
            reason=text_field(form, "reason")[:40],
            amount=amount,
            opened_by=Opener.OPERATOR,
        )
    except DomainError as exc:
        page = await disputes(request, session)
        page.status_code = domain_error_status(exc)
        note_access(request, detail=f"open refused: {exc.code}")
        return page
    return see_other(f"/console/disputes/{opened.dispute.id}")


async def _act(request: Request, session: Session, dispute_id: str, action: str) -> Response:
    require(session, P.DISPUTES_WRITE)
    form = await request.form()
    service = find_service(request, DisputeService)
    actor = operator_actor(request, session)
    try:
        if action == "respond":
            await service.respond_as_operator(actor, dispute_id, text_field(form, "explanation"))
        elif action == "accept":
            await service.accept(actor, dispute_id, partner_id=None)
        elif action == "withdraw":
            await service.withdraw(actor, dispute_id, by=Opener.OPERATOR)
        else:
            await service.decide(
                actor, dispute_id, text_field(form, "outcome"), text_field(form, "note")
            )
    except DomainError as exc:
        return await _detail(
            request, dispute_id, status=domain_error_status(exc), error=exc.message
        )
    return await _detail(request, dispute_id, notice=f"Done: {action}.")


@router.post("/disputes/{dispute_id}/respond")
async def respond(dispute_id: str, request: Request, session: Session) -> Response:
    return await _act(request, session, dispute_id[:40], "respond")


@router.post("/disputes/{dispute_id}/accept")
async def accept(dispute_id: str, request: Request, session: Session) -> Response:
    return await _act(request, session, dispute_id[:40], "accept")


@router.post("/disputes/{dispute_id}/withdraw")
async def withdraw(dispute_id: str, request: Request, session: Session) -> Response:
    return await _act(request, session, dispute_id[:40], "withdraw")


@router.post("/disputes/{dispute_id}/decide")
async def decide(dispute_id: str, request: Request, session: Session) -> Response:
    return await _act(request, session, dispute_id[:40], "decide")
