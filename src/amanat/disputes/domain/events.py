"""What disputes tell merchants (webhooks turns each into an event of the merchant whose
payment is disputed, in the transaction that caused it)."""

from __future__ import annotations

from amanat.kernel.events import EventType

OPENED = "dispute.opened"
UPDATED = "dispute.updated"
CLOSED = "dispute.closed"

EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        OPENED,
        "dispute",
        "A payment of yours is disputed (by you, by operations, or by the payer's bank "
        "through the rail): answer by `respond_by_date`. A disputed collection's amount is "
        "held out of your available balance.",
    ),
    EventType(
        UPDATED,
        "dispute",
        "A dispute changed without closing: evidence was added, or its response was "
        "submitted and it is now `under_review`.",
    ),
    EventType(
        CLOSED,
        "dispute",
        "A dispute closed; `status` is the outcome (`won`, `lost`, `accepted` or "
        "`withdrawn`) and `released_amount`, `reversed_amount` and `returned_amount` say "
        "where its money went.",
    ),
)
