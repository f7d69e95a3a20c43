"""Payments (payouts and Raast collections) and their state machines.

A transition is legal only if the table below allows it; anything else raises
:class:`IllegalTransition`, so a payment can never skip or reverse a state. Every applied
transition bumps ``version``. Rail events carry the rail's own sequence number: one at or
below the last applied is stale and is ignored (out-of-order and duplicate callbacks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from amanat.kernel.errors import Conflict
from amanat.kernel.money import Money
from amanat.payments.domain.errors import PaymentsError


class PaymentType(StrEnum):
    PAYOUT = "payout"
    COLLECTION = "collection"
    REFUND = "refund"  # money back to a collection's payer; moves like a payout


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    AWAITING_APPROVAL = "awaiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"


S = PaymentStatus
TERMINAL = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELED, S.EXPIRED})

TRANSITIONS: dict[PaymentType, dict[PaymentStatus, frozenset[PaymentStatus]]] = {
    PaymentType.PAYOUT: {
        S.PENDING: frozenset({S.PROCESSING, S.FAILED, S.CANCELED}),
        S.PROCESSING: frozenset({S.SUCCEEDED, S.FAILED}),
    },
    PaymentType.COLLECTION: {
        S.PENDING: frozenset({S.AWAITING_APPROVAL, S.FAILED, S.CANCELED}),
        S.AWAITING_APPROVAL: frozenset({S.SUCCEEDED, S.FAILED, S.EXPIRED}),
    },
}
# A refund moves like a payout but is never canceled: it is sent as soon as it is made.
TRANSITIONS[PaymentType.REFUND] = {
    S.PENDING: frozenset({S.PROCESSING, S.FAILED}),
    S.PROCESSING: frozenset({S.SUCCEEDED, S.FAILED}),
}


class IllegalTransition(PaymentsError, Conflict):
    code = "illegal_transition"


@dataclass(frozen=True, slots=True)
class Failure:
    code: str
    message: str


class AccountScheme(StrEnum):
    """How the other side's account is named."""

    IBAN = "iban"
    RAAST_ID = "raast_id"


@dataclass(frozen=True, slots=True)
class Party:
    """The other side of a payment: a customer record plus what is safe to show."""

    subject_id: str
    bank_code: str | None
    iban_last4: str | None
    kind: AccountScheme


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    partner_id: str
    type: PaymentType
    status: PaymentStatus
    amount: Money
    counterparty: Party
    reference: str | None
    description: str | None
    metadata: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    failure: Failure | None = None
    rail_reference: str | None = None
    rail_sequence: int = 0
    expires_at: datetime | None = None
    refunded_amount: int = 0
    parent_id: str | None = None
    """A refund's collection."""
    client_id: str | None = None
    """The OAuth client that created it (None when made by an operator or the CLI)."""
    submitted_at: datetime | None = None
    """When the worker first handed it to the rail (after that it can no longer be
    canceled)."""

    @property
    def end_to_end_id(self) -> str:
        # The payment id is the rail's end-to-end id, so a retried submission is the same
        # transfer at the rail and can never pay twice.
        return self.id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def can_become(self, target: PaymentStatus) -> bool:
        return target in TRANSITIONS[self.type].get(self.status, frozenset())

    def to(
        self,
        target: PaymentStatus,
        *,
        at: datetime,
        failure: Failure | None = None,
        rail_sequence: int | None = None,
        rail_reference: str | None = None,
    ) -> Payment:
        if not self.can_become(target):
            raise IllegalTransition(
                f"A {self.type.value} cannot go from {self.status.value} to {target.value}."
            )
        return replace(
            self,
            status=target,
            version=self.version + 1,
            updated_at=at,
            failure=failure if target is S.FAILED else None,
            rail_sequence=max(self.rail_sequence, rail_sequence or 0),
            rail_reference=rail_reference or self.rail_reference,
        )

    @property
    def refundable(self) -> int:
        if self.type is not PaymentType.COLLECTION or self.status is not S.SUCCEEDED:
            return 0
        return self.amount.amount - self.refunded_amount


# What a rail status means for each payment type.
_RAIL_TARGET: dict[PaymentType, dict[str, PaymentStatus]] = {
    PaymentType.PAYOUT: {"accepted": S.PROCESSING, "settled": S.SUCCEEDED, "rejected": S.FAILED},
    PaymentType.COLLECTION: {
        "accepted": S.AWAITING_APPROVAL,
        "approved": S.SUCCEEDED,
        "settled": S.SUCCEEDED,
        "declined": S.FAILED,
        "rejected": S.FAILED,
        "expired": S.EXPIRED,
    },
}
_RAIL_TARGET[PaymentType.REFUND] = _RAIL_TARGET[PaymentType.PAYOUT]

# Every code a failed payment's `failure.code` can carry, so partners can switch on a closed
# list: the rail reason codes amanat knows (ISO 20022 external status reasons and the rail's
# own refusals) and amanat's own. A reason code outside it is reported as `rail_rejected`,
# its raw value kept in the message for support.
RAIL_FAILURE_CODES = frozenset(
    {
        "rail_ac01",
        "rail_ac06",
        "rail_ab08",
        "rail_am02",
        "rail_noas",
        "rail_cust",
        "rail_declined",
        "rail_rejected",
        "rail_unavailable",
        "rail_invalid_request",
        "rail_duplicate_end_to_end_id",
        "rail_unknown_transfer",
    }
)
_RAW_CODE = re.compile(r"[A-Za-z0-9_]{1,40}")

RAIL_REASONS = {
    "AC01": "The beneficiary account number is invalid.",
    "AC06": "The beneficiary account is blocked.",
    "AB08": "The beneficiary bank is offline.",
    "NOAS": "Nobody answered the request in time.",
    "AM02": "The amount exceeds the beneficiary bank's limit.",
    "CUST": "The customer declined the request.",
    "declined": "The customer declined the request.",
}


@dataclass(frozen=True, slots=True)
class RailDecision:
    """What to do with a rail event: the states to go through, or why it changes nothing."""

    steps: tuple[Payment, ...]
    ignored: str | None = None

    @property
    def payment(self) -> Payment | None:
        return self.steps[-1] if self.steps else None


def apply_rail_status(
    payment: Payment,
    status: str,
    *,
    sequence: int,
    at: datetime,
    reason_code: str | None = None,
    reason: str | None = None,
) -> RailDecision:
    if 0 < sequence <= payment.rail_sequence:
        return RailDecision((), ignored="stale")
    target = _RAIL_TARGET[payment.type].get(status)
    if target is None:
        return RailDecision((), ignored=f"unknown rail status {status}")
    if payment.status is target:
        return RailDecision((), ignored="duplicate")
    if payment.is_terminal:
        return RailDecision((), ignored="already final")
    steps: list[Payment] = []
    current = payment
    # A final outcome may arrive before the 'accepted' event (out of order): pass
    # through the intermediate state so no state is ever skipped.
    if not current.can_become(target) and current.status is S.PENDING:
        intermediate = _RAIL_TARGET[payment.type]["accepted"]
        if current.can_become(intermediate) and intermediate is not target:
            current = current.to(intermediate, at=at)
            steps.append(current)
    if not current.can_become(target):
        return RailDecision((), ignored=f"{payment.status.value} -> {target.value} not allowed")
    failure = None
    if target is S.FAILED:
        code = reason_code or status
        failure = rail_failure(code, reason or RAIL_REASONS.get(code, "The rail refused it."))
    steps.append(current.to(target, at=at, failure=failure, rail_sequence=sequence))
    return RailDecision(tuple(steps))


def rail_failure(raw_code: str, message: str) -> Failure:
    """The failure for a rail reason code: ``rail_<code>`` when it is one of
    :data:`RAIL_FAILURE_CODES`, else ``rail_rejected`` with the raw code in the message."""
    code = f"rail_{raw_code.lower()}"
    if code in RAIL_FAILURE_CODES:
        return Failure(code=code, message=message)
    shown = raw_code if _RAW_CODE.fullmatch(raw_code) else "unreadable"
    return Failure(code="rail_rejected", message=f"{message} (rail reason code {shown})")
