"""OBIE v3.1.11 Confirmation of Funds API (CBPII): funds-confirmation consents naming the
PSU's account, and yes-or-no funds confirmations under an authorised one.

Consents are created, read and deleted with a client-credentials token (scope
``fundsconfirmations``); confirmations need the token from the PSU's authorisation,
bound to the consent, checked on every request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field, field_validator
from starlette.responses import Response

from amanat.auth.service import AccessContext
from amanat.auth.verification import client_actor
from amanat.openbanking.domain.consents import Consent, ConsentKind
from amanat.openbanking.routes.obie import (
    BASE_PATH,
    ConsentIdPath,
    ObieJson,
    ObieRoute,
    envelope,
    parse_datetime,
    self_link,
    timestamp,
    tpp_access,
    tpp_of,
)
from amanat.openbanking.services.consents import BoundToken, ConsentService
from amanat.openbanking.services.funds import FundsConfirmationService
from amanat.platform.http.schemas import RequestModel
from amanat.platform.http.services import find_service

# The contract of these operations is the official OBIE document (specs/obie-v3.1.11/).
router = APIRouter(
    prefix=f"{BASE_PATH}/cbpii",
    tags=["open banking: confirmation of funds"],
    route_class=ObieRoute,
    include_in_schema=False,
)

Funds = Annotated[AccessContext, Depends(tpp_access("fundsconfirmations"))]
FundsWrite = Annotated[AccessContext, Depends(tpp_access("fundsconfirmations", policy="write"))]


class DebtorAccountIn(RequestModel):
    SchemeName: str = Field(min_length=1, max_length=40)
    Identification: str = Field(min_length=1, max_length=256)
    Name: str | None = Field(default=None, min_length=1, max_length=350)
    SecondaryIdentification: str | None = Field(default=None, min_length=1, max_length=34)

    @field_validator("Name", "SecondaryIdentification", mode="before")
    @classmethod
    def _absent_not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("leave the field out instead of null")
        return value


class FundsConsentData(RequestModel):
    ExpirationDateTime: str | None = Field(default=None, max_length=40)
    DebtorAccount: DebtorAccountIn

    @field_validator("ExpirationDateTime", mode="before")
    @classmethod
    def _absent_not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("leave the field out instead of null")
        return value


class FundsConsent(RequestModel):
    Data: FundsConsentData


class AmountIn(RequestModel):
    Amount: str = Field(pattern=r"^\d{1,13}$|^\d{1,13}\.\d{1,5}$")
    Currency: str = Field(pattern=r"^[A-Z]{3}$")


class FundsConfirmationData(RequestModel):
    ConsentId: str = Field(min_length=1, max_length=128)
    Reference: str = Field(min_length=1, max_length=35)
    InstructedAmount: AmountIn


class FundsConfirmation(RequestModel):
    Data: FundsConfirmationData


def _consent_body(request: Request, consent: Consent) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ConsentId": consent.id,
        "CreationDateTime": timestamp(consent.created_at),
        "Status": consent.status.value,
        "StatusUpdateDateTime": timestamp(consent.status_updated_at),
        "DebtorAccount": (consent.details or {}).get("DebtorAccount", {}),
    }
    if consent.expires_at is not None:
        data["ExpirationDateTime"] = timestamp(consent.expires_at)
    return envelope(request, data)


@router.post(
    "/funds-confirmation-consents",
    status_code=201,
    summary="Create a funds-confirmation consent",
)
async def create_consent(request: Request, body: FundsConsent, context: FundsWrite) -> Response:
    debtor = body.Data.DebtorAccount
    consent = await find_service(request, ConsentService).create_funds_confirmation(
        tpp_of(context),
        client_actor(request, context),
        scheme=debtor.SchemeName,
        identification=debtor.Identification,
        name=debtor.Name,
        expires_at=parse_datetime(body.Data.ExpirationDateTime, "Data.ExpirationDateTime"),
    )
    out = _consent_body(request, consent)
    out["Links"]["Self"] = f"{self_link(request).split('?', 1)[0]}/{consent.id}"
    return ObieJson(out, status_code=201)


@router.get("/funds-confirmation-consents/{ConsentId}", summary="Read a funds consent")
async def get_consent(request: Request, consent_id: ConsentIdPath, context: Funds) -> Response:
    consent = await find_service(request, ConsentService).get(
        tpp_of(context), consent_id, ConsentKind.FUNDS_CONFIRMATION
    )
    return ObieJson(_consent_body(request, consent))


@router.delete(
    "/funds-confirmation-consents/{ConsentId}",
    status_code=204,
    summary="Delete (revoke) a funds consent",
)
async def delete_consent(
    request: Request, consent_id: ConsentIdPath, context: FundsWrite
) -> Response:
    await find_service(request, ConsentService).delete(
        tpp_of(context), consent_id, ConsentKind.FUNDS_CONFIRMATION, client_actor(request, context)
    )
    return Response(status_code=204)


@router.post("/funds-confirmations", status_code=201, summary="Confirm funds")
async def confirm_funds(request: Request, body: FundsConfirmation, context: FundsWrite) -> Response:
    consent = await find_service(request, ConsentService).usable_for(
        BoundToken(context.client_id, context.consent_id, context.subject),
        ConsentKind.FUNDS_CONFIRMATION,
    )
    data = body.Data
    answer = await find_service(request, FundsConfirmationService).confirm(
        consent,
        client_actor(request, context),
        consent_id=data.ConsentId,
        reference=data.Reference,
        amount=data.InstructedAmount.Amount,
        currency=data.InstructedAmount.Currency,
    )
    out = envelope(
        request,
        {
            "FundsConfirmationId": answer.id,
            "ConsentId": answer.consent_id,
            "CreationDateTime": timestamp(answer.created_at),
            "FundsAvailable": answer.available,
            "Reference": answer.reference,
            "InstructedAmount": {"Amount": answer.amount, "Currency": answer.currency},
        },
    )
    out["Links"]["Self"] = f"{self_link(request).split('?', 1)[0]}/{answer.id}"
    return ObieJson(out, status_code=201)
