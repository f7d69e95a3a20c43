"""Payments' reads for a transaction's timeline and the console's search, in SQL.

Every query here is a lookup by an indexed column (a payment's id, its end-to-end id, a
journal's reference, a parent collection, a partner, a data subject, a reference), so a
timeline costs a handful of index reads whatever the size of the tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.payments.tables import holds, ledger_entries, ledger_journals, payments, rail_events
from amanat.payments.timeline import (
    HoldRow,
    JobRow,
    JournalRow,
    PaymentRow,
    Posting,
    RailEventRow,
)
from amanat.platform.jobs.tables import outbox

_p = payments.c

_PAYMENT_COLUMNS = (
    _p.id,
    _p.partner_id,
    _p.type,
    _p.status,
    _p.amount,
    _p.currency,
    _p.bank_code,
    _p.iban_last4,
    _p.counterparty_kind,
    _p.reference,
    _p.rail_reference,
    _p.parent_id,
    _p.created_at,
    _p.updated_at,
)
_JOURNALS = (
    sa.select(
        ledger_journals.c.id,
        ledger_journals.c.kind,
        ledger_journals.c.created_at,
        ledger_entries.c.account_id,
        ledger_entries.c.amount,
        ledger_entries.c.currency,
    )
    .join(ledger_entries, ledger_entries.c.journal_id == ledger_journals.c.id)
    .where(ledger_journals.c.reference == sa.bindparam("p_reference"))
    .order_by(ledger_journals.c.created_at, ledger_journals.c.id, ledger_entries.c.id)
)
_HOLD = holds.select().where(holds.c.id == sa.bindparam("p_id"))
_RAIL_EVENTS = (
    rail_events.select()
    .where(rail_events.c.end_to_end_id == sa.bindparam("p_e2e"))
    .order_by(rail_events.c.received_at, rail_events.c.event_id)
)
_JOBS = (
    sa.select(
        outbox.c.id,
        outbox.c.kind,
        outbox.c.status,
        outbox.c.attempts,
        outbox.c.last_error,
        outbox.c.created_at,
        outbox.c.updated_at,
    )
    .where(
        outbox.c.subject_id == sa.bindparam("p_subject"),
        outbox.c.kind.in_(sa.bindparam("p_kinds", expanding=True)),
    )
    .order_by(outbox.c.id)
)
_CHILDREN = (
    sa.select(*_PAYMENT_COLUMNS)
    .where(_p.parent_id == sa.bindparam("p_parent"))
    .order_by(_p.created_at, _p.id)
)
_NEWEST_FIRST = (_p.created_at.desc(), _p.id.desc())


def _payment(row: Any) -> PaymentRow:
    return PaymentRow(
        id=row.id,
        partner_id=row.partner_id,
        type=row.type,
        status=row.status,
        amount=int(row.amount),
        currency=row.currency,
        bank_code=row.bank_code,
        iban_last4=row.iban_last4,
        counterparty_kind=row.counterparty_kind,
        reference=row.reference,
        rail_reference=row.rail_reference,
        parent_id=row.parent_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlPaymentHistory:
    """Repository ``payment_history`` (payments/wiring.py)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def journals(self, reference: str) -> list[JournalRow]:
        rows = (await self._conn.execute(_JOURNALS, {"p_reference": reference})).all()
        found: dict[str, JournalRow] = {}
        for r in rows:
            journal = found.get(r.id)
            if journal is None:
                journal = found[r.id] = JournalRow(r.id, r.kind, r.created_at, [])
            journal.postings.append(Posting(r.account_id, int(r.amount), r.currency))
        return list(found.values())

    async def hold(self, hold_id: str) -> HoldRow | None:
        row = (await self._conn.execute(_HOLD, {"p_id": hold_id})).first()
        if row is None:
            return None
        return HoldRow(
            account_id=row.account_id,
            shard=row.shard,
            amount=int(row.amount),
            currency=row.currency,
            status=row.status,
            created_at=row.created_at,
            closed_at=row.closed_at,
        )

    async def rail_events(self, end_to_end_id: str) -> list[RailEventRow]:
        rows = await self._conn.execute(_RAIL_EVENTS, {"p_e2e": end_to_end_id})
        return [
            RailEventRow(r.event_id, r.status, r.sequence, r.outcome, r.received_at) for r in rows
        ]

    async def jobs(self, subject_id: str, kinds: Sequence[str]) -> list[JobRow]:
        rows = await self._conn.execute(_JOBS, {"p_subject": subject_id, "p_kinds": list(kinds)})
        return [
            JobRow(r.kind, r.status, r.attempts, r.last_error, r.created_at, r.updated_at)
            for r in rows
        ]

    async def refunds(self, collection_id: str) -> list[PaymentRow]:
        rows = await self._conn.execute(_CHILDREN, {"p_parent": collection_id})
        return [_payment(r) for r in rows]

    # -- search --------------------------------------------------------------------------

    async def by_id(self, payment_id: str) -> list[PaymentRow]:
        rows = await self._conn.execute(sa.select(*_PAYMENT_COLUMNS).where(_p.id == payment_id))
        return [_payment(r) for r in rows]

    async def by_reference(self, reference: str, limit: int) -> list[PaymentRow]:
        """The partner's reference or the rail's (each indexed: the OR is two index
        reads), newest first."""
        rows = await self._conn.execute(
            sa.select(*_PAYMENT_COLUMNS)
            .where(sa.or_(_p.reference == reference, _p.rail_reference == reference))
            .order_by(*_NEWEST_FIRST)
            .limit(limit)
        )
        return [_payment(r) for r in rows]

    async def by_partner(self, partner_id: str, limit: int) -> list[PaymentRow]:
        rows = await self._conn.execute(
            sa.select(*_PAYMENT_COLUMNS)
            .where(_p.partner_id == partner_id)
            .order_by(*_NEWEST_FIRST)
            .limit(limit)
        )
        return [_payment(r) for r in rows]

    async def by_counterparties(self, subject_ids: Sequence[str], limit: int) -> list[PaymentRow]:
        if not subject_ids:
            return []
        rows = await self._conn.execute(
            sa.select(*_PAYMENT_COLUMNS)
            .where(_p.counterparty_id.in_(list(subject_ids)))
            .order_by(*_NEWEST_FIRST)
            .limit(limit)
        )
        return [_payment(r) for r in rows]
