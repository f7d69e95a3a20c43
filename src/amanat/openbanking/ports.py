"""What open banking's services need: the bank's core system (the CoreBanking port), and
amanat's own stores of consents and PSU authorisation walks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from amanat.identity.domain import OAuthClient
from amanat.kernel.pagination import Page
from amanat.openbanking.domain.authorisation import AuthorisationWalk
from amanat.openbanking.domain.consents import Consent
from amanat.platform.jobs.ports import OutboxTx

# -- the bank's side --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BankCustomer:
    id: str
    username: str
    full_name: str
    mobile: str


@dataclass(frozen=True, slots=True)
class BankAccount:
    id: str
    customer_id: str
    bank_code: str
    iban: str
    title: str
    currency: str
    account_type: str  # OBIE OBExternalAccountType1Code: Personal | Business
    subtype: str  # OBIE OBExternalAccountSubType1Code: CurrentAccount | Savings ...
    nickname: str
    opened_on: date
    raast_id: str | None


@dataclass(frozen=True, slots=True)
class BankBalance:
    account_id: str
    currency: str
    booked_minor: int
    available_minor: int
    at: datetime


@dataclass(frozen=True, slots=True)
class BankTransaction:
    id: str
    account_id: str
    booked_at: datetime
    amount_minor: int
    currency: str
    credit: bool
    code: str
    description: str
    merchant_name: str | None
    counterparty_name: str | None
    counterparty_iban: str | None
    balance_after_minor: int


@dataclass(frozen=True, slots=True)
class TransactionQuery:
    account_ids: tuple[str, ...]
    booked_from: datetime | None = None
    booked_to: datetime | None = None
    credits: bool = True
    debits: bool = True
    # Keyset: the (booked_at, id) of the last transaction of the previous page.
    after: tuple[datetime, str] | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AccountEntry:
    """One booking on a customer's account: a payment out, or its return."""

    account_id: str
    amount_minor: int
    currency: str
    description: str  # the statement line the customer will read
    counterparty_name: str | None
    counterparty_iban: str | None
    reference: str  # the payment's id


class CoreBanking(Protocol):
    """The bank's core system, as open banking reads it. The sandbox bank implements it
    (adapters/sandbox_bank.py); a bank puts its own core behind the same methods."""

    async def sign_in(self, username: str, password: str) -> BankCustomer | None: ...
    async def customer(self, customer_id: str) -> BankCustomer | None: ...
    async def accounts_of(self, customer_id: str) -> list[BankAccount]: ...
    async def accounts(self, account_ids: tuple[str, ...]) -> list[BankAccount]: ...
    async def balances(self, account_ids: tuple[str, ...]) -> list[BankBalance]: ...
    async def transactions(self, query: TransactionQuery) -> Page[BankTransaction]: ...
    async def account_title(self, *, iban: str | None, raast_id: str | None) -> str | None:
        """The title of the account at this bank with this IBAN or Raast ID (normalised
        already), or None when the bank holds no such account."""
        ...

    async def credit(self, entry: AccountEntry) -> str:
        """Book money back into the customer's account (a payment that did not go
        through), joining the caller's unit of work; the transaction's id."""
        ...

    async def debit(self, debit: AccountEntry) -> str:
        """Book a payment out of the customer's account; the transaction's id. Raises
        :class:`amanat.openbanking.errors.FundsUnavailable` and books nothing when the
        account cannot cover it. Joins the caller's unit of work, so the debit commits
        with the payment it pays for, or not at all."""
        ...


# -- amanat's stores ---------------------------------------------------------------------


class ConsentRepository(Protocol):
    async def add(self, consent: Consent, sealed_details: str | None) -> None: ...
    async def get(self, consent_id: str) -> tuple[Consent, str | None] | None:
        """The consent and its sealed details."""
        ...

    async def get_for_update(self, consent_id: str) -> tuple[Consent, str | None] | None: ...
    async def save(self, consent: Consent) -> bool:
        """Write a changed consent if its stored version is still ``consent.version - 1``;
        False when another change got there first."""
        ...

    async def of_psu(self, psu_id: str, *, limit: int) -> list[Consent]: ...
    async def due_to_end(self, now: datetime, awaiting_before: datetime, limit: int) -> list[str]:
        """Ids of consents awaiting authorisation since before ``awaiting_before``, or
        authorised with an expiry at or before ``now``."""
        ...


class WalkRepository(Protocol):
    async def add(self, walk: AuthorisationWalk) -> None: ...
    async def get_for_update(self, walk_id: str) -> AuthorisationWalk | None: ...
    async def save(self, walk: AuthorisationWalk) -> None: ...
    async def delete_ended(self, before: datetime) -> int: ...


class PayeeCheckRepository(Protocol):
    async def add(
        self, check_id: str, partner_id: str, account_bidx: str, verdict: str, at: datetime
    ) -> None: ...
    async def confirmed_since(
        self, partner_id: str, account_bidx: str, since: datetime, verdicts: tuple[str, ...]
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class InitiatedPayment:
    payment_id: str
    consent_id: str
    partner_id: str
    account_id: str
    amount_minor: int
    currency: str
    created_at: datetime
    returned_at: datetime | None = None


class InitiatedPaymentRepository(Protocol):
    async def add(self, payment: InitiatedPayment) -> None: ...
    async def get(
        self, payment_id: str, *, for_update: bool = False
    ) -> InitiatedPayment | None: ...
    async def mark_returned(self, payment_id: str, at: datetime) -> None: ...


class BlindIndexer(Protocol):
    """:meth:`DataProtectionService.blind_index_of`: find an account by identifier
    without storing the identifier."""

    async def blind_index_of(self, kind: str, value: str) -> str: ...


class OpenBankingTx(OutboxTx, Protocol):
    @property
    def consents(self) -> ConsentRepository: ...

    @property
    def psu_walks(self) -> WalkRepository: ...

    @property
    def payee_checks(self) -> PayeeCheckRepository: ...

    @property
    def initiated_payments(self) -> InitiatedPaymentRepository: ...


class Sealer(Protocol):
    """Field encryption (:class:`amanat.platform.protection.service.DataProtectionService`):
    a consent's details name the PSU's account and the payee."""

    async def seal(self, value: str, *, table: str, column: str, row_id: str) -> str: ...
    async def unseal(self, value: str, *, table: str, column: str, row_id: str) -> str: ...


class MessageSigner(Protocol):
    """Detached JWS over message bodies (adapters/jws.py)."""

    async def verify(self, client: OAuthClient, signature: str | None, body: bytes) -> None:
        """Raise :class:`amanat.openbanking.errors.SignatureRefused` unless ``signature``
        is the client's valid signature of ``body``."""
        ...

    async def sign(self, body: bytes) -> str: ...


class TokenRevoker(Protocol):
    """The OAuth server: revoke what was issued under a consent that ended."""

    async def revoke_consent_tokens(self, consent_id: str, client_id: str, reason: str) -> int: ...


class FailureGuard(Protocol):
    """Counts failures per key in a shared store (the rate limiter's); a key past its
    budget is locked out for the window."""

    async def is_locked(self, key: str) -> bool: ...
    async def record_failure(self, key: str) -> bool: ...


class CodeIssuer(Protocol):
    """The OAuth server's authorization endpoint, once the PSU approved
    (:meth:`amanat.auth.service.OAuthService.issue_code`)."""

    async def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scope: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
        subject: str,
        consent_id: str | None,
    ) -> str: ...
