"""Reconciliation's part of a transaction's timeline: the settled payment's copy kept for
matching (``recon_internal``), the matches that accounted for it (the rule, the source,
the other side's record ids), how much each source has confirmed so far, and the breaks
about it with their resolution and the operator who resolved them.

A match is found by the records that name the payment by its end-to-end id (nearly all
of them), by a break's resolution, and otherwise (reference, batch or value-date rules)
among the source's matches made after the payment settled, the first
:data:`SCAN_MATCHES` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from amanat.kernel.masking import redact_text
from amanat.kernel.money import Money
from amanat.kernel.timeline import TimelineEntry
from amanat.platform.db.ports import TransactionFactory

NAME = "reconciliation"
SCAN_MATCHES = 500
_SHOWN_IDS = 5


@dataclass(frozen=True, slots=True)
class InternalRow:
    kind: str
    direction: str
    amount: int
    currency: str
    settled_at: datetime
    settled_on: date


@dataclass(frozen=True, slots=True)
class ProgressRow:
    source: str
    matched: int
    complete: bool


@dataclass(frozen=True, slots=True)
class MatchRow:
    id: str
    source: str
    rule: str
    outcome: str
    external_ids: list[str]
    allocations: list[tuple[str, int]]
    amount: int
    fees: int
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BreakRow:
    id: str
    source: str
    kind: str
    status: str
    amount: int
    currency: str
    external_id: str | None
    suggested_cause: str
    opened_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    reason: str | None
    journal_id: str | None
    match_id: str | None


class ReconciliationHistory(Protocol):
    async def internal(self, payment_id: str) -> InternalRow | None: ...
    async def progress(self, payment_id: str) -> list[ProgressRow]: ...
    async def matches_naming(self, end_to_end_id: str) -> list[MatchRow]: ...
    async def matches(self, match_ids: Sequence[str]) -> list[MatchRow]: ...
    async def matches_of_source_since(
        self, source: str, since: datetime, limit: int
    ) -> list[MatchRow]: ...
    async def breaks(self, payment_id: str) -> list[BreakRow]: ...


class HistoryTx(Protocol):
    @property
    def recon_history(self) -> ReconciliationHistory: ...


def _who(actor_id: str) -> str:
    """Reconciliation keeps an actor's id: an operator's (``op_…``), the CLI user's name,
    or amanat's own."""
    return f"operator {actor_id}" if actor_id.startswith("op_") else actor_id


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_SHOWN_IDS])
    return shown + (f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")


class ReconciliationTimeline:
    name = NAME

    def __init__(self, transactions: TransactionFactory[HistoryTx]) -> None:
        self._tx = transactions

    async def entries(self, subject_id: str) -> Sequence[TimelineEntry]:
        async with self._tx.read() as tx:
            history = tx.recon_history
            internal = await history.internal(subject_id)
            breaks = await history.breaks(subject_id)
            if internal is None and not breaks:
                return []
            progress = await history.progress(subject_id)
            matches = {m.id: m for m in await history.matches_naming(subject_id)}
            resolved = [b.match_id for b in breaks if b.match_id and b.match_id not in matches]
            matches.update((m.id, m) for m in await history.matches(resolved))
            mine = [m for m in matches.values() if any(p == subject_id for p, _ in m.allocations)]
            found_in = {m.source for m in mine}
            for p in progress:
                if p.matched > 0 and p.source not in found_in and internal is not None:
                    scanned = await history.matches_of_source_since(
                        p.source, internal.settled_at, SCAN_MATCHES
                    )
                    mine += [m for m in scanned if any(x == subject_id for x, _ in m.allocations)]
        entries: list[TimelineEntry] = []
        if internal is not None:
            facts = {
                "amount": str(Money(internal.amount, internal.currency)),
                "direction": internal.direction,
                "due in reports of": internal.settled_on.isoformat(),
            }
            for p in progress:
                share = "all" if p.complete else str(Money(p.matched, internal.currency))
                facts[f"confirmed by {p.source}"] = share
            entries.append(
                TimelineEntry(
                    at=internal.settled_at,
                    source="reconciliation",
                    title=f"settled {internal.kind} expected in the reports",
                    actor="amanat",
                    subject_id=subject_id,
                    facts=facts,
                    sequence=0,
                )
            )
        for n, match in enumerate(sorted(mine, key=lambda m: (m.created_at, m.id)), start=1):
            allocated = sum(a for p, a in match.allocations if p == subject_id)
            currency = internal.currency if internal is not None else "PKR"
            facts = {
                "match": match.id,
                "outcome": match.outcome,
                "records": _ids(match.external_ids),
                "allocated": str(Money(allocated, currency)),
            }
            if match.fees:
                facts["fees"] = str(Money(match.fees, currency))
            entries.append(
                TimelineEntry(
                    at=match.created_at,
                    source="reconciliation",
                    title=f"matched by {match.rule} in {match.source}",
                    actor=_who(match.created_by),
                    subject_id=subject_id,
                    facts=facts,
                    sequence=n,
                )
            )
        for brk in breaks:
            opened = {
                "break": brk.id,
                "amount": str(Money(brk.amount, brk.currency)),
                "cause": redact_text(brk.suggested_cause)[:200],
            }
            if brk.external_id:
                opened["record"] = brk.external_id
            entries.append(
                TimelineEntry(
                    at=brk.opened_at,
                    source="reconciliation",
                    title=f"break opened in {brk.source}: {brk.kind}",
                    actor="amanat",
                    subject_id=subject_id,
                    facts=opened,
                    sequence=100,
                )
            )
            if brk.resolved_at is not None:
                closed = {"break": brk.id}
                if brk.journal_id:
                    closed["journal"] = brk.journal_id
                if brk.match_id:
                    closed["match"] = brk.match_id
                entries.append(
                    TimelineEntry(
                        at=brk.resolved_at,
                        source="reconciliation",
                        title=f"break {brk.status}: {brk.resolution or 'cleared'}",
                        actor=_who(brk.resolved_by or "amanat"),
                        subject_id=subject_id,
                        detail=redact_text(brk.reason)[:300] if brk.reason else None,
                        facts=closed,
                        sequence=101,
                    )
                )
        return entries
