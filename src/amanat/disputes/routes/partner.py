"""What a merchant does with its disputes: ``/v1/disputes``, open, read, add evidence,
respond, accept, withdraw."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import Field
from starlette.responses import Response

from amanat.auth.service import AccessContext
from amanat.auth.verification import client_actor, require_scope
from amanat.disputes.domain.disputes import REASONS, DisputeStatus, Opener
from amanat.disputes.domain.evidence import ALLOWED_TYPES, EXTENSIONS, TEXT
from amanat.disputes.services.disputes import DisputePage, DisputeService, EvidenceFile
from amanat.disputes.views import evidence_view
from amanat.platform.http.pagination import CursorParam, LimitParam, next_cursor, page_position
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.schemas import ListResponse, RequestModel, ResponseModel
from amanat.platform.http.services import find_service
from amanat.platform.http.types import Amount
from amanat.platform.idempotency.protocol import IdempotencyKeyHeader, run_idempotent

router = APIRouter(tags=["disputes"])
DisputesRead = Annotated[AccessContext, Depends(require_scope("disputes:read"))]
DisputesWrite = Annotated[AccessContext, Depends(require_scope("disputes:write", policy="write"))]

EVIDENCE_PATH = "/v1/disputes/{dispute_id}/evidence"
ReasonName = Literal[
    "not_received",
    "duplicate",
    "fraud",
    "wrong_amount",
    "unauthorised",
    "service_not_provided",
    "other",
]
REASON_TEXT = "; ".join(f"`{reason.value}`: {meaning}" for reason, meaning in REASONS.items())
EvidenceType = Literal["application/pdf", "image/png", "image/jpeg", "text/plain"]


class DisputeIn(RequestModel):
    payment_id: str = Field(min_length=1, max_length=40, description="The payout or collection.")
    reason: ReasonName = Field(description=REASON_TEXT)
    amount: Amount | None = Field(
        default=None,
        description="Part of the payment, in paisa; omit to dispute all that is left (the "
        "amount less refunds and other disputes).",
    )


class ExplanationIn(RequestModel):
    explanation: str = Field(
        min_length=1,
        max_length=5000,
        description="What happened, in your words (kept encrypted at rest).",
    )


class EvidenceOut(ResponseModel):
    id: str
    object: Literal["dispute_evidence"]
    dispute_id: str
    content_type: EvidenceType
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="Hex SHA-256 of the file as received.")
    uploaded_by: Literal["merchant", "operator", "rail", "amanat"]
    created_at: str


class ResponseOut(ResponseModel):
    explanation: str | None
    submitted_by: Literal["merchant", "operator"] | None
    submitted_at: str


class DisputeOut(ResponseModel):
    id: str
    object: Literal["dispute"]
    payment_id: str
    payment_type: Literal["collection", "payout"]
    status: DisputeStatus = Field(
        description="needs_response → under_review → won | lost; accepted (you accepted "
        "it) and withdrawn (its opener took it back) from either open state; "
        "needs_response → lost when nobody answered by `respond_by_date`."
    )
    reason: ReasonName
    amount: int = Field(description="Disputed, in paisa.")
    currency: Literal["PKR"]
    held_amount: int = Field(
        description="Held out of your available balance for this dispute now (collections)."
    )
    hold_shortfall: int = Field(
        description="What your available balance could not cover when the dispute opened "
        "(collections); taken, as far as it can be, if the dispute is lost or accepted."
    )
    released_amount: int = Field(description="Given back to your balance (won, withdrawn).")
    reversed_amount: int = Field(description="Sent back to the payer (lost, accepted).")
    returned_amount: int = Field(
        description="A won payout dispute: the amount the rail returned to your balance."
    )
    opened_by: Literal["merchant", "operator", "rail"]
    respond_by_date: str = Field(description="Asia/Karachi date: answer by the end of it.")
    decide_by_date: str = Field(description="Asia/Karachi date the decision is due by.")
    response: ResponseOut | None
    evidence: list[EvidenceOut]
    close_note: str | None
    version: int
    created_at: str
    updated_at: str
    closed_at: str | None


OPEN_EXAMPLES: dict[str, Any] = {
    "partial": {
        "summary": "Dispute PKR 500.00 of a collection the payer says was charged twice",
        "value": {
            "payment_id": "pay_01JDX3M9Q5W8C2V7T4K6B0N1ZP",
            "reason": "duplicate",
            "amount": 50_000,
        },
    }
}
EXPLANATION_EXAMPLES: dict[str, Any] = {
    "delivered": {
        "summary": "The goods were delivered",
        "value": {
            "explanation": "Order 7781 was delivered on 24 November; the courier's signed "
            "receipt is attached as evidence."
        },
    }
}
EVIDENCE_EXAMPLE = "Courier receipt: order 7781 delivered 2026-11-24 14:05, signed by the payer.\n"


def evidence_body(summary: str) -> dict[str, Any]:
    """The request body of an evidence upload, as published (one media type, one example;
    the description names the others)."""
    return {
        "requestBody": {
            "required": True,
            "description": "The file itself, as the body, with its Content-Type: "
            + ", ".join(ALLOWED_TYPES)
            + ".",
            "content": {
                TEXT: {
                    "schema": {"type": "string"},
                    "examples": {"receipt": {"summary": summary, "value": EVIDENCE_EXAMPLE}},
                }
            },
        }
    }


def file_response(found: EvidenceFile) -> Response:
    meta = found.meta
    return Response(
        found.content,
        media_type=meta.content_type,
        headers={
            "Content-Disposition": (
                f'attachment; filename="{meta.id}.{EXTENSIONS.get(meta.content_type, "bin")}"'
            ),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "ETag": f'"{meta.sha256}"',
        },
    )


FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file as it was uploaded.",
        "content": {media: {"schema": {"type": "string"}} for media in ALLOWED_TYPES},
    }
}


def page_body(page: DisputePage, *, operator: bool = False) -> dict[str, Any]:
    cursor = page.next_cursor
    return {
        "object": "list",
        "data": [d.operator_view() if operator else d.view() for d in page.items],
        "has_more": page.has_more,
        "next_cursor": next_cursor(page.has_more, *(cursor or (None, None))),
    }


@router.post(
    "/v1/disputes",
    status_code=201,
    response_model=DisputeOut,
    summary="Dispute a payout or a collection",
)
async def open_dispute(
    body: Annotated[DisputeIn, Body(openapi_examples=OPEN_EXAMPLES)],
    request: Request,
    context: DisputesWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Opens a dispute on one of your succeeded payouts (the payee says the money never
    arrived) or collections (the payer disputes it), for all of it or `amount`. A
    collection's disputed amount moves out of your `available` balance at once into a
    dispute hold (as much as the balance covers: the rest is `hold_shortfall`); a payout
    dispute holds nothing. Answer by `respond_by_date` (Pakistan business days).

    Scope `disputes:write`. Requires an `Idempotency-Key`. Errors:
    `payment_not_disputable` (409: not succeeded, or a refund),
    `dispute_amount_exceeds_remaining` (409), `not_found` (404).
    """
    service = find_service(request, DisputeService)

    async def operation() -> tuple[int, dict[str, Any]]:
        detail = await service.open(
            client_actor(request, context),
            payment_id=body.payment_id,
            reason=body.reason,
            amount=body.amount,
            opened_by=Opener.MERCHANT,
            partner_id=context.partner_id,
        )
        return 201, detail.view()

    return await run_idempotent(request, context, idempotency_key, operation)


@router.get(
    "/v1/disputes",
    response_model=ListResponse[DisputeOut],
    summary="List your disputes, newest first",
)
async def list_disputes(
    request: Request,
    context: DisputesRead,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
    status: Annotated[
        DisputeStatus | None,
        Query(openapi_examples={"open": {"value": "needs_response"}}),
    ] = None,
    payment_id: Annotated[
        str | None,
        Query(max_length=40, openapi_examples={"payment": {"value": "pay_01JDX3M9Q5W8C2V7"}}),
    ] = None,
) -> Response:
    """Your disputes, newest first, filtered by `status` and `payment_id`.

    Scope `disputes:read`. Pages with `limit` (1-100) and the `next_cursor` of the previous
    page. Errors: `invalid_cursor` (400).
    """
    page = await find_service(request, DisputeService).list(
        status=status.value if status else None,
        partner_id=context.partner_id,
        payment_id=payment_id,
        cursor=page_position(cursor),
        limit=limit,
    )
    return JsonResponse(page_body(page))


@router.get("/v1/disputes/{dispute_id}", response_model=DisputeOut, summary="Retrieve a dispute")
async def get_dispute(dispute_id: str, request: Request, context: DisputesRead) -> Response:
    """The dispute as it is now: its status, deadlines, money and evidence.

    Scope `disputes:read`. Another merchant's dispute answers `not_found` (404).
    """
    detail = await find_service(request, DisputeService).get(
        dispute_id, partner_id=context.partner_id
    )
    return JsonResponse(detail.view())


@router.post(
    EVIDENCE_PATH,
    status_code=201,
    response_model=EvidenceOut,
    summary="Add an evidence file to a dispute",
    openapi_extra=evidence_body("A courier's delivery receipt, as plain text"),
)
async def add_evidence(
    dispute_id: str,
    request: Request,
    context: DisputesWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """The body is the file itself with its `Content-Type`: `application/pdf`,
    `image/png`, `image/jpeg` or `text/plain` (UTF-8), at most 5 MB unless configured
    otherwise. Its first bytes must match its type. It is kept encrypted at rest, with its
    SHA-256. Add evidence while the dispute is `needs_response`, then respond.

    Scope `disputes:write`. Requires an `Idempotency-Key`. Errors:
    `evidence_type_not_allowed` (415), `evidence_content_mismatch` (422),
    `evidence_empty` (422), `evidence_too_large` (413), `evidence_not_accepted` (409: no
    longer awaiting your response), `evidence_limit_reached` (409), `not_found` (404).
    """
    service = find_service(request, DisputeService)

    async def operation() -> tuple[int, dict[str, Any]]:
        meta = await service.add_evidence(
            client_actor(request, context),
            dispute_id,
            request.headers.get("content-type"),
            await request.body(),
            partner_id=context.partner_id,
        )
        return 201, evidence_view(meta)

    return await run_idempotent(request, context, idempotency_key, operation)


@router.get(
    "/v1/disputes/{dispute_id}/evidence/{evidence_id}",
    summary="Download an evidence file",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def download_evidence(
    dispute_id: str, evidence_id: str, request: Request, context: DisputesRead
) -> Response:
    """The file as uploaded, with its content type; `ETag` is its SHA-256.

    Scope `disputes:read`. Errors: `not_found` (404) for another merchant's dispute.
    """
    found = await find_service(request, DisputeService).evidence_file(
        dispute_id, evidence_id, partner_id=context.partner_id
    )
    return file_response(found)


@router.post(
    "/v1/disputes/{dispute_id}/respond",
    response_model=DisputeOut,
    summary="Respond to a dispute: it goes under review",
)
async def respond(
    dispute_id: str,
    body: Annotated[ExplanationIn, Body(openapi_examples=EXPLANATION_EXAMPLES)],
    request: Request,
    context: DisputesWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Submits your response: the explanation and the evidence added so far. The
    dispute goes `under_review` and takes no more evidence from you.

    Scope `disputes:write`. Requires an `Idempotency-Key`. Errors:
    `dispute_transition_refused` (409: already responded or closed), `not_found` (404).
    """
    service = find_service(request, DisputeService)

    async def operation() -> tuple[int, dict[str, Any]]:
        detail = await service.respond(
            client_actor(request, context),
            dispute_id,
            body.explanation,
            partner_id=context.partner_id,
        )
        return 200, detail.view()

    return await run_idempotent(request, context, idempotency_key, operation)


@router.post(
    "/v1/disputes/{dispute_id}/accept",
    response_model=DisputeOut,
    summary="Accept a dispute: the payer gets the money",
)
async def accept(
    dispute_id: str,
    request: Request,
    context: DisputesWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Accepts the dispute (before or after responding). A collection's held amount goes
    back to the payer (`reversed_amount`); a payout's stays paid. No body.

    Scope `disputes:write`. Requires an `Idempotency-Key`. Errors:
    `dispute_transition_refused` (409: closed), `not_found` (404).
    """
    service = find_service(request, DisputeService)

    async def operation() -> tuple[int, dict[str, Any]]:
        detail = await service.accept(
            client_actor(request, context), dispute_id, partner_id=context.partner_id
        )
        return 200, detail.view()

    return await run_idempotent(request, context, idempotency_key, operation)


@router.post(
    "/v1/disputes/{dispute_id}/withdraw",
    response_model=DisputeOut,
    summary="Withdraw a dispute you opened",
)
async def withdraw(
    dispute_id: str,
    request: Request,
    context: DisputesWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Takes back a dispute you opened; a collection's held amount returns to your
    balance (`released_amount`). No body.

    Scope `disputes:write`. Requires an `Idempotency-Key`. Errors:
    `dispute_withdrawal_refused` (409: someone else opened it),
    `dispute_transition_refused` (409: closed), `not_found` (404).
    """
    service = find_service(request, DisputeService)

    async def operation() -> tuple[int, dict[str, Any]]:
        detail = await service.withdraw(
            client_actor(request, context),
            dispute_id,
            by=Opener.MERCHANT,
            partner_id=context.partner_id,
        )
        return 200, detail.view()

    return await run_idempotent(request, context, idempotency_key, operation)
