"""What payments publish when a payment changes, and the partner events that raises.

The payments capability publishes :class:`PaymentChanged` into its transaction; whoever
subscribed (the webhooks capability turns it into a partner event) runs in the same
transaction. Payments does not know who listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amanat.kernel.events import EventType
from amanat.payments.domain.payments import Payment, PaymentStatus, PaymentType


@dataclass(frozen=True, slots=True)
class PaymentChanged:
    """A new version of a payment was written. ``event_type`` is the partner event it
    raises (None: none, a new pending payment); ``view`` is the payment as partners see
    it at this version."""

    partner_id: str
    payment_id: str
    version: int
    event_type: str | None
    view: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BalanceToppedUp:
    partner_id: str
    top_up_id: str
    balance: dict[str, Any]
    """The balance object as partners see it, after the top-up."""


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("payment.processing", "payment", "The rail accepted a payout; money is moving."),
    EventType("payment.succeeded", "payment", "A payout reached the beneficiary."),
    EventType("payment.failed", "payment", "A payout or collection failed; see `failure`."),
    EventType("payment.canceled", "payment", "You canceled a payment before it was sent."),
    EventType(
        "payment.updated",
        "payment",
        "A collection's `refunded_amount` changed, its status did not: a refund was made "
        "against it, or a refund failed and its amount is refundable again.",
    ),
    EventType(
        "collection.awaiting_approval",
        "payment",
        "A request to pay reached the payer, who has until `expires_at` to approve it.",
    ),
    EventType("collection.approved", "payment", "The payer approved a collection; money is yours."),
    EventType("collection.declined", "payment", "The payer declined a collection."),
    EventType("collection.expired", "payment", "Nobody approved a collection in time."),
    EventType("refund.processing", "refund", "The rail accepted a refund."),
    EventType("refund.succeeded", "refund", "A refund reached the payer."),
    EventType("refund.failed", "refund", "A refund failed; the amount is refundable again."),
    EventType(
        "balance.topped_up", "balance", "Sandbox funds were added to your balance (sandbox only)."
    ),
)

_DECLINE_CODES = frozenset({"rail_cust", "rail_declined"})


def payment_event_type(payment: Payment) -> str | None:
    """The event a payment's new state raises, or None (a new, pending payment)."""
    status, kind = payment.status, payment.type
    if status is PaymentStatus.PENDING:
        return None
    if kind is PaymentType.REFUND:
        return f"refund.{status.value}"
    if kind is PaymentType.COLLECTION:
        if status is PaymentStatus.AWAITING_APPROVAL:
            return "collection.awaiting_approval"
        if status is PaymentStatus.SUCCEEDED:
            return "collection.approved"
        if status is PaymentStatus.EXPIRED:
            return "collection.expired"
        failure = payment.failure
        if status is PaymentStatus.FAILED and failure and failure.code in _DECLINE_CODES:
            return "collection.declined"
    return f"payment.{status.value}"
