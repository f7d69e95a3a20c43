"""Operations' side of disputes, under ``/operator/v1/disputes``: every merchant's
disputes with their history, opening one, adding evidence, responding for a merchant,
withdrawing one operations opened, and deciding. Every change is audited."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Security
from pydantic import Field
from starlette.responses import Response

from amanat.disputes.domain.disputes import DisputeStatus, Opener
from amanat.disputes.routes.partner import (
    FILE_RESPONSES,
    DisputeOut,
    EvidenceOut,
    ExplanationIn,
    ReasonName,
    evidence_body,
    file_response,
    page_body,
)
from amanat.disputes.services.disputes import DisputeService
from amanat.disputes.views import evidence_view
from amanat.identity.access import Permission
from amanat.identity.services.operators import OperatorSession
from amanat.identity.sessions import operator_actor, require_permission, session_cookie
from amanat.platform.http.pagination import CursorParam, LimitParam, page_position
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.schemas import ListResponse, RequestModel, ResponseModel
from amanat.platform.http.services import find_service
from amanat.platform.http.types import Amount

EVIDENCE_PATH = "/operator/v1/disputes/{dispute_id}/evidence"

router = APIRouter(
    prefix="/operator/v1", tags=["operator"], dependencies=[Security(session_cookie)]
)
Reader = Annotated[OperatorSession, Depends(require_permission(Permission.DISPUTES_READ))]
Writer = Annotated[OperatorSession, Depends(require_permission(Permission.DISPUTES_WRITE))]


class OperatorDisputeIn(RequestModel):
    payment_id: str = Field(min_length=1, max_length=40)
    reason: ReasonName
    amount: Amount | None = Field(default=None, description="Omit: all that is left.")


class DecisionIn(RequestModel):
    outcome: Literal["won", "lost"] = Field(
        description="`won`: for the merchant; `lost`: for the payer (or payee)."
    )
    note: str = Field(min_length=3, max_length=500, description="Why; kept with the decision.")


class TransitionOut(ResponseModel):
    seq: int
    from_status: str | None
    to_status: str
    action: str
    actor_type: str
    actor_id: str
    request_id: str | None
    note: str | None
    journal_ids: list[str]
    at: str


class OperatorEvidenceOut(EvidenceOut):
    uploaded_by_id: str


class OperatorDisputeOut(DisputeOut):
    evidence: list[OperatorEvidenceOut]  # type: ignore[assignment]
    partner_id: str
    rail_dispute_id: str | None
    opener_id: str
    history: list[TransitionOut]


OPEN_EXAMPLES: dict[str, Any] = {
    "fraud": {
        "summary": "A payer's bank reported PKR 500.00 of a collection as fraud by phone",
        "value": {
            "payment_id": "pay_01JDX3M9Q5W8C2V7T4K6B0N1ZP",
            "reason": "fraud",
            "amount": 50_000,
        },
    }
}
RESPOND_EXAMPLES: dict[str, Any] = {
    "by_phone": {
        "summary": "The merchant's answer, given by phone",
        "value": {"explanation": "The merchant says the order was delivered; receipt attached."},
    }
}
DECISION_EXAMPLES: dict[str, Any] = {
    "won": {
        "summary": "The evidence shows delivery",
        "value": {"outcome": "won", "note": "Signed courier receipt matches the order."},
    }
}


@router.get(
    "/disputes",
    response_model=ListResponse[OperatorDisputeOut],
    summary="Every merchant's disputes, newest first",
)
async def list_disputes(
    request: Request,
    _session: Reader,
    status: Annotated[
        DisputeStatus | None, Query(openapi_examples={"open": {"value": "needs_response"}})
    ] = None,
    partner_id: Annotated[
        str | None, Query(max_length=40, openapi_examples={"partner": {"value": "ptr_01JD"}})
    ] = None,
    payment_id: Annotated[
        str | None, Query(max_length=40, openapi_examples={"payment": {"value": "pay_01JD"}})
    ] = None,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
) -> Response:
    """Filtered by `status`, `partner_id` and `payment_id`; each with its history.

    Session cookie and permission `disputes.read`.
    """
    page = await find_service(request, DisputeService).list(
        status=status.value if status else None,
        partner_id=partner_id,
        payment_id=payment_id,
        cursor=page_position(cursor),
        limit=limit,
    )
    return JsonResponse(page_body(page, operator=True))


@router.get("/disputes/{dispute_id}", response_model=OperatorDisputeOut, summary="One dispute")
async def get_dispute(dispute_id: str, request: Request, _session: Reader) -> Response:
    """With its evidence (metadata), its history of transitions (who, when, from, to,
    note, journals) and the response.

    Session cookie and permission `disputes.read`. Errors: `not_found` (404).
    """
    detail = await find_service(request, DisputeService).get(dispute_id)
    return JsonResponse(detail.operator_view())


@router.get(
    "/disputes/{dispute_id}/evidence/{evidence_id}",
    summary="Download an evidence file (audited)",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def download_evidence(
    dispute_id: str, evidence_id: str, request: Request, session: Reader
) -> Response:
    """The file as uploaded; each download is audited.

    Session cookie and permission `disputes.read`. Errors: `not_found` (404).
    """
    found = await find_service(request, DisputeService).evidence_file(
        dispute_id, evidence_id, actor=operator_actor(request, session)
    )
    return file_response(found)


@router.post(
    "/disputes",
    status_code=201,
    response_model=OperatorDisputeOut,
    summary="Open a dispute for a payer or a merchant",
)
async def open_dispute(
    body: Annotated[OperatorDisputeIn, Body(openapi_examples=OPEN_EXAMPLES)],
    request: Request,
    session: Writer,
) -> Response:
    """Opens a dispute on any merchant's succeeded payout or collection (a complaint that
    reached operations). Operations may withdraw it later; the merchant answers it.

    Session cookie, `X-CSRF-Token` and permission `disputes.write`. Errors:
    `payment_not_disputable`, `dispute_amount_exceeds_remaining` (409), `not_found` (404).
    """
    detail = await find_service(request, DisputeService).open(
        operator_actor(request, session),
        payment_id=body.payment_id,
        reason=body.reason,
        amount=body.amount,
        opened_by=Opener.OPERATOR,
    )
    return JsonResponse(detail.operator_view(), status_code=201)


@router.post(
    "/disputes/{dispute_id}/evidence",
    status_code=201,
    response_model=OperatorEvidenceOut,
    summary="Add evidence to an open dispute",
    openapi_extra=evidence_body("A note of a phone call, as plain text"),
)
async def add_evidence(dispute_id: str, request: Request, session: Writer) -> Response:
    """As the merchant's upload (the file as the body, with its `Content-Type`), also
    while the dispute is under review.

    Session cookie, `X-CSRF-Token` and permission `disputes.write`.
    """
    actor = operator_actor(request, session)
    meta = await find_service(request, DisputeService).add_evidence(
        actor,
        dispute_id,
        request.headers.get("content-type"),
        await request.body(),
        partner_id=None,
    )
    return JsonResponse(
        evidence_view(meta) | {"uploaded_by_id": meta.uploaded_by_id}, status_code=201
    )


@router.post(
    "/disputes/{dispute_id}/respond",
    response_model=OperatorDisputeOut,
    summary="Submit the merchant's response for it",
)
async def respond(
    dispute_id: str,
    body: Annotated[ExplanationIn, Body(openapi_examples=RESPOND_EXAMPLES)],
    request: Request,
    session: Writer,
) -> Response:
    """The merchant's response given another way (by phone, by letter); the dispute goes
    `under_review`.

    Session cookie, `X-CSRF-Token` and permission `disputes.write`. Errors:
    `dispute_transition_refused` (409).
    """
    detail = await find_service(request, DisputeService).respond_as_operator(
        operator_actor(request, session), dispute_id, body.explanation
    )
    return JsonResponse(detail.operator_view())


@router.post(
    "/disputes/{dispute_id}/withdraw",
    response_model=OperatorDisputeOut,
    summary="Withdraw a dispute operations opened",
)
async def withdraw(dispute_id: str, request: Request, session: Writer) -> Response:
    """A collection's held amount returns to the merchant. No body.

    Session cookie, `X-CSRF-Token` and permission `disputes.write`. Errors:
    `dispute_withdrawal_refused` (409: the merchant or the rail opened it).
    """
    detail = await find_service(request, DisputeService).withdraw(
        operator_actor(request, session), dispute_id, by=Opener.OPERATOR
    )
    return JsonResponse(detail.operator_view())


@router.post(
    "/disputes/{dispute_id}/decide",
    response_model=OperatorDisputeOut,
    summary="Decide a dispute under review",
)
async def decide(
    dispute_id: str,
    body: Annotated[DecisionIn, Body(openapi_examples=DECISION_EXAMPLES)],
    request: Request,
    session: Writer,
) -> Response:
    """`won`: a collection's held amount returns to the merchant, a payout's amount comes
    back to it; `lost`: a collection's held amount (and what the merchant's balance can
    cover of its shortfall) goes to the payer. Only once it is `under_review`.

    Session cookie, `X-CSRF-Token` and permission `disputes.write`. Errors:
    `dispute_transition_refused` (409).
    """
    detail = await find_service(request, DisputeService).decide(
        operator_actor(request, session), dispute_id, body.outcome, body.note
    )
    return JsonResponse(detail.operator_view())
