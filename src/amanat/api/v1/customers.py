"""Customers: the people a merchant pays or collects from, held encrypted at rest.

Every personal field is encrypted under the customer's own key; the merchant that created
a customer reads it back in clear, and can find customers by IBAN, Raast ID or CNIC through
blind indexes, without the table ever holding those values readably.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import Field, model_validator
from starlette.responses import Response

from amanat.api.deps import (
    PaymentsRead,
    PaymentsWrite,
    client_actor,
    container_of,
)
from amanat.api.errors import ApiProblem
from amanat.api.idempotency import IdempotencyKeyHeader, run_idempotent
from amanat.api.schemas import ListResponse, RequestModel, ResponseModel
from amanat.api.types import Cnic, Iban, RaastId
from amanat.domain.clock import format_timestamp
from amanat.domain.pakistan import bank_by_code
from amanat.services.data_protection import SubjectDetails
from amanat.services.ports import SubjectRecord

router = APIRouter(prefix="/v1/customers", tags=["customers"])


class CustomerIn(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=140)
    iban: Iban | None = None
    raast_id: RaastId | None = None
    cnic: Cnic | None = None

    @model_validator(mode="after")
    def _has_an_account(self) -> CustomerIn:
        if self.iban is None and self.raast_id is None:
            raise ValueError("Give the customer's iban or raast_id.")
        return self


class BankOut(ResponseModel):
    code: str
    name: str


class CustomerOut(ResponseModel):
    id: str
    object: Literal["customer"] = "customer"
    name: str | None
    iban: str | None
    raast_id: str | None
    cnic: str | None
    bank: BankOut | None
    erased: bool
    created_at: str


def customer_view(details: SubjectDetails, record: SubjectRecord) -> dict[str, Any]:
    bank = bank_by_code(record.bank_code) if record.bank_code else None
    return CustomerOut(
        id=details.id,
        name=details.name,
        iban=details.iban,
        raast_id=details.raast_id,
        cnic=details.cnic,
        bank=BankOut(code=bank.code, name=bank.name) if bank else None,
        erased=details.erased,
        created_at=format_timestamp(record.created_at),
    ).model_dump()


CUSTOMER_EXAMPLES: dict[str, Any] = {
    "customer": {
        "summary": "A customer with an IBAN, a Raast ID and a CNIC",
        "value": {
            "name": "Ayesha Khan",
            "iban": "PK36SCBL0000001123456702",
            "raast_id": "+923001234567",
            "cnic": "35202-1234567-3",
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=CustomerOut,
    summary="Create a customer (personal fields are encrypted at rest)",
)
async def create_customer(
    body: Annotated[CustomerIn, Body(openapi_examples=CUSTOMER_EXAMPLES)],
    request: Request,
    context: PaymentsWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Stores a person you pay or collect from. Give an `iban` or a `raast_id` (or both);
    `name` and `cnic` are optional. Every personal field is encrypted at rest under the
    customer's own key; you read them back in clear.

    Scope `payments:write`. Requires an `Idempotency-Key`. Errors: `invalid_iban`,
    `invalid_raast_id`, `invalid_cnic`, `validation_error` (422).
    """
    protection = container_of(request).protection

    async def operation() -> tuple[int, dict[str, Any]]:
        record = await protection.create_subject(
            client_actor(request, context),
            context.partner_id,
            name=body.name,
            iban=body.iban,
            raast_id=body.raast_id,
            cnic=body.cnic,
        )
        details = await protection.reveal(record.id, partner_id=context.partner_id)
        return 201, customer_view(details, record)

    return await run_idempotent(request, context, idempotency_key, operation)


@router.get("/{customer_id}", response_model=CustomerOut, summary="Retrieve a customer")
async def get_customer(customer_id: str, request: Request, context: PaymentsRead) -> dict[str, Any]:
    """One of your customers, personal fields in clear (null after erasure, with
    `erased: true`).

    Scope `payments:read`. Errors: `not_found` (404) for an unknown or another partner's id.
    """
    protection = container_of(request).protection
    details = await protection.reveal(customer_id, partner_id=context.partner_id)
    async with container_of(request).transactions.read() as tx:
        record = await tx.subjects.get(customer_id)
    assert record is not None
    return customer_view(details, record)


@router.get(
    "",
    response_model=ListResponse[CustomerOut],
    summary="Find customers by IBAN, Raast ID or CNIC (exact match)",
)
async def find_customers(
    request: Request,
    context: PaymentsRead,
    iban: Annotated[Iban | None, Query()] = None,
    raast_id: Annotated[RaastId | None, Query()] = None,
    cnic: Annotated[Cnic | None, Query()] = None,
) -> dict[str, Any]:
    """Your customers whose IBAN, Raast ID or CNIC equals the one given (exactly one of
    the three). The match uses blind indexes: the values are never stored readably.

    Scope `payments:read`. Errors: `validation_error` (422) unless exactly one search field
    is given, `invalid_iban` / `invalid_raast_id` / `invalid_cnic` (422) for a malformed one.
    """
    given = [(f, v) for f, v in (("iban", iban), ("raast_id", raast_id), ("cnic", cnic)) if v]
    if len(given) != 1:
        raise ApiProblem(
            "validation_error",
            "Give exactly one of iban, raast_id or cnic.",
            status=422,
            errors=[
                {
                    "pointer": "/",
                    "in": "query",
                    "code": "required",
                    "message": "exactly one search field",
                }
            ],
        )
    field, value = given[0]
    protection = container_of(request).protection
    found = await protection.find(field, value, partner_id=context.partner_id)
    data = [
        customer_view(await protection.reveal(r.id, partner_id=context.partner_id), r)
        for r in found
    ]
    return {"object": "list", "data": data, "has_more": False, "next_cursor": None}
