"""The audit trail's part of a transaction's timeline: every audited action whose target
is the subject (an operator's, a partner client's, a PSU's, the CLI's, amanat's own),
with who did it, from which address, under which request id.

An operator's action is an ``operator`` entry; any other an ``audit`` entry. Of a
record's payload only a few named fields are shown (amounts, statuses, the ids of
related objects, an operator's reason with any identifier in it masked): a payload can
name a person, and the timeline is shown as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from amanat.kernel.masking import redact_text
from amanat.kernel.timeline import TimelineEntry
from amanat.platform.audit.domain import AuditRecord
from amanat.platform.db.ports import TransactionFactory

NAME = "audit"
LIMIT = 500
"""The newest records about one subject that a timeline shows."""

SHOWN_PAYLOAD = frozenset(
    {
        "type",
        "kind",
        "amount",
        "currency",
        "status",
        "resolution",
        "result",
        "outcome",
        "reason",
        "context",
        "fields",
        "source",
        "payment_id",
        "refund_id",
        "consent_id",
        "settlement_id",
        "top_up_id",
        "hold_id",
        "funding_id",
        "payee_check_id",
        "funds_confirmation_id",
        "event_id",
        "endpoint_id",
        "break_id",
        "match_id",
        "journal_id",
    }
)


class AuditHistory(Protocol):
    async def about(self, target_id: str, limit: int) -> list[AuditRecord]: ...


class HistoryTx(Protocol):
    @property
    def audit_history(self) -> AuditHistory: ...


def actor_of(record: AuditRecord) -> str:
    return f"{record.actor.type} {record.actor.id}"


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    return redact_text(str(value))[:160]


def facts_of(record: AuditRecord) -> dict[str, str]:
    facts = {
        key: _shown(record.payload[key])
        for key in sorted(record.payload)
        if key in SHOWN_PAYLOAD and record.payload[key] is not None
    }
    if record.actor.source_ip:
        facts["ip"] = record.actor.source_ip
    return facts


class AuditTimeline:
    name = NAME

    def __init__(self, transactions: TransactionFactory[HistoryTx]) -> None:
        self._tx = transactions

    async def entries(self, subject_id: str) -> Sequence[TimelineEntry]:
        async with self._tx.read() as tx:
            records = await tx.audit_history.about(subject_id, LIMIT)
        return [
            TimelineEntry(
                at=record.occurred_at,
                source="operator" if record.actor.type == "operator" else "audit",
                title=record.action,
                actor=actor_of(record),
                subject_id=subject_id,
                request_id=record.actor.request_id,
                facts=facts_of(record),
                sequence=n,  # the order they committed in (AuditHistory.about)
            )
            for n, record in enumerate(records)
        ]
