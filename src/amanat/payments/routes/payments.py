"""Payouts and collections (``/v1/payments``), refunds (``/v1/refunds``), the balance."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import Field, model_validator
from starlette.responses import Response

from amanat.auth.domain import Caller
from amanat.auth.service import AccessContext
from amanat.auth.verification import (
    PaymentsRead,
    PaymentsWrite,
    client_actor,
    require_scope,
)
from amanat.kernel.clock import Clock, format_timestamp
from amanat.payments import views
from amanat.payments.batching import PayoutBatcher
from amanat.payments.domain.payments import RAIL_FAILURE_CODES, Payment, PaymentStatus
from amanat.payments.service import AccountIn, PaymentService
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.openapi import declared_enum
from amanat.platform.http.pagination import (
    CursorParam,
    LimitParam,
    next_cursor,
    page_position,
    parse_time,
)
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.schemas import ListResponse, RequestModel, ResponseModel
from amanat.platform.http.services import find_service
from amanat.platform.http.types import Amount, Iban, Metadata, RaastId
from amanat.platform.idempotency.ports import IdempotencyRecord
from amanat.platform.idempotency.protocol import (
    IdempotencyKeyHeader,
    Refusal,
    replays_before_validation,
    run_idempotent,
)
from amanat.platform.settings import Settings

router = APIRouter(tags=["payments"])


class AccountModel(RequestModel):
    iban: Iban | None = None
    raast_id: RaastId | None = None
    name: str | None = Field(default=None, min_length=1, max_length=140)

    @model_validator(mode="after")
    def _one_account(self) -> AccountModel:
        if (self.iban is None) == (self.raast_id is None):
            raise ValueError("Give exactly one of iban or raast_id.")
        return self


class PaymentIn(RequestModel):
    type: Literal["payout", "collection"] = "payout"
    amount: Amount
    currency: Literal["PKR"] = "PKR"
    creditor: AccountModel | None = Field(default=None, description="Payouts: who is paid.")
    debtor: AccountModel | None = Field(default=None, description="Collections: who pays.")
    reference: str | None = Field(default=None, max_length=35)
    description: str | None = Field(default=None, max_length=500)
    metadata: Metadata = Field(default_factory=dict)
    expires_in_seconds: int | None = Field(
        default=None, ge=60, le=7 * 86_400, description="Collections: how long the payer has."
    )

    @model_validator(mode="after")
    def _parties(self) -> PaymentIn:
        if self.type == "payout" and (self.creditor is None or self.debtor is not None):
            raise ValueError("A payout needs a creditor and no debtor.")
        if self.type == "collection" and (self.debtor is None or self.creditor is not None):
            raise ValueError("A collection needs a debtor and no creditor.")
        if self.type == "payout" and self.expires_in_seconds is not None:
            raise ValueError("expires_in_seconds applies to collections only.")
        return self


class RefundIn(RequestModel):
    payment_id: str = Field(min_length=1, max_length=40)
    amount: Amount | None = Field(
        default=None, description="Omit to refund everything that remains."
    )
    reference: str | None = Field(default=None, max_length=35)
    metadata: Metadata = Field(default_factory=dict)


class TopUpIn(RequestModel):
    amount: Amount
    currency: Literal["PKR"] = "PKR"


class PartyOut(ResponseModel):
    customer_id: str
    account_type: Literal["iban", "raast_id"]
    bank_code: str | None
    bank_name: str | None
    iban_last4: str | None


class FailureOut(ResponseModel):
    code: str = Field(
        pattern=r"^rail_[a-z0-9_]+$",
        description="Why the payment failed: `rail_` and the rail's reason code, "
        "lower-cased. The list is closed: a reason code amanat does not know arrives as "
        "`rail_rejected`, with the rail's code in `message`. Each code has a page at "
        "`/problems/<code>` saying whether to retry and what to tell the customer.",
        json_schema_extra=declared_enum(sorted(RAIL_FAILURE_CODES)),
    )
    message: str = Field(description="A sentence for your logs and support staff.")


class PaymentOut(ResponseModel):
    id: str
    object: Literal["payment", "refund"]
    type: Literal["payout", "collection", "refund"]
    status: PaymentStatus = Field(
        description="pending → processing → succeeded | failed (payouts, refunds); "
        "pending → awaiting_approval → succeeded | failed | expired (collections); "
        "canceled before it reaches the rail."
    )
    amount: int = Field(description="Minor units (paisa).")
    currency: Literal["PKR"]
    creditor: PartyOut | None
    debtor: PartyOut | None
    reference: str | None
    description: str | None
    end_to_end_id: str
    failure: FailureOut | None
    version: int
    created_at: str
    updated_at: str
    expires_at: str | None = None
    refunded_amount: int | None = None
    payment_id: str | None = None
    metadata: dict[str, Any]


class BalanceOut(ResponseModel):
    object: Literal["balance"] = "balance"
    currency: Literal["PKR"]
    available: int
    pending: int
    held: int
    as_of: str


async def payment_view(service: PaymentService, payment: Payment) -> dict[str, Any]:
    return views.payment_view(payment, await service.description(payment))


def _caller(request: Request, context: AccessContext) -> Caller:
    return Caller(
        partner_id=context.partner_id,
        client_id=context.client_id,
        actor=client_actor(request, context),
        partner=context.partner,
    )


def _account(model: AccountModel) -> AccountIn:
    return AccountIn(iban=model.iban, raast_id=model.raast_id, name=model.name)


PAYMENT_EXAMPLES: dict[str, Any] = {
    "payout": {
        "summary": "Pay PKR 1,500.00 to an IBAN",
        "value": {
            "type": "payout",
            "amount": 150_000,
            "currency": "PKR",
            "creditor": {"iban": "PK36SCBL0000001123456702", "name": "Ayesha Khan"},
            "reference": "INV-2026-0042",
            "description": "Invoice 42",
        },
    },
    "collection": {
        "summary": "Ask a Raast ID to pay PKR 2,500.00 within an hour",
        "value": {
            "type": "collection",
            "amount": 250_000,
            "currency": "PKR",
            "debtor": {"raast_id": "+923001234567", "name": "Ayesha Khan"},
            "reference": "ORDER-7781",
            "expires_in_seconds": 3600,
        },
    },
}
REFUND_EXAMPLES: dict[str, Any] = {
    "partial": {
        "summary": "Refund PKR 500.00 of a succeeded collection",
        "value": {
            "payment_id": "pay_01JDX3M9Q5W8C2V7T4K6B0N1ZP",
            "amount": 50_000,
            "reference": "RETURN-7781",
        },
    }
}
TOP_UP_EXAMPLES: dict[str, Any] = {
    "top_up": {
        "summary": "Add PKR 100,000.00 to a sandbox balance",
        "value": {"amount": 10_000_000, "currency": "PKR"},
    }
}

RefundWrite = Annotated[AccessContext, Depends(require_scope("refunds:write", policy="write"))]
BalanceRead = Annotated[AccessContext, Depends(require_scope("balance:read"))]


@router.post(
    "/v1/payments",
    status_code=201,
    response_model=PaymentOut,
    summary="Create a payout (pay a beneficiary) or a collection (request to pay)",
)
@replays_before_validation
async def create_payment(
    body: Annotated[PaymentIn, Body(openapi_examples=PAYMENT_EXAMPLES)],
    request: Request,
    context: PaymentsWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Creates a **payout** (`type: payout`, money from your balance to the `creditor`) or
    a **collection** (`type: collection`, a Raast request to pay sent to the `debtor`).
    Give the account as exactly one of `iban` or `raast_id`.

    Scope `payments:write`. Requires an `Idempotency-Key`: a retry with the same key and
    body replays the first answer (`Idempotent-Replayed: true`). The payment starts
    `pending`; its outcome arrives as a webhook event and on `GET /v1/payments/{id}`. A
    payout holds its amount from `available` at once.

    Errors: `validation_error` / `invalid_iban` / `invalid_raast_id` (422),
    `insufficient_funds` (422), `limit_exceeded` (422), `idempotency_key_missing` (400),
    `idempotency_key_reused` (422), `idempotency_key_in_use` (409). In the sandbox the last
    two digits of `amount` choose the rail's outcome (see `/problems/rail_ac01` and the
    other `rail_*` pages); 00 succeeds.
    """
    service = find_service(request, PaymentService)

    async def operation() -> tuple[int, dict[str, Any]]:
        caller = _caller(request, context)
        if body.type == "payout":
            assert body.creditor is not None
            payment = await service.create_payout(
                caller,
                amount=body.amount,
                currency=body.currency,
                creditor=_account(body.creditor),
                reference=body.reference,
                description=body.description,
                metadata=body.metadata,
            )
        else:
            assert body.debtor is not None
            payment = await service.create_collection(
                caller,
                amount=body.amount,
                currency=body.currency,
                debtor=_account(body.debtor),
                reference=body.reference,
                description=body.description,
                metadata=body.metadata,
                expires_in=timedelta(seconds=body.expires_in_seconds)
                if body.expires_in_seconds
                else None,
            )
        return 201, await payment_view(service, payment)

    if body.type != "payout":
        return await run_idempotent(request, context, idempotency_key, operation)
    batcher = find_service(request, PayoutBatcher)
    creditor = body.creditor
    assert creditor is not None

    async def batched(
        record: IdempotencyRecord, refusal: Refusal
    ) -> tuple[int, dict[str, Any]] | None:
        # Payouts commit in batches (payments/batching.py); ``operation`` stays the path
        # of a payout whose key was taken or whose batch failed.
        return await batcher.create(
            record,
            refusal,
            lambda: service.prepare_payout(
                _caller(request, context),
                amount=body.amount,
                currency=body.currency,
                creditor=_account(creditor),
                reference=body.reference,
                description=body.description,
                metadata=body.metadata,
            ),
        )

    return await run_idempotent(request, context, idempotency_key, operation, batched=batched)


# The reads below return a JsonResponse: the view already has exactly the documented
# fields, and FastAPI's re-validation of it against the response model cost more than the
# database read (about 1 ms for a page of 20). `response_model` still documents the answer,
# and the OpenAPI contract tests check every answer against it.


@router.get("/v1/payments/{payment_id}", response_model=PaymentOut, summary="Retrieve a payment")
async def get_payment(payment_id: str, request: Request, context: PaymentsRead) -> Response:
    """The payment as it is now, including `failure` when it failed.

    Scope `payments:read`. Only your own payments are visible: another partner's id answers
    `not_found` (404), as does a refund id (use `GET /v1/refunds/{id}`).
    """
    service = find_service(request, PaymentService)
    view = await payment_view(service, await service.get(context.partner_id, payment_id))
    return JsonResponse(view)


async def _list(
    request: Request,
    context: AccessContext,
    *,
    refunds: bool,
    limit: int,
    cursor: str | None,
    status: str | None,
    created_gte: str | None,
    created_lt: str | None,
    type_: str | None = None,
    payment_id: str | None = None,
) -> Response:
    service = find_service(request, PaymentService)
    before = page_position(cursor)
    gte = parse_time(created_gte, "created_gte")
    lt = parse_time(created_lt, "created_lt")
    page = await service.list(
        context.partner_id,
        refunds=refunds,
        limit=limit,
        before=before,
        status=status,
        created_gte=gte,
        created_lt=lt,
        type_=type_,
        parent_id=payment_id,
    )
    last = page.items[-1] if page.items else None
    return JsonResponse(
        {
            "object": "list",
            "data": [await payment_view(service, p) for p in page.items],
            "has_more": page.has_more,
            "next_cursor": next_cursor(
                page.has_more, last.created_at if last else None, last.id if last else None
            ),
        }
    )


StatusFilter = Annotated[
    Literal[
        "pending", "processing", "awaiting_approval", "succeeded", "failed", "canceled", "expired"
    ]
    | None,
    Query(),
]


@router.get(
    "/v1/payments", response_model=ListResponse[PaymentOut], summary="List payments, newest first"
)
async def list_payments(
    request: Request,
    context: PaymentsRead,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
    status: StatusFilter = None,
    type: Annotated[Literal["payout", "collection"] | None, Query()] = None,
    created_gte: Annotated[str | None, Query(max_length=40)] = None,
    created_lt: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Your payouts and collections, newest first, filtered by `status`, `type` and
    creation time (`created_gte`, `created_lt`: RFC 3339). Refunds are listed by
    `GET /v1/refunds`.

    Scope `payments:read`. Pages with `limit` (1-100) and the `next_cursor` of the previous
    page. Errors: `invalid_cursor` (400), `validation_error` (422) for a bad filter.
    """
    return await _list(
        request,
        context,
        refunds=False,
        limit=limit,
        cursor=cursor,
        status=status,
        created_gte=created_gte,
        created_lt=created_lt,
        type_=type,
    )


@router.post(
    "/v1/payments/{payment_id}/cancel",
    response_model=PaymentOut,
    summary="Cancel a payment that has not been sent to the rail yet",
)
async def cancel_payment(
    payment_id: str,
    request: Request,
    context: PaymentsWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Cancels a payment that is still `pending` (not yet sent to the rail); a payout's
    held amount returns to `available`.

    Scope `payments:write`. Requires an `Idempotency-Key`. No body. Errors:
    `illegal_transition` (409) once the payment has reached the rail or is final,
    `not_found` (404).
    """
    service = find_service(request, PaymentService)

    async def operation() -> tuple[int, dict[str, Any]]:
        payment = await service.cancel(_caller(request, context), payment_id)
        return 200, await payment_view(service, payment)

    return await run_idempotent(request, context, idempotency_key, operation)


@router.post(
    "/v1/refunds",
    status_code=201,
    response_model=PaymentOut,
    summary="Refund a collection, fully or in part",
)
async def create_refund(
    body: Annotated[RefundIn, Body(openapi_examples=REFUND_EXAMPLES)],
    request: Request,
    context: RefundWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Sends money back to the payer of a `succeeded` collection: all that remains when
    `amount` is omitted, or part of it. `payment_id` is the collection's id. The refund
    is a payment of its own (`type: refund`) that moves like a payout.

    Scope `refunds:write`. Requires an `Idempotency-Key`. Errors:
    `refund_exceeds_remaining` (409) when refunds would add up to more than was collected,
    `illegal_transition` (409) when the collection has not succeeded, `not_found` (404).
    """
    service = find_service(request, PaymentService)

    async def operation() -> tuple[int, dict[str, Any]]:
        refund = await service.create_refund(
            _caller(request, context),
            body.payment_id,
            amount=body.amount,
            reference=body.reference,
            metadata=body.metadata,
        )
        return 201, await payment_view(service, refund)

    return await run_idempotent(request, context, idempotency_key, operation)


@router.get("/v1/refunds/{refund_id}", response_model=PaymentOut, summary="Retrieve a refund")
async def get_refund(refund_id: str, request: Request, context: PaymentsRead) -> Response:
    """One refund, with `payment_id` naming the collection it returns money from.

    Scope `payments:read`. Errors: `not_found` (404) for an unknown or another partner's id.
    """
    service = find_service(request, PaymentService)
    view = await payment_view(
        service, await service.get(context.partner_id, refund_id, refund=True)
    )
    return JsonResponse(view)


@router.get("/v1/refunds", response_model=ListResponse[PaymentOut], summary="List refunds")
async def list_refunds(
    request: Request,
    context: PaymentsRead,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
    status: StatusFilter = None,
    payment_id: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Your refunds, newest first; `payment_id` narrows to one collection's refunds.

    Scope `payments:read`. Pages with `limit` and `cursor`. Errors: `invalid_cursor` (400).
    """
    return await _list(
        request,
        context,
        refunds=True,
        limit=limit,
        cursor=cursor,
        status=status,
        created_gte=None,
        created_lt=None,
        payment_id=payment_id,
    )


def _balance_view(request: Request, balance: Any) -> dict[str, Any]:
    return BalanceOut(
        currency=balance.currency,
        available=balance.available,
        pending=balance.pending,
        held=balance.held,
        as_of=format_timestamp(find_service(request, Clock).now()),
    ).model_dump()


@router.get(
    "/v1/balance",
    response_model=BalanceOut,
    summary="Available, pending (incoming in flight) and held (outgoing) amounts",
)
async def get_balance(request: Request, context: BalanceRead) -> dict[str, Any]:
    """Your balance in paisa: `available` to pay out, `pending` incoming (collections in
    flight), `held` outgoing (payouts and refunds not yet final).

    Scope `balance:read`.
    """
    balance = await find_service(request, PaymentService).balance(context.partner_id)
    return _balance_view(request, balance)


@router.post(
    "/v1/sandbox/top_ups",
    response_model=BalanceOut,
    summary="Sandbox only: add funds to your balance",
)
async def sandbox_top_up(
    body: Annotated[TopUpIn, Body(openapi_examples=TOP_UP_EXAMPLES)],
    request: Request,
    context: PaymentsWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Adds test money to a sandbox partner's `available` balance and returns the new
    balance.

    Scope `payments:write`. Requires an `Idempotency-Key`. Errors: `forbidden` (403) for a
    production partner or on a production deployment.
    """
    if context.mode != "sandbox" or find_service(request, Settings).is_production:
        raise ApiProblem("forbidden", "Top-ups exist only for sandbox partners.", status=403)

    async def operation() -> tuple[int, dict[str, Any]]:
        balance = await find_service(request, PaymentService).top_up(
            _caller(request, context), body.amount, body.currency
        )
        return 200, _balance_view(request, balance)

    return await run_idempotent(request, context, idempotency_key, operation)
