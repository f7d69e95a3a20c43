"""Customers: the people a merchant pays or collects from, held encrypted at rest.

Every personal field is encrypted under the customer's own key. Responses show the
identifiers masked by the one masking policy (:mod:`amanat.kernel.masking`): the IBAN's
last four characters and bank, the Raast ID and CNIC with most digits starred. The clear
values come back only from ``GET /v1/customers/{id}/identifiers``, which needs the opt-in
scope ``customers:reveal``, has a rate-limit policy of its own, is never cached and writes
one audit record per call. Customers are found by IBAN, Raast ID or CNIC through blind
indexes, without the table ever holding those values readably; since a search confirms a
guessed identifier, searches have a rate-limit policy of their own and each is audited.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import Field, model_validator
from starlette.responses import Response

from amanat.auth.service import AccessContext
from amanat.auth.verification import (
    PaymentsRead,
    PaymentsWrite,
    client_actor,
    require_scope,
)
from amanat.kernel.clock import format_timestamp
from amanat.kernel.masking import Masker, mask_cnic, mask_phone
from amanat.kernel.pakistan import bank_by_code, parse_cnic
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.schemas import ListResponse, RequestModel, ResponseModel
from amanat.platform.http.services import find_service
from amanat.platform.http.types import Cnic, Iban, RaastId
from amanat.platform.idempotency.protocol import IdempotencyKeyHeader, run_idempotent
from amanat.platform.protection.ports import SubjectRecord
from amanat.platform.protection.service import (
    REVEALABLE_FIELDS,
    DataProtectionService,
    SubjectDetails,
)

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
    """A customer as every default response shows it: identifiers masked, never clear."""

    id: str
    object: Literal["customer"] = "customer"
    name: str | None
    iban_last4: str | None = Field(description="The IBAN's last four characters.")
    bank: BankOut | None = Field(description="The bank named by the IBAN's bank code.")
    raast_id_masked: str | None = Field(description="E.g. `+92300*****67`.")
    cnic_masked: str | None = Field(description="E.g. `*****-*******-3`.")
    erased: bool
    created_at: str


class CustomerIdentifiersOut(ResponseModel):
    """A customer's identifiers in clear; only the fields asked for are filled."""

    id: str
    object: Literal["customer_identifiers"] = "customer_identifiers"
    iban: str | None
    raast_id: str | None
    cnic: str | None


def _masked(value: str | None, masker: Masker) -> str | None:
    return masker(value) if value is not None else None


def _written_cnic(cnic: str | None) -> str | None:
    """CNICs are stored as 13 digits and shown as written: ``XXXXX-XXXXXXX-X``."""
    return parse_cnic(cnic).formatted if cnic is not None else None


def customer_view(details: SubjectDetails, record: SubjectRecord) -> dict[str, Any]:
    bank = bank_by_code(record.bank_code) if record.bank_code else None
    return CustomerOut(
        id=details.id,
        name=details.name,
        iban_last4=record.iban_last4,
        bank=BankOut(code=bank.code, name=bank.name) if bank else None,
        raast_id_masked=_masked(details.raast_id, mask_phone),
        cnic_masked=_masked(_written_cnic(details.cnic), mask_cnic),
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
    summary="Create a customer (personal fields are encrypted at rest, answered masked)",
)
async def create_customer(
    body: Annotated[CustomerIn, Body(openapi_examples=CUSTOMER_EXAMPLES)],
    request: Request,
    context: PaymentsWrite,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Stores a person you pay or collect from. Give an `iban` or a `raast_id` (or both);
    `name` and `cnic` are optional. Every personal field is encrypted at rest under the
    customer's own key. The answer shows identifiers masked (`iban_last4`, bank, masked
    Raast ID and CNIC); `GET /v1/customers/{id}/identifiers` reveals them, audited.

    Scope `payments:write`. Requires an `Idempotency-Key`. Errors: `invalid_iban`,
    `invalid_raast_id`, `invalid_cnic`, `validation_error` (422).
    """
    protection = find_service(request, DataProtectionService)

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
    """One of your customers, identifiers masked (`iban_last4`, bank, `raast_id_masked`,
    `cnic_masked`; null after erasure, with `erased: true`). The clear values come only from
    `GET /v1/customers/{id}/identifiers`.

    Scope `payments:read`. Errors: `not_found` (404) for an unknown or another partner's id.
    """
    protection = find_service(request, DataProtectionService)
    details = await protection.reveal(customer_id, partner_id=context.partner_id)
    record = await protection.subject(customer_id)
    assert record is not None
    return customer_view(details, record)


# Searching by identifier answers whether a guess is right, so it has a budget of its own.
CustomerSearch = Annotated[
    AccessContext, Depends(require_scope("payments:read", policy="customer_search"))
]


@router.get(
    "",
    response_model=ListResponse[CustomerOut],
    summary="Find customers by IBAN, Raast ID or CNIC (exact match)",
)
async def find_customers(
    request: Request,
    context: CustomerSearch,
    iban: Annotated[Iban | None, Query()] = None,
    raast_id: Annotated[RaastId | None, Query()] = None,
    cnic: Annotated[Cnic | None, Query()] = None,
) -> dict[str, Any]:
    """Your customers whose IBAN, Raast ID or CNIC equals the one given (exactly one of
    the three). The match uses blind indexes: the values are never stored readably.
    A search confirms whether a guessed identifier is a customer's, so every search writes
    one audit record (the field searched and the number of matches, never the value).

    Scope `payments:read`. Rate limit policy `customer_search` (300 an hour per client by
    default). Errors: `validation_error` (422) unless exactly one search field is given,
    `invalid_iban` / `invalid_raast_id` / `invalid_cnic` (422) for a malformed one,
    `rate_limited` (429).
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
    protection = find_service(request, DataProtectionService)
    found = await protection.search_audited(
        client_actor(request, context), field, value, partner_id=context.partner_id
    )
    data = [
        customer_view(await protection.reveal(r.id, partner_id=context.partner_id), r)
        for r in found
    ]
    return {"object": "list", "data": data, "has_more": False, "next_cursor": None}


RevealableField = Literal["iban", "raast_id", "cnic"]
CustomersReveal = Annotated[
    AccessContext, Depends(require_scope("customers:reveal", policy="reveal"))
]
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.get(
    "/{customer_id}/identifiers",
    response_model=CustomerIdentifiersOut,
    summary="Reveal a customer's IBAN, Raast ID or CNIC in clear (audited, never cached)",
)
async def reveal_customer_identifiers(
    customer_id: str,
    request: Request,
    context: CustomersReveal,
    field: Annotated[
        list[RevealableField] | None,
        Query(description="Which identifiers to reveal (repeat the parameter); all by default."),
    ] = None,
) -> Response:
    """The customer's IBAN, Raast ID and CNIC in clear, for the rare case a partner must
    show or re-use them. Every call writes one audit record (who, which customer, which
    fields, from where; never the values) before anything is decrypted. Answers carry
    `Cache-Control: no-store`.

    Scope `customers:reveal` (opt-in: a client holds it only when registered with it, and a
    token carries it only when asked for by name). Rate limit policy `reveal`. Errors:
    `insufficient_scope` (403), `not_found` (404), `rate_limited` (429).
    """
    # A GET, not a POST: it changes nothing a partner sees, and a POST's stored idempotent
    # response would keep the clear values for a day, past an erasure.
    fields = tuple(dict.fromkeys(field)) if field else REVEALABLE_FIELDS
    details = await find_service(request, DataProtectionService).reveal_audited(
        client_actor(request, context),
        customer_id,
        partner_id=context.partner_id,
        fields=fields,
    )
    body = CustomerIdentifiersOut(
        id=details.id,
        iban=details.iban,
        raast_id=details.raast_id,
        cnic=_written_cnic(details.cnic),
    ).model_dump()
    return JsonResponse(body, headers=_NO_STORE)
