"""Disputes' part of the console: their entries in a transaction's timeline, what the
search finds of them, and the alerts of disputes near or past a deadline.

All three read through :class:`DisputeService` and show nothing personal: no response
text, no evidence content; amounts, reasons, statuses, ids and who acted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime

from amanat.disputes.domain.disputes import DisputeStatus
from amanat.disputes.services.disputes import DisputeDetail, DisputeService
from amanat.kernel.alerts import Alert, Severity
from amanat.kernel.errors import NotFound
from amanat.kernel.ids import PREFIXES
from amanat.kernel.money import Money
from amanat.kernel.search import SearchField, SearchHit, SearchQuery
from amanat.kernel.timeline import TimelineEntry

SOURCE = "dispute"
_DISPUTE_PREFIX = PREFIXES["dispute"] + "_"


def actor_label(actor_type: str, actor_id: str) -> str:
    """Who acted, as the timeline names them."""
    if actor_type == "system":
        return "worker"
    if actor_type == "rail":
        return "rail"
    return f"{actor_type} {actor_id}"


def _money(amount: int, currency: str) -> str:
    return str(Money(amount, currency))


def timeline_entries(detail: DisputeDetail) -> list[TimelineEntry]:
    """Every transition and evidence upload of one dispute."""
    dispute = detail.dispute
    entries: list[TimelineEntry] = []
    for step in detail.history:
        if step.from_status is None:
            title = (
                f"dispute opened: {dispute.reason.value}, "
                f"{_money(dispute.amount, dispute.currency)}"
            )
        else:
            title = f"dispute {step.from_status} → {step.to_status}"
        facts = {"dispute": dispute.id, "action": step.action, "status": step.to_status}
        if step.journal_ids:
            facts["journals"] = ", ".join(step.journal_ids)
        entries.append(
            TimelineEntry(
                at=step.at,
                source=SOURCE,
                title=title,
                actor=actor_label(step.actor_type, step.actor_id),
                subject_id=dispute.id,
                request_id=step.request_id,
                detail=step.note,
                facts=facts,
                sequence=step.seq,
            )
        )
    for index, meta in enumerate(detail.evidence, start=1):
        entries.append(
            TimelineEntry(
                at=meta.created_at,
                source=SOURCE,
                title=f"dispute evidence added: {meta.content_type}, {meta.size} bytes",
                actor=actor_label(meta.uploaded_by_type, meta.uploaded_by_id),
                subject_id=dispute.id,
                request_id=meta.request_id,
                facts={"dispute": dispute.id, "evidence": meta.id, "sha256": meta.sha256},
                sequence=1000 + index,
            )
        )
    return entries


class DisputeTimeline:
    """A dispute's story, or every dispute's on a payment (``subject_id`` a payment id)."""

    name = SOURCE

    def __init__(self, service: DisputeService) -> None:
        self._service = service

    async def entries(self, subject_id: str) -> Sequence[TimelineEntry]:
        if subject_id.startswith(_DISPUTE_PREFIX):
            try:
                details = [await self._service.get(subject_id)]
            except NotFound:
                return []
        else:
            details = await self._service.on_payment(subject_id)
        return [entry for detail in details for entry in timeline_entries(detail)]


def search_hit(detail: DisputeDetail) -> SearchHit:
    dispute = detail.dispute
    return SearchHit(
        kind=SOURCE,
        id=dispute.id,
        partner_id=dispute.partner_id,
        status=dispute.status.value,
        created_at=dispute.created_at,
        amount=dispute.amount,
        currency=dispute.currency,
        summary=f"{dispute.reason.value} on {dispute.payment_type.value} {dispute.payment_id}",
    )


class DisputeSearch:
    """Disputes by their id, by their payment's id (an id or a reference), by the rail's
    id for them (a reference), and a partner's most recent."""

    name = SOURCE

    def __init__(self, service: DisputeService) -> None:
        self._service = service

    async def find(self, query: SearchQuery) -> Sequence[SearchHit]:
        value = query.value.strip()
        if not value or query.field is SearchField.SUBJECT:
            return []
        if query.field is SearchField.PARTNER:
            page = await self._service.list(partner_id=value, limit=max(1, min(query.limit, 100)))
            return [search_hit(d) for d in page.items]
        found: list[DisputeDetail] = []
        if value.startswith(_DISPUTE_PREFIX):
            with contextlib.suppress(NotFound):
                found.append(await self._service.get(value))
        else:
            found.extend(await self._service.on_payment(value))
            if query.field is SearchField.REFERENCE:
                by_rail = await self._service.by_rail_reference(value)
                if by_rail is not None and all(d.dispute.id != by_rail.dispute.id for d in found):
                    found.append(by_rail)
        return [search_hit(d) for d in found[: query.limit]]


class DisputeAlerts:
    """A dispute near or past its deadline (docs/playbooks.md, one section per kind)."""

    name = SOURCE

    def __init__(self, service: DisputeService) -> None:
        self._service = service

    async def alerts(self, now: datetime) -> Sequence[Alert]:
        found: list[Alert] = []
        for near in await self._service.near_deadline(now):
            dispute, pressing = near.dispute, near.urgency
            awaiting = dispute.status is DisputeStatus.NEEDS_RESPONSE
            stage = "response" if awaiting else "decision"
            state = "overdue" if pressing.overdue else "due"
            kind = f"dispute_{stage}_{state}"
            since = dispute.created_at if awaiting else dispute.responded_at or dispute.created_at
            if pressing.overdue:
                title = f"Dispute {dispute.id}: the {stage} is overdue"
            else:
                title = f"Dispute {dispute.id}: the {stage} is due by {pressing.deadline}"
            found.append(
                Alert(
                    key=f"{kind}:{dispute.id}",
                    kind=kind,
                    severity=pressing.severity,
                    title=title,
                    detail=(
                        f"{dispute.reason.value} on {dispute.payment_type.value} "
                        f"{dispute.payment_id} ({_money(dispute.amount, dispute.currency)}), "
                        f"partner {dispute.partner_id}; "
                        + (
                            f"the merchant must answer by {dispute.respond_by.isoformat()}"
                            if awaiting
                            else f"to be decided by {dispute.decide_by.isoformat()}"
                        )
                        + "."
                    ),
                    since=since,
                    subject_id=dispute.id,
                    playbook=f"playbooks.md#{kind}",
                )
            )
        found.sort(key=lambda a: (a.severity is not Severity.CRITICAL, a.since))
        return found
