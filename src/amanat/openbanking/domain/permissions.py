"""Account-access permissions: which combinations a TPP may ask for, and what each lets
it see.

The codes are v3.1.11's ``OBExternalPermissions1Code``. amanat serves accounts, balances
and transactions; a consent asking for a cluster it does not serve (standing orders,
statements...) is refused at creation rather than granted and then silently empty, so a
TPP learns at once what it can build on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

ALL_PERMISSIONS = frozenset(
    {
        "ReadAccountsBasic",
        "ReadAccountsDetail",
        "ReadBalances",
        "ReadBeneficiariesBasic",
        "ReadBeneficiariesDetail",
        "ReadDirectDebits",
        "ReadOffers",
        "ReadPAN",
        "ReadParty",
        "ReadPartyPSU",
        "ReadProducts",
        "ReadScheduledPaymentsBasic",
        "ReadScheduledPaymentsDetail",
        "ReadStandingOrdersBasic",
        "ReadStandingOrdersDetail",
        "ReadStatementsBasic",
        "ReadStatementsDetail",
        "ReadTransactionsBasic",
        "ReadTransactionsCredits",
        "ReadTransactionsDebits",
        "ReadTransactionsDetail",
    }
)

SUPPORTED_PERMISSIONS = frozenset(
    {
        "ReadAccountsBasic",
        "ReadAccountsDetail",
        "ReadBalances",
        "ReadTransactionsBasic",
        "ReadTransactionsCredits",
        "ReadTransactionsDebits",
        "ReadTransactionsDetail",
    }
)

# What the PSU's consent page says each permission shares, in plain words.
PERMISSION_DESCRIPTIONS: dict[str, str] = {
    "ReadAccountsBasic": "Which accounts you hold (type, currency, nickname)",
    "ReadAccountsDetail": (
        "Your account numbers (IBAN), account titles, and the mobile number an account is "
        "registered under for Raast"
    ),
    "ReadBalances": "Your account balances",
    "ReadTransactionsBasic": "Your transactions: dates, amounts and types",
    "ReadTransactionsDetail": (
        "Your transactions in detail: descriptions, merchants, counterparties and running balances"
    ),
    "ReadTransactionsCredits": "Money coming in",
    "ReadTransactionsDebits": "Money going out",
}

_TRANSACTION_LEVELS = frozenset({"ReadTransactionsBasic", "ReadTransactionsDetail"})
_TRANSACTION_DIRECTIONS = frozenset({"ReadTransactionsCredits", "ReadTransactionsDebits"})


class InvalidConsentRequest(ValueError):
    """A permission set the bank will not grant; ``path`` names the offending field."""

    def __init__(self, message: str, path: str = "Data.Permissions") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def validate_permissions(requested: Iterable[str]) -> tuple[str, ...]:
    """The requested permissions, de-duplicated in their order, or raise."""
    permissions = tuple(dict.fromkeys(requested))
    if not permissions:
        raise InvalidConsentRequest("At least one permission is required.")
    unknown = [p for p in permissions if p not in ALL_PERMISSIONS]
    if unknown:
        raise InvalidConsentRequest(f"Unknown permission(s): {', '.join(unknown)}.")
    unsupported = [p for p in permissions if p not in SUPPORTED_PERMISSIONS]
    if unsupported:
        raise InvalidConsentRequest(
            f"This bank does not offer: {', '.join(unsupported)}. It offers "
            f"{', '.join(sorted(SUPPORTED_PERMISSIONS))}."
        )
    chosen = set(permissions)
    if chosen & _TRANSACTION_LEVELS and not chosen & _TRANSACTION_DIRECTIONS:
        raise InvalidConsentRequest(
            "ReadTransactionsBasic or ReadTransactionsDetail needs ReadTransactionsCredits "
            "and/or ReadTransactionsDebits."
        )
    if chosen & _TRANSACTION_DIRECTIONS and not chosen & _TRANSACTION_LEVELS:
        raise InvalidConsentRequest(
            "ReadTransactionsCredits or ReadTransactionsDebits needs ReadTransactionsBasic "
            "or ReadTransactionsDetail."
        )
    return permissions


def validate_window(
    now: datetime,
    expires_at: datetime | None,
    transactions_from: datetime | None,
    transactions_to: datetime | None,
) -> None:
    if expires_at is not None and expires_at <= now:
        raise InvalidConsentRequest(
            "ExpirationDateTime must be in the future.", path="Data.ExpirationDateTime"
        )
    if (
        transactions_from is not None
        and transactions_to is not None
        and transactions_from > transactions_to
    ):
        raise InvalidConsentRequest(
            "TransactionFromDateTime is after TransactionToDateTime.",
            path="Data.TransactionFromDateTime",
        )


@dataclass(frozen=True, slots=True)
class AccessView:
    """What one account-access consent lets its TPP see."""

    accounts: bool
    account_details: bool
    balances: bool
    transactions: bool
    transaction_details: bool
    credits: bool
    debits: bool

    @classmethod
    def of(cls, permissions: Iterable[str]) -> AccessView:
        granted = set(permissions)
        return cls(
            accounts=bool(granted & {"ReadAccountsBasic", "ReadAccountsDetail"}),
            account_details="ReadAccountsDetail" in granted,
            balances="ReadBalances" in granted,
            transactions=bool(granted & _TRANSACTION_LEVELS),
            transaction_details="ReadTransactionsDetail" in granted,
            credits="ReadTransactionsCredits" in granted,
            debits="ReadTransactionsDebits" in granted,
        )
