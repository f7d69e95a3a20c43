"""The event catalogue: every event type amanat emits, what it means, and a sample.

An event is written in the same transaction as the state change it reports (a
transactional outbox), so a change is never committed without its event or the other way
round. The embedded object is the object as committed with that change and carries its
``version``: a receiver keeps the highest version it has seen and drops older ones, which
makes out-of-order and repeated deliveries harmless.

This module is the one place that names event types; docs/webhooks.md lists them and a
test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amanat.kernel.clock import format_timestamp
from amanat.payments.domain.payments import Payment, PaymentStatus, PaymentType


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    object: str
    meaning: str
    emitted: bool = True  # False: reserved for a capability that is not built yet


_CATALOGUE: tuple[EventType, ...] = (
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
    EventType(
        "webhook_endpoint.disabled",
        "webhook_endpoint",
        "amanat disabled one of your endpoints (it answered 410, or failed for days).",
    ),
    EventType("dispute.opened", "dispute", "A payer disputed a payment.", emitted=False),
    EventType("dispute.closed", "dispute", "A dispute was decided.", emitted=False),
    EventType("settlement.paid", "settlement", "A settlement was paid out.", emitted=False),
    EventType(
        "reconciliation.break_opened",
        "reconciliation_break",
        "Reconciliation found a difference between amanat and the bank.",
        emitted=False,
    ),
    EventType("consent.authorised", "consent", "A PSU authorised a consent.", emitted=False),
    EventType("consent.revoked", "consent", "A consent was revoked.", emitted=False),
)

CATALOGUE: dict[str, EventType] = {event.name: event for event in _CATALOGUE}
ALL_EVENTS = "*"

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


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    partner_id: str
    type: str
    object_type: str
    object_id: str
    object_version: int | None
    created_at: datetime
    data: dict[str, Any]  # the object as committed

    def envelope(self) -> dict[str, Any]:
        """The body of a webhook delivery and of ``GET /v1/events/{id}``."""
        return {
            "id": self.id,
            "object": "event",
            "type": self.type,
            "created_at": format_timestamp(self.created_at),
            "data": {"object": self.data},
        }
