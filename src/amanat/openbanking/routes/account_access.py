"""OBIE v3.1.11 Account and Transaction API (AISP): account-access consents, and the
accounts, balances and transactions a PSU's consent opens.

Consents are created with a client-credentials token (scope ``accounts``); the resource
endpoints need a token from the PSU's authorisation, bound to an authorised consent,
which is checked on every request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field, field_validator
from starlette.responses import Response

from amanat.auth.service import AccessContext
from amanat.auth.verification import client_actor
from amanat.kernel.clock import KARACHI
from amanat.openbanking.domain.consents import Consent, ConsentKind
from amanat.openbanking.domain.permissions import AccessView
from amanat.openbanking.errors import FieldInvalid
from amanat.openbanking.ports import BankAccount, BankBalance, BankTransaction
from amanat.openbanking.routes.obie import (
    BASE_PATH,
    MAX_YEAR,
    MIN_YEAR,
    ConsentIdPath,
    ObieJson,
    ObieRoute,
    amount,
    envelope,
    parse_datetime,
    self_link,
    timestamp,
    tpp_access,
    tpp_of,
)
from amanat.openbanking.services.accounts import AccountInformationService, TransactionWindow
from amanat.openbanking.services.consents import BoundToken, ConsentService
from amanat.platform.http.pagination import next_cursor, page_position
from amanat.platform.http.schemas import RequestModel
from amanat.platform.http.services import find_service

# The contract of these operations is the official OBIE document (specs/obie-v3.1.11/),
# not amanat's own OpenAPI, whose conventions (problem+json, snake_case) they do not follow.
router = APIRouter(
    prefix=f"{BASE_PATH}/aisp",
    tags=["open banking: accounts"],
    route_class=ObieRoute,
    include_in_schema=False,
)

Accounts = Annotated[AccessContext, Depends(tpp_access("accounts"))]
AccountsWrite = Annotated[AccessContext, Depends(tpp_access("accounts", policy="write"))]
AccountIdPath = Annotated[str, Path(alias="AccountId", min_length=1, max_length=40)]

# How amanat names a Raast ID (a mobile number registered with SBP's Raast) where OBIE
# expects an account scheme; documented in docs/open-banking.md.
RAAST_SCHEME = "PK.SBP.RaastID"
IBAN_SCHEME = "UK.OBIE.IBAN"


class ReadConsentData(RequestModel):
    Permissions: list[Annotated[str, Field(max_length=40)]] = Field(min_length=1, max_length=30)
    ExpirationDateTime: str | None = Field(default=None, max_length=40)
    TransactionFromDateTime: str | None = Field(default=None, max_length=40)
    TransactionToDateTime: str | None = Field(default=None, max_length=40)

    @field_validator(
        "ExpirationDateTime", "TransactionFromDateTime", "TransactionToDateTime", mode="before"
    )
    @classmethod
    def _absent_not_null(cls, value: object) -> object:
        # OBIE's schema has no null: an open-ended consent leaves the field out.
        if value is None:
            raise ValueError("must be a date-time string; leave the field out instead of null")
        return value


class RiskIn(RequestModel):
    """OBRisk2: an empty object for account information."""


class ReadConsent(RequestModel):
    Data: ReadConsentData
    Risk: RiskIn


def _consent_body(request: Request, consent: Consent) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ConsentId": consent.id,
        "CreationDateTime": timestamp(consent.created_at),
        "Status": consent.status.value,
        "StatusUpdateDateTime": timestamp(consent.status_updated_at),
        "Permissions": list(consent.permissions),
    }
    for key, value in (
        ("ExpirationDateTime", consent.expires_at),
        ("TransactionFromDateTime", consent.transactions_from),
        ("TransactionToDateTime", consent.transactions_to),
    ):
        if value is not None:
            data[key] = timestamp(value)
    body = envelope(request, data)
    body["Risk"] = {}
    return body


@router.post(
    "/account-access-consents", status_code=201, summary="Create an account-access consent"
)
async def create_consent(request: Request, body: ReadConsent, context: AccountsWrite) -> Response:
    consent = await find_service(request, ConsentService).create_account_access(
        tpp_of(context),
        client_actor(request, context),
        permissions=list(body.Data.Permissions),
        expires_at=parse_datetime(body.Data.ExpirationDateTime, "Data.ExpirationDateTime"),
        transactions_from=parse_datetime(
            body.Data.TransactionFromDateTime, "Data.TransactionFromDateTime"
        ),
        transactions_to=parse_datetime(
            body.Data.TransactionToDateTime, "Data.TransactionToDateTime"
        ),
    )
    body_out = _consent_body(request, consent)
    body_out["Links"]["Self"] = f"{self_link(request).split('?', 1)[0]}/{consent.id}"
    return ObieJson(body_out, status_code=201)


@router.get("/account-access-consents/{ConsentId}", summary="Read an account-access consent")
async def get_consent(request: Request, consent_id: ConsentIdPath, context: Accounts) -> Response:
    consent = await find_service(request, ConsentService).get(
        tpp_of(context), consent_id, ConsentKind.ACCOUNT_ACCESS
    )
    return ObieJson(_consent_body(request, consent))


@router.delete(
    "/account-access-consents/{ConsentId}", status_code=204, summary="Delete (revoke) a consent"
)
async def delete_consent(
    request: Request, consent_id: ConsentIdPath, context: AccountsWrite
) -> Response:
    await find_service(request, ConsentService).delete(
        tpp_of(context), consent_id, ConsentKind.ACCOUNT_ACCESS, client_actor(request, context)
    )
    return Response(status_code=204)


# -- resources under a PSU's consent --------------------------------------------------------


async def _consent(request: Request, context: AccessContext) -> Consent:
    token = BoundToken(context.client_id, context.consent_id, context.subject)
    return await find_service(request, ConsentService).usable_for(token, ConsentKind.ACCOUNT_ACCESS)


def _account(account: BankAccount, view: AccessView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AccountId": account.id,
        "Status": "Enabled",
        "Currency": account.currency,
        "AccountType": account.account_type,
        "AccountSubType": account.subtype,
        "Nickname": account.nickname,
        "OpeningDate": timestamp(
            datetime.combine(account.opened_on, datetime.min.time(), tzinfo=KARACHI)
        ),
    }
    if view.account_details:
        identifiers = [
            {"SchemeName": IBAN_SCHEME, "Identification": account.iban, "Name": account.title}
        ]
        if account.raast_id:
            identifiers.append(
                {
                    "SchemeName": RAAST_SCHEME,
                    "Identification": account.raast_id,
                    "Name": account.title,
                }
            )
        body["Account"] = identifiers
    return body


@router.get("/accounts", summary="The accounts the consent covers")
async def list_accounts(request: Request, context: Accounts) -> Response:
    consent = await _consent(request, context)
    accounts = await find_service(request, AccountInformationService).accounts(consent)
    view = AccessView.of(consent.permissions)
    return ObieJson(envelope(request, {"Account": [_account(a, view) for a in accounts]}))


@router.get("/accounts/{AccountId}", summary="One account the consent covers")
async def get_account(request: Request, account_id: AccountIdPath, context: Accounts) -> Response:
    consent = await _consent(request, context)
    accounts = await find_service(request, AccountInformationService).accounts(consent, account_id)
    view = AccessView.of(consent.permissions)
    return ObieJson(envelope(request, {"Account": [_account(a, view) for a in accounts]}))


def _balances(balances: list[BankBalance]) -> list[dict[str, Any]]:
    out = []
    for balance in balances:
        for kind, minor in (
            ("InterimBooked", balance.booked_minor),
            ("InterimAvailable", balance.available_minor),
        ):
            out.append(
                {
                    "AccountId": balance.account_id,
                    "CreditDebitIndicator": "Credit" if minor >= 0 else "Debit",
                    "Type": kind,
                    "DateTime": timestamp(balance.at),
                    "Amount": amount(minor, balance.currency),
                }
            )
    return out


@router.get("/balances", summary="Balances of every account the consent covers")
async def bulk_balances(request: Request, context: Accounts) -> Response:
    consent = await _consent(request, context)
    balances = await find_service(request, AccountInformationService).balances(consent)
    return ObieJson(envelope(request, {"Balance": _balances(balances)}))


@router.get("/accounts/{AccountId}/balances", summary="One account's balances")
async def account_balances(
    request: Request, account_id: AccountIdPath, context: Accounts
) -> Response:
    consent = await _consent(request, context)
    balances = await find_service(request, AccountInformationService).balances(consent, account_id)
    return ObieJson(envelope(request, {"Balance": _balances(balances)}))


def _transaction(item: BankTransaction, view: AccessView) -> dict[str, Any]:
    currency = item.currency
    body: dict[str, Any] = {
        "AccountId": item.account_id,
        "TransactionId": item.id,
        "CreditDebitIndicator": "Credit" if item.credit else "Debit",
        "Status": "Booked",
        "BookingDateTime": timestamp(item.booked_at),
        "ValueDateTime": timestamp(item.booked_at),
        "Amount": amount(item.amount_minor, currency),
        "ProprietaryBankTransactionCode": {"Code": item.code, "Issuer": "amanat sandbox bank"},
    }
    if view.transaction_details:
        body["TransactionInformation"] = item.description[:500]
        body["Balance"] = {
            "CreditDebitIndicator": "Credit" if item.balance_after_minor >= 0 else "Debit",
            "Type": "InterimBooked",
            "Amount": amount(item.balance_after_minor, currency),
        }
        if item.merchant_name:
            body["MerchantDetails"] = {"MerchantName": item.merchant_name}
        party: dict[str, str] = {}
        if item.counterparty_name:
            party["Name"] = item.counterparty_name
        if item.counterparty_iban:
            party |= {"SchemeName": IBAN_SCHEME, "Identification": item.counterparty_iban}
        if party:
            body["DebtorAccount" if item.credit else "CreditorAccount"] = party
    return body


_QUERY_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})?"
)


def _query_datetime(text: str | None, name: str) -> datetime | None:
    """OBIE's prose says query date-times carry no offset (the bank's local time, PKT);
    its OpenAPI document says RFC 3339 date-time. Both are accepted; nothing else is,
    an empty value included."""
    if text is None:
        return None
    try:
        if not _QUERY_DATE_TIME.fullmatch(text):
            raise ValueError(text)
        moment = datetime.fromisoformat(text.replace("z", "Z"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=KARACHI)
        if not MIN_YEAR <= moment.astimezone(UTC).year <= MAX_YEAR:
            raise ValueError(text)
    except (ValueError, OverflowError):
        raise FieldInvalid(
            f"{name} must be an ISO 8601 date-time, e.g. 2026-11-01T00:00:00.",
            path=name,
            obie_code="UK.OBIE.Field.InvalidDate",
        ) from None
    return moment


async def _transactions(
    request: Request,
    context: AccessContext,
    account_id: str | None,
    from_text: str | None,
    to_text: str | None,
    cursor: str | None,
) -> Response:
    consent = await _consent(request, context)
    window = TransactionWindow(
        booked_from=_query_datetime(from_text, "fromBookingDateTime"),
        booked_to=_query_datetime(to_text, "toBookingDateTime"),
        after=page_position(cursor),
    )
    service = find_service(request, AccountInformationService)
    page = await service.transactions(consent, account_id, window)
    view = AccessView.of(consent.permissions)
    items = [_transaction(t, view) for t in page.items]
    links: dict[str, str] = {}
    last = page.items[-1] if page.items else None
    if last is not None and page.has_more:
        params = dict(request.query_params)
        params["cursor"] = next_cursor(True, last.booked_at, last.id) or ""
        links["Next"] = self_link(request).split("?", 1)[0] + "?" + urlencode(params)
    body = envelope(request, {"Transaction": items}, **links)
    body["Meta"] = {}
    return ObieJson(body)


@router.get("/transactions", summary="Transactions of every account the consent covers")
async def bulk_transactions(
    request: Request,
    context: Accounts,
    from_booking: Annotated[str | None, Query(alias="fromBookingDateTime", max_length=40)] = None,
    to_booking: Annotated[str | None, Query(alias="toBookingDateTime", max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    return await _transactions(request, context, None, from_booking, to_booking, cursor)


@router.get("/accounts/{AccountId}/transactions", summary="One account's transactions")
async def account_transactions(
    request: Request,
    account_id: AccountIdPath,
    context: Accounts,
    from_booking: Annotated[str | None, Query(alias="fromBookingDateTime", max_length=40)] = None,
    to_booking: Annotated[str | None, Query(alias="toBookingDateTime", max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    return await _transactions(request, context, account_id, from_booking, to_booking, cursor)
