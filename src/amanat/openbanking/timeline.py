"""Open banking's part of a transaction's timeline, and of the console's search.

For a consent: its creation by the TPP, where it stands now (authorised or rejected by the
PSU, revoked by the PSU, the TPP or an operator, consumed, expired) and each payment
initiated under it. For a payment initiated through open banking: the consent it was
initiated under (a link to that consent's timeline) and, when the payout did not go
through, the return of the customer's money. The decisions themselves, with who made
them and from where, are in the audit trail's entries beside these.

Search finds consents by id and by partner (most recent first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from amanat.kernel.money import Money
from amanat.kernel.search import SearchField, SearchHit, SearchQuery
from amanat.kernel.timeline import TimelineEntry
from amanat.openbanking.domain.consents import ConsentStatus
from amanat.platform.db.ports import TransactionFactory

NAME = "openbanking"
_ENDED_BY = {
    "psu_withdrawn": "PSU",
    "tpp_deleted": "TPP",
    "operator_revoked": "operator",
    "expired": "amanat",
    "not_authorised_in_time": "amanat",
}


@dataclass(frozen=True, slots=True)
class ConsentRow:
    id: str
    kind: str
    partner_id: str
    client_id: str
    status: str
    ended_reason: str | None
    expires_at: datetime | None
    created_at: datetime
    status_updated_at: datetime


@dataclass(frozen=True, slots=True)
class InitiationRow:
    payment_id: str
    consent_id: str
    amount: int
    currency: str
    created_at: datetime
    returned_at: datetime | None


class OpenBankingHistory(Protocol):
    async def consent(self, consent_id: str) -> ConsentRow | None: ...
    async def initiations(
        self, *, consent_id: str | None = None, payment_id: str | None = None
    ) -> list[InitiationRow]: ...
    async def consents_of(self, partner_id: str, limit: int) -> list[ConsentRow]: ...


class HistoryTx(Protocol):
    @property
    def openbanking_history(self) -> OpenBankingHistory: ...


def _status_entry(consent: ConsentRow) -> TimelineEntry:
    status = consent.status
    if status in (ConsentStatus.AUTHORISED.value, ConsentStatus.REJECTED.value):
        who = _ENDED_BY.get(consent.ended_reason or "", "PSU")
        title = f"consent {status.lower()}"
    elif status == ConsentStatus.CONSUMED.value:
        who, title = "amanat", "consent consumed (used for its payment)"
    else:
        who = _ENDED_BY.get(consent.ended_reason or "", "amanat")
        title = f"consent {status.lower()}"
    if consent.ended_reason and status != ConsentStatus.CONSUMED.value:
        title += f" ({consent.ended_reason.replace('_', ' ')})"
    return TimelineEntry(
        at=consent.status_updated_at,
        source="consent",
        title=title,
        actor=who,
        subject_id=consent.id,
        facts={"status": status},
        sequence=1,
    )


class OpenBankingTimeline:
    name = NAME

    def __init__(self, transactions: TransactionFactory[HistoryTx]) -> None:
        self._tx = transactions

    async def entries(self, subject_id: str) -> Sequence[TimelineEntry]:
        async with self._tx.read() as tx:
            history = tx.openbanking_history
            consent = await history.consent(subject_id)
            if consent is not None:
                used = await history.initiations(consent_id=subject_id)
                initiated = []
            else:
                used = []
                initiated = await history.initiations(payment_id=subject_id)
        entries: list[TimelineEntry] = []
        if consent is not None:
            facts = {"kind": consent.kind, "partner": consent.partner_id}
            if consent.expires_at is not None:
                facts["expires"] = consent.expires_at.isoformat(timespec="seconds")
            entries.append(
                TimelineEntry(
                    at=consent.created_at,
                    source="consent",
                    title=f"{consent.kind.replace('_', ' ')} consent created",
                    actor=f"client {consent.client_id}",
                    subject_id=consent.id,
                    facts=facts,
                    sequence=0,
                )
            )
            if consent.status != ConsentStatus.AWAITING_AUTHORISATION.value:
                entries.append(_status_entry(consent))
        for n, use in enumerate(used, start=2):
            entries.append(
                TimelineEntry(
                    at=use.created_at,
                    source="consent",
                    title=f"used: payment {use.payment_id} initiated",
                    actor=f"client {consent.client_id}" if consent else "TPP",
                    subject_id=use.payment_id,
                    facts={"amount": str(Money(use.amount, use.currency))},
                    sequence=n,
                )
            )
        for use in initiated:
            entries.append(
                TimelineEntry(
                    at=use.created_at,
                    source="consent",
                    title=f"initiated through open banking under consent {use.consent_id}",
                    actor="TPP",
                    subject_id=use.consent_id,
                    facts={"consent": use.consent_id},
                    sequence=0,
                )
            )
            if use.returned_at is not None:
                entries.append(
                    TimelineEntry(
                        at=use.returned_at,
                        source="consent",
                        title="the customer's money returned to their account",
                        actor="worker",
                        subject_id=subject_id,
                        facts={"amount": str(Money(use.amount, use.currency))},
                        sequence=1,
                    )
                )
        return entries


def _hit(consent: ConsentRow) -> SearchHit:
    return SearchHit(
        kind="consent",
        id=consent.id,
        partner_id=consent.partner_id,
        status=consent.status,
        created_at=consent.created_at,
        summary=f"{consent.kind.replace('_', ' ')} for client {consent.client_id}",
    )


class ConsentSearch:
    name = NAME

    def __init__(self, transactions: TransactionFactory[HistoryTx]) -> None:
        self._tx = transactions

    async def find(self, query: SearchQuery) -> Sequence[SearchHit]:
        if query.field not in (SearchField.ID, SearchField.PARTNER):
            return []
        async with self._tx.lookup() as tx:
            history = tx.openbanking_history
            if query.field is SearchField.ID:
                found = await history.consent(query.value)
                rows = [found] if found is not None else []
            else:
                rows = await history.consents_of(query.value, query.limit)
        return [_hit(row) for row in rows]
