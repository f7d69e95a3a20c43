"""Webhooks' part of a transaction's timeline: the partner events raised about it, each
delivery of each event (to which endpoint's host, why: the event itself, a redelivery, a
replay, or held while the endpoint was disabled) and every attempt of each delivery
(attempt n, the answer's status code and latency, or the error's class).

An event's own id gives its deliveries too, so the console can link an event. The
endpoint shows as its URL's host only, and no response excerpt is shown: both are the
partner's, and an excerpt can hold anything their server printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from amanat.kernel.timeline import TimelineEntry
from amanat.platform.db.ports import TransactionFactory

NAME = "webhooks"
_TRIGGERS = {
    "event": "delivery to {host} queued",
    "held": "delivery to {host} held (the endpoint was disabled)",
    "redeliver": "redelivery to {host} queued (asked again)",
    "replay": "replay to {host} queued",
}


@dataclass(frozen=True, slots=True)
class EventRow:
    id: str
    type: str
    object_version: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    event_id: str
    endpoint_id: str
    url: str
    trigger: str
    status: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRow:
    delivery_id: str
    attempt: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    error_class: str | None


class WebhookHistory(Protocol):
    async def events(self, object_id: str) -> list[EventRow]: ...
    async def deliveries(self, event_ids: Sequence[str]) -> list[DeliveryRow]: ...
    async def attempts(self, delivery_ids: Sequence[str]) -> list[AttemptRow]: ...


class HistoryTx(Protocol):
    @property
    def webhook_history(self) -> WebhookHistory: ...


def host_of(url: str) -> str:
    """An endpoint as the timeline names it: its host (and a port that is not the
    scheme's), never its path or query, which may carry the partner's tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "?"
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return host if port in (None, default) else f"{host}:{port}"


class WebhookTimeline:
    name = NAME

    def __init__(self, transactions: TransactionFactory[HistoryTx]) -> None:
        self._tx = transactions

    async def entries(self, subject_id: str) -> Sequence[TimelineEntry]:
        async with self._tx.read() as tx:
            history = tx.webhook_history
            events = await history.events(subject_id)
            if not events:
                return []
            deliveries = await history.deliveries([e.id for e in events])
            attempts = await history.attempts([d.id for d in deliveries])
        found: list[TimelineEntry] = []
        for n, event in enumerate(events):
            facts = {"event": event.id}
            if event.object_version is not None:
                facts["version"] = str(event.object_version)
            found.append(
                TimelineEntry(
                    at=event.created_at,
                    source="webhook",
                    title=f"event {event.type} raised",
                    actor="amanat",
                    subject_id=event.id,
                    facts=facts,
                    sequence=n,
                )
            )
        by_id = {d.id: d for d in deliveries}
        for delivery in deliveries:
            host = host_of(delivery.url)
            found.append(
                TimelineEntry(
                    at=delivery.created_at,
                    source="webhook",
                    title=_TRIGGERS.get(delivery.trigger, "delivery to {host} queued").format(
                        host=host
                    ),
                    actor="amanat",
                    subject_id=delivery.event_id,
                    facts={
                        "delivery": delivery.id,
                        "endpoint": delivery.endpoint_id,
                        "status": delivery.status,
                        "attempts": str(delivery.attempts),
                    },
                    sequence=len(events),
                )
            )
        for attempt in attempts:
            delivery = by_id[attempt.delivery_id]
            host = host_of(delivery.url)
            if attempt.status_code is not None:
                title = f"attempt {attempt.attempt} to {host}: {attempt.status_code}"
            else:
                title = f"attempt {attempt.attempt} to {host}: {attempt.error_class or 'failed'}"
            facts = {"latency_ms": str(attempt.latency_ms), "delivery": delivery.id}
            if attempt.error_class:
                facts["error"] = attempt.error_class
            found.append(
                TimelineEntry(
                    at=attempt.started_at,
                    source="webhook",
                    title=title,
                    actor="worker",
                    subject_id=delivery.event_id,
                    facts=facts,
                    sequence=len(events) + attempt.attempt,
                )
            )
        return found
