"""A consent and its lifecycle, as OBIE Read/Write API v3.1.11 names them.

A TPP creates a consent (``AwaitingAuthorisation``); the PSU approves it in the bank's
hosted page (``Authorised``) or denies it (``Rejected``); a payment consent is
``Consumed`` by the one payment it allows (or ``Rejected`` when it is not used within an
hour of its authorisation); an account-access or funds-confirmation consent
ends ``Revoked`` when the TPP deletes it, the PSU withdraws it or its
``ExpirationDateTime`` passes. The end states are final: nothing leaves them, and nothing
goes back to ``AwaitingAuthorisation``.

v3.1.11 has no ``Expired`` status for these consents, so an expired consent is
``Revoked`` with ``ended_reason="expired"``; whether a job has recorded that yet or not,
:meth:`Consent.usable` refuses it from the first instant past its expiry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class ConsentKind(StrEnum):
    ACCOUNT_ACCESS = "account_access"
    DOMESTIC_PAYMENT = "domestic_payment"
    FUNDS_CONFIRMATION = "funds_confirmation"


class ConsentStatus(StrEnum):
    AWAITING_AUTHORISATION = "AwaitingAuthorisation"
    AUTHORISED = "Authorised"
    REJECTED = "Rejected"
    CONSUMED = "Consumed"
    REVOKED = "Revoked"


FINAL_STATUSES = frozenset({ConsentStatus.REJECTED, ConsentStatus.CONSUMED, ConsentStatus.REVOKED})

# Which statuses each kind may reach (v3.1.11's enums per resource).
KIND_STATUSES: dict[ConsentKind, frozenset[ConsentStatus]] = {
    ConsentKind.ACCOUNT_ACCESS: frozenset(
        {
            ConsentStatus.AWAITING_AUTHORISATION,
            ConsentStatus.AUTHORISED,
            ConsentStatus.REJECTED,
            ConsentStatus.REVOKED,
        }
    ),
    ConsentKind.FUNDS_CONFIRMATION: frozenset(
        {
            ConsentStatus.AWAITING_AUTHORISATION,
            ConsentStatus.AUTHORISED,
            ConsentStatus.REJECTED,
            ConsentStatus.REVOKED,
        }
    ),
    ConsentKind.DOMESTIC_PAYMENT: frozenset(
        {
            ConsentStatus.AWAITING_AUTHORISATION,
            ConsentStatus.AUTHORISED,
            ConsentStatus.REJECTED,
            ConsentStatus.CONSUMED,
        }
    ),
}

# How long a consent may wait for its PSU. The hosted walk lasts minutes; a consent nobody
# authorised within this window is stale, and a TPP polling it should hear "Rejected".
AWAITING_WINDOW = timedelta(hours=1)
# How long an authorised payment consent may wait for its one payment: the customer
# approved a payment now, not a standing permission to pay.
PAYMENT_WINDOW = timedelta(hours=1)

# The OAuth scope a consent's token carries, by kind.
KIND_SCOPES: dict[ConsentKind, str] = {
    ConsentKind.ACCOUNT_ACCESS: "accounts",
    ConsentKind.DOMESTIC_PAYMENT: "payments",
    ConsentKind.FUNDS_CONFIRMATION: "fundsconfirmations",
}


class ConsentStateError(Exception):
    """A transition the lifecycle does not allow from the consent's status."""

    def __init__(self, consent: Consent, wanted: str) -> None:
        super().__init__(f"consent {consent.id} is {consent.status.value}; cannot {wanted}")
        self.status = consent.status
        self.wanted = wanted


@dataclass(frozen=True, slots=True)
class Consent:
    id: str
    kind: ConsentKind
    partner_id: str
    client_id: str
    status: ConsentStatus
    created_at: datetime
    status_updated_at: datetime
    permissions: tuple[str, ...] = ()
    expires_at: datetime | None = None
    transactions_from: datetime | None = None
    transactions_to: datetime | None = None
    psu_id: str | None = None
    account_ids: tuple[str, ...] = ()
    # The kind's own request data as the TPP sent it (a payment's Initiation and Risk,
    # a funds confirmation's DebtorAccount), kept to answer GET and to check that a
    # payment matches its consent.
    details: dict[str, Any] | None = None
    ended_reason: str | None = None
    version: int = 1

    @property
    def scope(self) -> str:
        return KIND_SCOPES[self.kind]

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def usable(self, now: datetime) -> bool:
        """Whether a token bound to this consent may be used now."""
        return self.status is ConsentStatus.AUTHORISED and not self.is_expired(now)

    def as_of(self, now: datetime) -> Consent:
        """The consent as it stands at ``now``: an authorised consent past its expiry is
        revoked, one left awaiting past :data:`AWAITING_WINDOW` is rejected, whether or not
        the job that records it has run yet."""
        expired = self.status is ConsentStatus.AUTHORISED and self.is_expired(now)
        if expired:
            ended = (
                ConsentStatus.REJECTED
                if self.kind is ConsentKind.DOMESTIC_PAYMENT
                else ConsentStatus.REVOKED
            )
            return self._moved(ended, self.expires_at or now, ended_reason="expired")
        if self.status is ConsentStatus.AWAITING_AUTHORISATION:
            deadline = self.created_at + AWAITING_WINDOW
            if self.expires_at is not None:
                deadline = min(deadline, self.expires_at)
            if now >= deadline:
                return self._moved(
                    ConsentStatus.REJECTED, deadline, ended_reason="not_authorised_in_time"
                )
        return self

    def _moved(self, status: ConsentStatus, now: datetime, **changes: Any) -> Consent:
        if status not in KIND_STATUSES[self.kind]:
            raise ConsentStateError(self, f"become {status.value}")
        return replace(
            self,
            status=status,
            status_updated_at=max(now, self.status_updated_at),
            version=self.version + 1,
            **changes,
        )

    def authorise(self, psu_id: str, account_ids: tuple[str, ...], now: datetime) -> Consent:
        if self.status is not ConsentStatus.AWAITING_AUTHORISATION:
            raise ConsentStateError(self, "be authorised")
        if self.is_expired(now):
            raise ConsentStateError(self, "be authorised after its expiry")
        if not account_ids:
            raise ConsentStateError(self, "be authorised without an account")
        expires_at = self.expires_at
        if self.kind is ConsentKind.DOMESTIC_PAYMENT:
            expires_at = now + PAYMENT_WINDOW
        return self._moved(
            ConsentStatus.AUTHORISED,
            now,
            psu_id=psu_id,
            account_ids=tuple(account_ids),
            expires_at=expires_at,
        )

    def reject(self, now: datetime, reason: str, psu_id: str | None = None) -> Consent:
        if self.status is not ConsentStatus.AWAITING_AUTHORISATION:
            raise ConsentStateError(self, "be rejected")
        return self._moved(
            ConsentStatus.REJECTED, now, ended_reason=reason, psu_id=psu_id or self.psu_id
        )

    def revoke(self, now: datetime, reason: str) -> Consent:
        """The TPP deleted it, the PSU withdrew it, or it expired."""
        if self.kind is ConsentKind.DOMESTIC_PAYMENT:
            raise ConsentStateError(self, "be revoked (a payment consent is consumed)")
        if self.status not in (ConsentStatus.AUTHORISED, ConsentStatus.AWAITING_AUTHORISATION):
            raise ConsentStateError(self, "be revoked")
        return self._moved(ConsentStatus.REVOKED, now, ended_reason=reason)

    def consume(self, now: datetime) -> Consent:
        if self.kind is not ConsentKind.DOMESTIC_PAYMENT:
            raise ConsentStateError(self, "be consumed")
        if not self.usable(now):
            raise ConsentStateError(self, "be consumed")
        return self._moved(ConsentStatus.CONSUMED, now, ended_reason="consumed")
