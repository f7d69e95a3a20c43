"""OBIE v3.1.11 Payment Initiation API (PISP), domestic payments: a consent for one
payment as the TPP describes it, the PSU's authorisation in the hosted pages, then the
payment, paid as a Raast payout through the payments core.

Consents are created with a client-credentials token (scope ``payments``); the payment
and the consent's funds check need the token from the PSU's authorisation. Both POSTs
take ``x-idempotency-key`` (at most 40 characters, 24 hours): a repeat returns the
resource first created, a different body under the same key is refused, and a key in use
by a request still running answers 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field
from starlette.responses import Response

from amanat.auth.domain import Caller
from amanat.auth.service import AccessContext
from amanat.auth.verification import client_actor
from amanat.identity.queries import IdentityQueries
from amanat.openbanking.domain.consents import Consent, ConsentKind
from amanat.openbanking.errors import FieldInvalid
from amanat.openbanking.ports import MessageSigner
from amanat.openbanking.routes.obie import (
    BASE_PATH,
    ConsentIdPath,
    ObieJson,
    ObieModel,
    SignedObieRoute,
    envelope,
    self_link,
    timestamp,
    tpp_access,
    tpp_of,
)
from amanat.openbanking.services.consents import BoundToken, ConsentService
from amanat.openbanking.services.payments import (
    PAYMENT_STATUS,
    PaymentInitiationService,
)
from amanat.payments.domain.payments import Payment
from amanat.platform.http.services import find_service
from amanat.platform.idempotency.protocol import fingerprint
from amanat.platform.idempotency.service import (
    IdempotencyService,
    KeyInUse,
    KeyReused,
    Replay,
    StoredAnswer,
)

# The contract of these operations is the official OBIE document (specs/obie-v3.1.11/).
router = APIRouter(
    prefix=f"{BASE_PATH}/pisp",
    tags=["open banking: payment initiation"],
    route_class=SignedObieRoute,
    include_in_schema=False,
)

Payments = Annotated[AccessContext, Depends(tpp_access("payments"))]
PaymentsWrite = Annotated[AccessContext, Depends(tpp_access("payments", policy="write"))]
PaymentIdPath = Annotated[str, Path(alias="DomesticPaymentId", min_length=1, max_length=40)]

# -- request bodies (the fields amanat acts on; anything else is refused by name) ----------


class AmountIn(ObieModel):
    Amount: str = Field(pattern=r"^\d{1,13}$|^\d{1,13}\.\d{1,5}$")
    Currency: str = Field(pattern=r"^[A-Z]{3}$")


class DebtorAccountIn(ObieModel):
    SchemeName: str = Field(min_length=1, max_length=40)
    Identification: str = Field(min_length=1, max_length=256)
    Name: str | None = Field(default=None, min_length=1, max_length=350)
    SecondaryIdentification: str | None = Field(default=None, min_length=1, max_length=34)


class CreditorAccountIn(ObieModel):
    SchemeName: str = Field(min_length=1, max_length=40)
    Identification: str = Field(min_length=1, max_length=256)
    Name: str = Field(min_length=1, max_length=350)
    SecondaryIdentification: str | None = Field(default=None, min_length=1, max_length=34)


class RemittanceIn(ObieModel):
    Unstructured: str | None = Field(default=None, min_length=1, max_length=140)
    Reference: str | None = Field(default=None, min_length=1, max_length=35)


class InitiationIn(ObieModel):
    InstructionIdentification: str = Field(min_length=1, max_length=35)
    EndToEndIdentification: str = Field(min_length=1, max_length=35)
    LocalInstrument: str | None = Field(default=None, min_length=1, max_length=50)
    InstructedAmount: AmountIn
    DebtorAccount: DebtorAccountIn | None = None
    CreditorAccount: CreditorAccountIn
    RemittanceInformation: RemittanceIn | None = None


class RiskIn(ObieModel):
    PaymentContextCode: (
        Literal["BillPayment", "EcommerceGoods", "EcommerceServices", "Other", "PartyToParty"]
        | None
    ) = None
    MerchantCategoryCode: str | None = Field(default=None, min_length=3, max_length=4)
    MerchantCustomerIdentification: str | None = Field(default=None, min_length=1, max_length=70)
    ContractPresentInidicator: bool | None = None
    BeneficiaryPrepopulatedIndicator: bool | None = None
    PaymentPurposeCode: str | None = Field(default=None, min_length=3, max_length=4)


class ConsentData(ObieModel):
    Initiation: InitiationIn


class DomesticConsent(ObieModel):
    Data: ConsentData
    Risk: RiskIn


class PaymentData(ObieModel):
    ConsentId: str = Field(min_length=1, max_length=128)
    Initiation: InitiationIn


class DomesticPayment(ObieModel):
    Data: PaymentData
    Risk: RiskIn


def _plain(model: ObieModel) -> dict[str, Any]:
    return model.model_dump(exclude_none=True)


# -- the idempotency key --------------------------------------------------------------------


def _replayed(answer: StoredAnswer) -> Response:
    return Response(
        content=answer.body,
        status_code=answer.status,
        media_type="application/json; charset=utf-8",
    )


async def _signed(request: Request, context: AccessContext) -> None:
    """The body is the TPP's, as it signed it with a key it registered."""
    client, _partner = await find_service(request, IdentityQueries).client_and_partner(
        context.client_id
    )
    if client is None:
        raise FieldInvalid("Unknown client.", obie_code="UK.OBIE.Signature.Invalid")
    await find_service(request, MessageSigner).verify(
        client, request.headers.get("x-jws-signature"), await request.body()
    )


def _created(payload: Any) -> str | None:
    """What a POST created, for its idempotency record (a transaction's timeline): the
    payment, or else the consent, its answer names."""
    data = payload.get("Data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return None
    found = data.get("DomesticPaymentId") or data.get("ConsentId")
    return found if isinstance(found, str) else None


async def _idempotent(
    request: Request,
    context: AccessContext,
    operation: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> Response:
    await _signed(request, context)
    key = request.headers.get("x-idempotency-key")
    if key is None:
        raise FieldInvalid(
            "x-idempotency-key is required.",
            path="x-idempotency-key",
            obie_code="UK.OBIE.Header.Missing",
        )
    if not 1 <= len(key) <= 40 or key != key.strip() or not key.isprintable():
        raise FieldInvalid(
            "x-idempotency-key is 1 to 40 printable characters, no leading or trailing space.",
            path="x-idempotency-key",
            obie_code="UK.OBIE.Header.Invalid",
        )
    service = find_service(request, IdempotencyService)
    body = await request.body()
    record = service.new_record(
        context.client_id,
        f"obie:{key}",
        fingerprint(request.method, request.url.path, body),
        request.method,
        request.url.path,
    )
    try:
        answer = await service.remembered(record) or await service.stored(record)
        if answer is not None:
            await service.count_replay(record)
            return _replayed(answer)
        status, payload = await service.run(record, operation, resource_id=_created)
    except Replay as replay:
        await service.count_replay(record)
        return _replayed(replay.answer)
    except KeyReused:
        raise FieldInvalid(
            "This x-idempotency-key was used with a different request in the last 24 hours.",
            path="x-idempotency-key",
            obie_code="UK.OBIE.Header.Invalid",
        ) from None
    except KeyInUse as exc:
        return Response(status_code=429, headers={"Retry-After": str(exc.retry_after)})
    return ObieJson(payload, status_code=status)


# -- consents ---------------------------------------------------------------------------------


def _consent_body(request: Request, consent: Consent, self_url: str) -> dict[str, Any]:
    details = consent.details or {}
    body = envelope(
        request,
        {
            "ConsentId": consent.id,
            "CreationDateTime": timestamp(consent.created_at),
            "Status": consent.status.value,
            "StatusUpdateDateTime": timestamp(consent.status_updated_at),
            "Initiation": details.get("Initiation", {}),
        }
        # Once authorised, the payment must be made before this (an hour).
        | ({"CutOffDateTime": timestamp(consent.expires_at)} if consent.expires_at else {}),
    )
    body["Risk"] = details.get("Risk", {})
    body["Links"]["Self"] = self_url
    return body


@router.post("/domestic-payment-consents", status_code=201, summary="Create a payment consent")
async def create_consent(
    request: Request, body: DomesticConsent, context: PaymentsWrite
) -> Response:
    async def operation() -> tuple[int, dict[str, Any]]:
        await find_service(request, PaymentInitiationService).check_payable(
            _caller(request, context), _plain(body.Data.Initiation)
        )
        consent = await find_service(request, ConsentService).create_domestic_payment(
            tpp_of(context),
            client_actor(request, context),
            initiation=_plain(body.Data.Initiation),
            risk=_plain(body.Risk),
        )
        return 201, _consent_body(
            request, consent, f"{self_link(request).split('?', 1)[0]}/{consent.id}"
        )

    return await _idempotent(request, context, operation)


@router.get("/domestic-payment-consents/{ConsentId}", summary="Read a payment consent")
async def get_consent(request: Request, consent_id: ConsentIdPath, context: Payments) -> Response:
    consent = await find_service(request, ConsentService).get(
        tpp_of(context), consent_id, ConsentKind.DOMESTIC_PAYMENT
    )
    return ObieJson(_consent_body(request, consent, self_link(request)))


@router.get(
    "/domestic-payment-consents/{ConsentId}/funds-confirmation",
    summary="Whether the authorised account covers the payment now",
)
async def consent_funds(request: Request, consent_id: ConsentIdPath, context: Payments) -> Response:
    consent = await _bound(request, context)
    if consent.id != consent_id:
        raise FieldInvalid(
            "The token is bound to another consent.",
            path="ConsentId",
            obie_code="UK.OBIE.Resource.ConsentMismatch",
        )
    available, balance = await find_service(request, PaymentInitiationService).funds_available(
        consent
    )
    result: dict[str, Any] = {"FundsAvailable": available}
    result["FundsAvailableDateTime"] = timestamp(balance.at if balance else consent.created_at)
    return ObieJson(envelope(request, {"FundsAvailableResult": result}))


def _caller(request: Request, context: AccessContext) -> Caller:
    return Caller(
        partner_id=context.partner_id,
        client_id=context.client_id,
        actor=client_actor(request, context),
        partner=context.partner,
    )


async def _bound(request: Request, context: AccessContext) -> Consent:
    consent = await find_service(request, ConsentService).usable_for(
        BoundToken(context.client_id, context.consent_id, context.subject),
        ConsentKind.DOMESTIC_PAYMENT,
    )
    opened = await find_service(request, ConsentService).opened(consent.id)
    assert opened is not None
    return opened


# -- payments ---------------------------------------------------------------------------------


def _payment_body(
    request: Request, payment: Payment, consent_id: str, initiation: dict[str, Any], url: str
) -> dict[str, Any]:
    body = envelope(
        request,
        {
            "DomesticPaymentId": payment.id,
            "ConsentId": consent_id,
            "CreationDateTime": timestamp(payment.created_at),
            "Status": PAYMENT_STATUS[payment.status],
            "StatusUpdateDateTime": timestamp(payment.updated_at),
            "Initiation": initiation,
        },
    )
    body["Links"]["Self"] = url
    return body


@router.post("/domestic-payments", status_code=201, summary="Make the consented payment")
async def create_payment(
    request: Request, body: DomesticPayment, context: PaymentsWrite
) -> Response:
    async def operation() -> tuple[int, dict[str, Any]]:
        consent = await _bound(request, context)
        caller = _caller(request, context)
        payment = await find_service(request, PaymentInitiationService).initiate(
            caller,
            consent,
            consent_id=body.Data.ConsentId,
            initiation=_plain(body.Data.Initiation),
            risk=_plain(body.Risk),
        )
        initiation = (consent.details or {}).get("Initiation", {})
        url = f"{self_link(request).split('?', 1)[0]}/{payment.id}"
        return 201, _payment_body(request, payment, consent.id, initiation, url)

    return await _idempotent(request, context, operation)


async def _payment(
    request: Request, context: AccessContext, payment_id: str
) -> tuple[Payment, str, dict[str, Any]]:
    payment, consent_id = await find_service(request, PaymentInitiationService).payment(
        context.partner_id, payment_id
    )
    consent = await find_service(request, ConsentService).get(
        tpp_of(context), consent_id, ConsentKind.DOMESTIC_PAYMENT
    )
    return payment, consent_id, (consent.details or {}).get("Initiation", {})


@router.get("/domestic-payments/{DomesticPaymentId}", summary="Read a payment")
async def get_payment(request: Request, payment_id: PaymentIdPath, context: Payments) -> Response:
    payment, consent_id, initiation = await _payment(request, context, payment_id)
    return ObieJson(_payment_body(request, payment, consent_id, initiation, self_link(request)))


@router.get(
    "/domestic-payments/{DomesticPaymentId}/payment-details",
    summary="A payment's status history, as the rail reported it",
)
async def payment_details(
    request: Request, payment_id: PaymentIdPath, context: Payments
) -> Response:
    payment, _consent_id, _initiation = await _payment(request, context, payment_id)
    status: dict[str, Any] = {
        "PaymentTransactionId": payment.id,
        "Status": PAYMENT_STATUS[payment.status],
        "StatusUpdateDateTime": timestamp(payment.updated_at),
    }
    if payment.failure is not None:
        status["StatusDetail"] = {
            "Status": PAYMENT_STATUS[payment.status],
            "StatusReasonDescription": payment.failure.message[:256],
        }
    return ObieJson(envelope(request, {"PaymentStatus": [status]}))
