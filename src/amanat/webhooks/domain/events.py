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

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amanat.kernel.clock import format_timestamp
from amanat.kernel.events import EventType

OWN_EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        "webhook_endpoint.disabled",
        "webhook_endpoint",
        "amanat disabled one of your endpoints (it answered 410, or failed for days).",
    ),
    EventType("consent.authorised", "consent", "A PSU authorised a consent."),
    EventType(
        "consent.revoked",
        "consent",
        "A consent ended: the TPP deleted it, the PSU withdrew it, or it expired.",
    ),
)


class Catalogue:
    """Every partner event type of this build: webhooks' own, the ones each capability
    declared through the registry, and reserved names of capabilities still to come (a
    capability that declares a reserved name replaces it)."""

    def __init__(self, types: tuple[EventType, ...] = OWN_EVENT_TYPES) -> None:
        self.types: dict[str, EventType] = {}
        self.names: list[str] = []
        self.declare(types)

    def declare(self, types: tuple[EventType, ...] | list[EventType]) -> None:
        for event in types:
            known = self.types.get(event.name)
            if known is not None and known.emitted and event.emitted and known != event:
                raise ValueError(f"event type {event.name} is declared twice")
            if known is None or event.emitted:
                self.types[event.name] = event
        self.names[:] = sorted(self.types)

    def __contains__(self, name: object) -> bool:
        return name in self.types

    def __getitem__(self, name: str) -> EventType:
        return self.types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def items(self) -> list[tuple[str, EventType]]:
        return [(name, self.types[name]) for name in self.names]

    def values(self) -> list[EventType]:
        return [self.types[name] for name in self.names]


CATALOGUE = Catalogue()
"""This process's catalogue; the composition root declares each capability's types."""

ALL_EVENTS = "*"


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
