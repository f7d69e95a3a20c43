"""Payments' part of a transaction's timeline, and of the console's search.

For a payout, collection or refund (its id is also the rail's end-to-end id): its
creation and every state transition with its cause, the ledger journals that reference
it (amounts per account), its hold, its hand-over to the rail, every rail callback and
status enquiry (payments/enquiries.py), the submission and enquiry jobs with their
retries, and for a collection its refunds (each refund's own entries are on its own
timeline). Facts are masked: an amount, the counterparty's bank code and the last four
characters of their IBAN, never more.

Search finds payouts, collections and refunds by id (the end-to-end id), by the
partner's or the rail's reference, by partner (most recent first), and by the data
subjects the console found through the blind indexes (a customer's phone, CNIC or IBAN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from amanat.kernel.masking import redact_text
from amanat.kernel.money import Money
from amanat.kernel.search import SearchField, SearchHit, SearchQuery
from amanat.kernel.timeline import TimelineEntry
from amanat.payments.domain.payments import TERMINAL, Payment, PaymentStatus
from amanat.payments.enquiries import UNKNOWN, is_enquiry
from amanat.payments.ports import PaymentRepository
from amanat.payments.service import ENQUIRE, SUBMIT
from amanat.platform.db.ports import TransactionFactory

NAME = "payments"
_TERMINAL = frozenset(status.value for status in TERMINAL)
_JOB_NAMES = {SUBMIT: "submission", ENQUIRE: "status enquiry"}


# -- what the store reads ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """A payment as search and a parent's timeline show it (nothing personal)."""

    id: str
    partner_id: str
    type: str
    status: str
    amount: int
    currency: str
    bank_code: str | None
    iban_last4: str | None
    counterparty_kind: str
    reference: str | None
    rail_reference: str | None
    parent_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    amount: int  # + debit, - credit
    currency: str


@dataclass(frozen=True, slots=True)
class JournalRow:
    id: str
    kind: str
    created_at: datetime
    postings: list[Posting]


@dataclass(frozen=True, slots=True)
class HoldRow:
    account_id: str
    shard: int
    amount: int
    currency: str
    status: str
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class RailEventRow:
    event_id: str
    status: str
    sequence: int
    outcome: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class JobRow:
    kind: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class PaymentHistory(Protocol):
    async def journals(self, reference: str) -> list[JournalRow]: ...
    async def hold(self, hold_id: str) -> HoldRow | None: ...
    async def rail_events(self, end_to_end_id: str) -> list[RailEventRow]: ...
    async def jobs(self, subject_id: str, kinds: Sequence[str]) -> list[JobRow]: ...
    async def refunds(self, collection_id: str) -> list[PaymentRow]: ...
    async def by_id(self, payment_id: str) -> list[PaymentRow]: ...
    async def by_reference(self, reference: str, limit: int) -> list[PaymentRow]: ...
    async def by_partner(self, partner_id: str, limit: int) -> list[PaymentRow]: ...
    async def by_counterparties(
        self, subject_ids: Sequence[str], limit: int
    ) -> list[PaymentRow]: ...


class HistoryTx(Protocol):
    @property
    def payments(self) -> PaymentRepository: ...
    @property
    def payment_history(self) -> PaymentHistory: ...


# -- masked facts ----------------------------------------------------------------------------


def amount(value: int, currency: str) -> str:
    return str(Money(value, currency))


def account(bank_code: str | None, iban_last4: str | None, kind: str) -> str:
    """The counterparty's account as support may see it: bank code, IBAN's last four."""
    if iban_last4:
        return f"{bank_code or '?'} …{iban_last4}"
    return "Raast ID" if kind == "raast_id" else (bank_code or "—")


def _client(client_id: str | None) -> str:
    return f"client {client_id}" if client_id else "operator or CLI"


def _actor_of(cause: str, payment: Payment) -> str:
    if cause == "created" or cause == "canceled by partner":
        return _client(payment.client_id)
    if cause.startswith(("rail ", "rail:")):
        return "rail"
    if cause == "status enquiry":
        return "worker (status enquiry)"
    return "amanat"


# -- the timeline ----------------------------------------------------------------------------


class PaymentTimeline:
    name = NAME

    def __init__(self, transactions: TransactionFactory[HistoryTx]) -> None:
        self._tx = transactions

    async def entries(self, subject_id: str) -> Sequence[TimelineEntry]:
        async with self._tx.read() as tx:
            payment = await tx.payments.get(subject_id)
            if payment is None:
                return []
            transitions = await tx.payments.transitions(subject_id)
            history = tx.payment_history
            journals = await history.journals(subject_id)
            hold = await history.hold(subject_id)
            events = await history.rail_events(subject_id)
            jobs = await history.jobs(subject_id, (SUBMIT, ENQUIRE))
            refunds = (
                await history.refunds(subject_id) if payment.type.value == "collection" else []
            )
        entries: list[TimelineEntry] = []
        entries += _transitions(payment, transitions)
        entries += _ledger(payment.id, journals, hold)
        entries += _rail(payment, events, jobs)
        entries += _refunds(refunds)
        return entries


def _transitions(payment: Payment, transitions: list[dict[str, Any]]) -> list[TimelineEntry]:
    found: list[TimelineEntry] = []
    kind = payment.type.value
    last_failed = max(
        (t["version"] for t in transitions if t["to"] == PaymentStatus.FAILED.value), default=None
    )
    for t in transitions:
        cause: str = t["cause"]
        facts: dict[str, str] = {}
        if t["from"] is None:
            title = f"{kind} created ({t['to']})"
            facts = {
                "amount": amount(payment.amount.amount, payment.amount.currency),
                "account": account(
                    payment.counterparty.bank_code,
                    payment.counterparty.iban_last4,
                    payment.counterparty.kind.value,
                ),
            }
            if payment.parent_id:
                facts["refund of"] = payment.parent_id
            detail = None
        elif t["from"] == t["to"]:
            title = f"{kind} changed (still {t['to']})"
            detail = cause
        else:
            title = f"{t['from']} → {t['to']}"
            detail = cause
        if t["version"] == last_failed and payment.failure is not None:
            facts["failure_code"] = payment.failure.code
        if t["to"] == PaymentStatus.PROCESSING.value and payment.rail_reference:
            facts["rail_reference"] = payment.rail_reference
        found.append(
            TimelineEntry(
                at=t["at"],
                source="state",
                title=title,
                actor=_actor_of(cause, payment),
                subject_id=payment.id,
                detail=detail,
                facts=facts,
                sequence=int(t["version"]),
            )
        )
    return found


def _ledger(
    payment_id: str, journals: list[JournalRow], hold: HoldRow | None
) -> list[TimelineEntry]:
    found: list[TimelineEntry] = []
    if hold is not None:
        held = amount(hold.amount, hold.currency)
        found.append(
            TimelineEntry(
                at=hold.created_at,
                source="ledger",
                title=f"hold of {held} placed",
                actor="amanat",
                subject_id=payment_id,
                facts={"account": hold.account_id, "shard": str(hold.shard)},
                sequence=0,
            )
        )
        if hold.closed_at is not None:
            what = "posted (the money left)" if hold.status == "posted" else "voided (released)"
            found.append(
                TimelineEntry(
                    at=hold.closed_at,
                    source="ledger",
                    title=f"hold {what}",
                    actor="amanat",
                    subject_id=payment_id,
                    facts={"account": hold.account_id, "amount": held},
                    sequence=1,
                )
            )
    for n, journal in enumerate(journals):
        facts = {"journal": journal.id}
        for posting in journal.postings:
            side = "debit" if posting.amount > 0 else "credit"
            facts[posting.account] = f"{side} {amount(abs(posting.amount), posting.currency)}"
        moved = max((abs(p.amount), p.currency) for p in journal.postings)
        found.append(
            TimelineEntry(
                at=journal.created_at,
                source="ledger",
                title=f"journal {journal.kind}: {amount(*moved)}",
                actor="amanat",
                subject_id=payment_id,
                facts=facts,
                sequence=2 + n,
            )
        )
    return found


def _rail(payment: Payment, events: list[RailEventRow], jobs: list[JobRow]) -> list[TimelineEntry]:
    found: list[TimelineEntry] = []
    if payment.submitted_at is not None:
        found.append(
            TimelineEntry(
                at=payment.submitted_at,
                source="rail",
                title="handed to the rail (it can no longer be canceled)",
                actor="worker",
                subject_id=payment.id,
                sequence=0,
            )
        )
    for n, event in enumerate(events, start=1):
        if is_enquiry(event.event_id):
            if event.status == UNKNOWN:
                title = "status enquiry: the rail has no such payment"
            else:
                title = f"status enquiry: the rail says {event.status} (sequence {event.sequence})"
            found.append(
                TimelineEntry(
                    at=event.received_at,
                    source="rail",
                    title=title,
                    actor="worker",
                    subject_id=payment.id,
                    detail=event.outcome,
                    sequence=n,
                )
            )
        else:
            found.append(
                TimelineEntry(
                    at=event.received_at,
                    source="rail",
                    title=f"rail callback: {event.status} (sequence {event.sequence})",
                    actor="rail",
                    subject_id=payment.id,
                    detail=event.outcome,
                    facts={"event": event.event_id},
                    sequence=n,
                )
            )
    for job in jobs:
        what = _JOB_NAMES.get(job.kind, job.kind)
        tries = f"{job.attempts} attempt{'s' if job.attempts != 1 else ''}"
        if job.status == "done":
            title = f"{what} job done after {tries}"
        elif job.status == "dead":
            title = f"{what} job gave up after {tries}"
        elif job.attempts:
            title = f"{what} job to be tried again ({tries} so far)"
        else:
            # A follow-up is queued with the time it is due (its row's times are that),
            # which can be later than everything else on the page.
            title = f"{what} job due (not run yet)"
        facts = {"last_error": redact_text(job.last_error)[:160]} if job.last_error else {}
        found.append(
            TimelineEntry(
                at=job.updated_at,
                source="rail",
                title=title,
                actor="worker",
                subject_id=payment.id,
                facts=facts,
                sequence=len(events) + 1,
            )
        )
    return found


def _refunds(refunds: list[PaymentRow]) -> list[TimelineEntry]:
    found: list[TimelineEntry] = []
    for refund in refunds:
        value = amount(refund.amount, refund.currency)
        found.append(
            TimelineEntry(
                at=refund.created_at,
                source="state",
                title=f"refund {refund.id} created",
                actor="amanat",
                subject_id=refund.id,
                facts={"amount": value},
                sequence=100,
            )
        )
        if refund.status in _TERMINAL:
            found.append(
                TimelineEntry(
                    at=refund.updated_at,
                    source="state",
                    title=f"refund {refund.id} {refund.status}",
                    actor="amanat",
                    subject_id=refund.id,
                    facts={"amount": value},
                    sequence=101,
                )
            )
    return found


# -- search ----------------------------------------------------------------------------------


def _hit(row: PaymentRow) -> SearchHit:
    summary = account(row.bank_code, row.iban_last4, row.counterparty_kind)
    if row.reference:
        summary += f" · ref {redact_text(row.reference)[:40]}"
    if row.parent_id:
        summary += f" · refund of {row.parent_id}"
    return SearchHit(
        kind=row.type,
        id=row.id,
        partner_id=row.partner_id,
        status=row.status,
        created_at=row.created_at,
        amount=row.amount,
        currency=row.currency,
        summary=summary,
    )


class PaymentSearch:
    name = NAME

    def __init__(self, transactions: TransactionFactory[HistoryTx]) -> None:
        self._tx = transactions

    async def find(self, query: SearchQuery) -> Sequence[SearchHit]:
        async with self._tx.lookup() as tx:
            history = tx.payment_history
            if query.field is SearchField.ID:
                rows = await history.by_id(query.value)
            elif query.field is SearchField.REFERENCE:
                rows = await history.by_reference(query.value, query.limit)
            elif query.field is SearchField.PARTNER:
                rows = await history.by_partner(query.value, query.limit)
            else:
                rows = await history.by_counterparties(query.subject_ids, query.limit)
        return [_hit(row) for row in rows]
