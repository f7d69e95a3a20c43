"""One transaction's story, told by every capability that touched it.

Support reconstructs what happened to a payment (or a refund, collection, consent or
dispute) from one page: the API requests that touched it, its state transitions, ledger
journals, rail traffic, webhook attempts, reconciliation, disputes and operator actions.
Each capability knows its own part; it declares a :class:`TimelineSource` in its wiring
(``registry.add_timeline_source``) that answers with :class:`TimelineEntry` values read
through its own queries. :func:`merge` puts them in one order, oldest first.

Entries carry no personal data in clear: a source masks what it shows (IBAN last four,
starred CNIC and phone), because the console and ``amanat timeline`` print them as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

SOURCES = (
    "api",  # a partner's API request (with idempotency replays)
    "state",  # a state transition
    "ledger",  # a ledger journal
    "rail",  # submission, callback, status enquiry
    "webhook",  # an event raised and each delivery attempt
    "reconciliation",  # matches and breaks
    "dispute",
    "consent",
    "operator",  # an operator's action (audited)
    "audit",  # any other audited action on the subject
)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    source: str
    """One of :data:`SOURCES`: where the entry comes from."""
    title: str
    """A few words: ``processing → succeeded``, ``attempt 2 to https://… answered 500``."""
    actor: str
    """Who did it: ``client cli_…``, ``operator op_… (email)``, ``rail``, ``worker``."""
    subject_id: str
    """The object the entry is about (the payment, or its refund, event, dispute…)."""
    request_id: str | None = None
    trace_id: str | None = None
    detail: str | None = None
    facts: Mapping[str, str] = field(default_factory=dict)
    """A few labelled values, already masked (amount, code, status, endpoint…)."""
    sequence: int = 0
    """Tie-break within one source for entries of the same instant (insertion order)."""


class TimelineSource(Protocol):
    """A capability's part of the timeline of ``subject_id`` (any id it may know)."""

    name: str

    async def entries(self, subject_id: str) -> Sequence[TimelineEntry]: ...


SOURCE_ORDER = {name: index for index, name in enumerate(SOURCES)}


def merge(parts: Iterable[Sequence[TimelineEntry]]) -> list[TimelineEntry]:
    """All entries, oldest first; same instant: API before state before ledger…, then
    each source's own order. Deterministic whatever order the sources answered in."""
    entries = [entry for part in parts for entry in part]
    entries.sort(key=_order)
    return entries


def _order(e: TimelineEntry) -> tuple[object, ...]:
    # Everything an entry shows, after what orders it: two entries that tie on time,
    # source, sequence and title still come out in one order, whatever the input's.
    return (
        e.at,
        SOURCE_ORDER.get(e.source, len(SOURCES)),
        e.sequence,
        e.title,
        e.source,
        e.subject_id,
        e.actor,
        e.detail or "",
        e.request_id or "",
        e.trace_id or "",
        tuple(sorted(e.facts.items())),
    )
