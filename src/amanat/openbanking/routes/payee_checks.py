"""``POST /v1/payee_checks``: confirmation of payee for merchants and PISPs, in the
partner API's conventions (problem documents, ``Idempotency-Key``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request
from pydantic import Field, model_validator
from starlette.responses import Response

from amanat.auth.service import AccessContext
from amanat.auth.verification import client_actor, require_scope
from amanat.kernel.clock import format_timestamp
from amanat.openbanking.services.payee_checks import PayeeCheckService
from amanat.platform.http.schemas import RequestModel, ResponseModel
from amanat.platform.http.services import find_service
from amanat.platform.http.types import Iban, RaastId
from amanat.platform.idempotency.protocol import IdempotencyKeyHeader, run_idempotent

router = APIRouter(prefix="/v1/payee_checks", tags=["confirmation of payee"])

PayeeChecker = Annotated[
    AccessContext, Depends(require_scope("payees:check", policy="payee_check"))
]


class PayeeCheckIn(RequestModel):
    iban: Iban | None = None
    raast_id: RaastId | None = None
    name: str = Field(min_length=1, max_length=140, description="The name you expect.")

    @model_validator(mode="after")
    def _one_account(self) -> PayeeCheckIn:
        if (self.iban is None) == (self.raast_id is None):
            raise ValueError("Give exactly one of iban or raast_id.")
        return self


PAYEE_EXAMPLES: dict[str, Any] = {
    "iban": {
        "summary": "Before paying an IBAN",
        "value": {"iban": "PK36SCBL0000001123456702", "name": "Ayesha Khan"},
    },
    "raast_id": {
        "summary": "Before paying a Raast ID",
        "value": {"raast_id": "+923001234567", "name": "Ayesha Khan"},
    },
}


class PayeeCheckOut(ResponseModel):
    object: Literal["payee_check"] = "payee_check"
    id: str
    result: Literal["match", "close_match", "no_match", "unavailable"] = Field(
        description="`match`: the name is the account's title. `close_match`: nearly; "
        "`name_on_account` shows the title masked, to ask the payer to confirm. "
        "`no_match`: another name: do not pay without checking with the payee. "
        "`unavailable`: the account is not at this bank and no title could be fetched."
    )
    name_on_account: str | None = Field(
        description="The account's title, masked (first two letters of each word); only "
        "for a close match."
    )
    checked_at: str


@router.post(
    "",
    status_code=201,
    response_model=PayeeCheckOut,
    summary="Check a payee's name before paying",
)
async def check_payee(
    body: Annotated[PayeeCheckIn, Body(openapi_examples=PAYEE_EXAMPLES)],
    request: Request,
    context: PayeeChecker,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Whether the name you expect is the title of the account behind an `iban` or a
    `raast_id`, before you pay it. Misdirected payments are hard to get back; a
    `no_match` or `close_match` is the moment to ask the payer.

    Scope `payees:check`; rate-limited per client (policy `payee_check`). Requires an
    `Idempotency-Key`. Errors: `invalid_iban`, `invalid_raast_id`, `validation_error` (422).
    """
    service = find_service(request, PayeeCheckService)

    async def operation() -> tuple[int, dict[str, Any]]:
        done = await service.check(
            client_actor(request, context),
            context.partner_id,
            iban=str(body.iban) if body.iban else None,
            raast_id=str(body.raast_id) if body.raast_id else None,
            name=body.name,
        )
        return 201, PayeeCheckOut(
            id=done.id,
            result=done.answer.verdict.value,
            name_on_account=done.answer.masked_title,
            checked_at=format_timestamp(done.checked_at),
        ).model_dump()

    return await run_idempotent(request, context, idempotency_key, operation)
