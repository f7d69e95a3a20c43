"""What settlement and reconciliation tell partners (webhooks turns each into an event of
the partner it concerns, in the transaction that caused it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amanat.kernel.events import EventType

EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        "settlement.paid",
        "settlement",
        "A settlement cycle closed: its lines are final, its fees charged and its net "
        "applied to your balance. Download the lines from `GET /v1/settlements/{id}/lines.csv`.",
    ),
    EventType(
        "reconciliation.break_opened",
        "reconciliation_break",
        "The bank's or the rail's report disagrees with amanat about one of your payments "
        "(missing, a different amount, reported twice); operations is on it.",
    ),
)


@dataclass(frozen=True, slots=True)
class PartnerNotice:
    """A settlement or break a partner hears of: ``event_type`` of the catalogue above."""

    partner_id: str
    event_type: str
    object_id: str
    view: dict[str, Any]
