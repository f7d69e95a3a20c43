"""Idempotency's part of a transaction's timeline: the partner's API requests that
created the object or acted on it (``POST /v1/payments (Idempotency-Key …) → 201``), and
how often each stored answer was replayed to a retry, and when last.

The request id is the one the audit record of that request carries (same client, within
a few seconds): the idempotency record keeps the request, the audit record who sent it
and under which request id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from amanat.kernel.clock import format_timestamp
from amanat.kernel.masking import redact_text
from amanat.kernel.timeline import TimelineEntry
from amanat.platform.audit.domain import AuditRecord
from amanat.platform.db.ports import TransactionFactory

NAME = "idempotency"
SAME_REQUEST = timedelta(seconds=5)
"""How far apart an idempotency record and its request's audit record may be."""
AUDIT_LOOKUP = 50


@dataclass(frozen=True, slots=True)
class ApiRequestRow:
    client_id: str
    key: str
    method: str
    path: str
    status: int | None
    created_at: datetime
    replays: int
    last_replayed_at: datetime | None


class IdempotencyHistory(Protocol):
    async def requests_for(self, resource_id: str) -> list[ApiRequestRow]: ...


class AuditHistory(Protocol):
    async def about(self, target_id: str, limit: int) -> list[AuditRecord]: ...


class HistoryTx(Protocol):
    @property
    def idempotency_history(self) -> IdempotencyHistory: ...
    @property
    def audit_history(self) -> AuditHistory: ...


def _key(key: str) -> str:
    shown = redact_text(key)
    return shown if len(shown) <= 40 else shown[:39] + "…"


def _request_of(request: ApiRequestRow, records: list[AuditRecord]) -> AuditRecord | None:
    """The audit record the request wrote: the same client's, the nearest in time."""
    mine = [
        r
        for r in records
        if r.actor.type == "client"
        and r.actor.id == request.client_id
        and abs(r.occurred_at - request.created_at) <= SAME_REQUEST
    ]
    return min(mine, key=lambda r: abs(r.occurred_at - request.created_at), default=None)


class IdempotencyTimeline:
    name = NAME

    def __init__(self, transactions: TransactionFactory[HistoryTx]) -> None:
        self._tx = transactions

    async def entries(self, subject_id: str) -> Sequence[TimelineEntry]:
        async with self._tx.read() as tx:
            requests = await tx.idempotency_history.requests_for(subject_id)
            if not requests:
                return []
            records = await tx.audit_history.about(subject_id, AUDIT_LOOKUP)
        entries: list[TimelineEntry] = []
        for n, request in enumerate(requests):
            audited = _request_of(request, records)
            key = _key(request.key)
            status = request.status if request.status is not None else "no answer yet"
            facts = {"idempotency_key": key}
            if request.replays:
                facts["replays"] = str(request.replays)
            if audited is not None and audited.actor.source_ip:
                facts["ip"] = audited.actor.source_ip
            actor = f"client {request.client_id}"
            request_id = audited.actor.request_id if audited is not None else None
            entries.append(
                TimelineEntry(
                    at=request.created_at,
                    source="api",
                    title=f"{request.method} {request.path} (Idempotency-Key {key}) → {status}",
                    actor=actor,
                    subject_id=subject_id,
                    request_id=request_id,
                    facts=facts,
                    sequence=2 * n,
                )
            )
            if request.replays and request.last_replayed_at is not None:
                times = "once" if request.replays == 1 else f"{request.replays} times"
                entries.append(
                    TimelineEntry(
                        at=request.last_replayed_at,
                        source="api",
                        title=(
                            f"Idempotency-Key {key} replayed {times}, last at "
                            f"{format_timestamp(request.last_replayed_at)}"
                        ),
                        actor=actor,
                        subject_id=subject_id,
                        detail=f"the stored answer of {request.method} {request.path} again",
                        facts={"idempotency_key": key, "replays": str(request.replays)},
                        sequence=2 * n + 1,
                    )
                )
        return entries
