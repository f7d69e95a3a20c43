"""Disputes, their history and their evidence in SQL (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.disputes.domain.disputes import (
    Dispute,
    DisputeReason,
    DisputeStatus,
    Funds,
    Opener,
    PaymentKind,
)
from amanat.disputes.ports import EvidenceMeta, Transition
from amanat.disputes.tables import dispute_evidence, dispute_transitions, disputes
from amanat.platform.db.dialect import advisory_xact_lock, locked
from amanat.platform.db.paging import newest_first

# Bound parameters per statement stay well under SQLite's and asyncpg's limits.
_CHUNK = 500

_EVIDENCE_META = [c for c in dispute_evidence.c if c.name != "content"]


def _row(dispute: Dispute) -> dict[str, Any]:
    funds = dispute.funds
    return {
        "id": dispute.id,
        "partner_id": dispute.partner_id,
        "payment_id": dispute.payment_id,
        "payment_type": dispute.payment_type.value,
        "status": dispute.status.value,
        "reason": dispute.reason.value,
        "amount": funds.amount,
        "currency": dispute.currency,
        "held_total": funds.held_total,
        "released": funds.released,
        "reversed": funds.reversed,
        "returned": funds.returned,
        "opened_by": dispute.opened_by.value,
        "opener_id": dispute.opener_id,
        "rail_dispute_id": dispute.rail_dispute_id,
        "respond_by_date": dispute.respond_by,
        "decide_by_date": dispute.decide_by,
        "response_text": dispute.response_text,
        "responded_at": dispute.responded_at,
        "responded_by": dispute.responded_by,
        "close_note": dispute.close_note,
        "version": dispute.version,
        "created_at": dispute.created_at,
        "updated_at": dispute.updated_at,
        "closed_at": dispute.closed_at,
    }


def _dispute(row: Any) -> Dispute:
    return Dispute(
        id=row.id,
        partner_id=row.partner_id,
        payment_id=row.payment_id,
        payment_type=PaymentKind(row.payment_type),
        status=DisputeStatus(row.status),
        reason=DisputeReason(row.reason),
        currency=row.currency,
        funds=Funds(
            amount=int(row.amount),
            held_total=int(row.held_total),
            released=int(row.released),
            reversed=int(row.reversed),
            returned=int(row.returned),
        ),
        opened_by=Opener(row.opened_by),
        opener_id=row.opener_id,
        respond_by=row.respond_by_date,
        decide_by=row.decide_by_date,
        version=int(row.version),
        created_at=row.created_at,
        updated_at=row.updated_at,
        rail_dispute_id=row.rail_dispute_id,
        response_text=row.response_text,
        responded_at=row.responded_at,
        responded_by=row.responded_by,
        close_note=row.close_note,
        closed_at=row.closed_at,
    )


def _transition(row: Any) -> Transition:
    return Transition(
        dispute_id=row.dispute_id,
        seq=int(row.seq),
        from_status=row.from_status,
        to_status=row.to_status,
        action=row.action,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        request_id=row.request_id,
        note=row.note,
        journal_ids=tuple(row.journal_ids or ()),
        at=row.at,
    )


def _evidence(row: Any) -> EvidenceMeta:
    return EvidenceMeta(
        id=row.id,
        dispute_id=row.dispute_id,
        partner_id=row.partner_id,
        content_type=row.content_type,
        size=int(row.size),
        sha256=row.sha256,
        uploaded_by_type=row.uploaded_by_type,
        uploaded_by_id=row.uploaded_by_id,
        request_id=row.request_id,
        created_at=row.created_at,
    )


class SqlDisputeRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock(self, key: str) -> None:
        await advisory_xact_lock(self._conn, key)

    # -- disputes ---------------------------------------------------------------------------

    async def add(self, dispute: Dispute) -> None:
        await self._conn.execute(disputes.insert().values(**_row(dispute)))

    async def get(self, dispute_id: str, *, for_update: bool = False) -> Dispute | None:
        query = disputes.select().where(disputes.c.id == dispute_id)
        if for_update:
            query = locked(query, self._conn)
        row = (await self._conn.execute(query)).first()
        return _dispute(row) if row else None

    async def by_rail_id(self, rail_dispute_id: str) -> Dispute | None:
        row = (
            await self._conn.execute(
                disputes.select().where(disputes.c.rail_dispute_id == rail_dispute_id)
            )
        ).first()
        return _dispute(row) if row else None

    async def on_payment(self, payment_id: str) -> list[Dispute]:
        rows = await self._conn.execute(
            disputes.select()
            .where(disputes.c.payment_id == payment_id)
            .order_by(disputes.c.created_at, disputes.c.id)
        )
        return [_dispute(r) for r in rows]

    async def save(self, before: Dispute, after: Dispute) -> bool:
        values = _row(after)
        for fixed in ("id", "partner_id", "payment_id", "created_at"):
            values.pop(fixed)
        result = await self._conn.execute(
            disputes.update()
            .where(disputes.c.id == before.id, disputes.c.version == before.version)
            .values(**values)
        )
        return bool(result.rowcount)

    async def page(
        self,
        *,
        partner_id: str | None,
        status: str | None,
        payment_id: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[Dispute]:
        query = disputes.select()
        for column, value in (
            (disputes.c.partner_id, partner_id),
            (disputes.c.status, status),
            (disputes.c.payment_id, payment_id),
        ):
            if value is not None:
                query = query.where(column == value)
        query = newest_first(query, disputes.c.created_at, disputes.c.id, before)
        rows = await self._conn.execute(query.limit(limit))
        return [_dispute(r) for r in rows]

    async def overdue(self, today: date, limit: int) -> list[str]:
        rows = await self._conn.execute(
            sa.select(disputes.c.id)
            .where(
                disputes.c.status == DisputeStatus.NEEDS_RESPONSE.value,
                disputes.c.respond_by_date < today,
            )
            .order_by(disputes.c.respond_by_date, disputes.c.id)
            .limit(limit)
        )
        return [r[0] for r in rows]

    async def due_by(self, respond_by: date, decide_by: date, limit: int) -> list[Dispute]:
        rows = await self._conn.execute(
            disputes.select()
            .where(
                sa.or_(
                    sa.and_(
                        disputes.c.status == DisputeStatus.NEEDS_RESPONSE.value,
                        disputes.c.respond_by_date <= respond_by,
                    ),
                    sa.and_(
                        disputes.c.status == DisputeStatus.UNDER_REVIEW.value,
                        disputes.c.decide_by_date <= decide_by,
                    ),
                )
            )
            .order_by(disputes.c.created_at, disputes.c.id)
            .limit(limit)
        )
        return [_dispute(r) for r in rows]

    # -- history ----------------------------------------------------------------------------

    async def next_seq(self, dispute_id: str) -> int:
        last = (
            await self._conn.execute(
                sa.select(sa.func.max(dispute_transitions.c.seq)).where(
                    dispute_transitions.c.dispute_id == dispute_id
                )
            )
        ).scalar_one_or_none()
        return int(last or 0) + 1

    async def add_transition(self, transition: Transition) -> None:
        await self._conn.execute(
            dispute_transitions.insert().values(
                dispute_id=transition.dispute_id,
                seq=transition.seq,
                from_status=transition.from_status,
                to_status=transition.to_status,
                action=transition.action,
                actor_type=transition.actor_type,
                actor_id=transition.actor_id,
                request_id=transition.request_id,
                note=transition.note,
                journal_ids=list(transition.journal_ids),
                at=transition.at,
            )
        )

    async def transitions(self, dispute_ids: Sequence[str]) -> list[Transition]:
        found: list[Transition] = []
        ids = list(dispute_ids)
        for start in range(0, len(ids), _CHUNK):
            rows = await self._conn.execute(
                dispute_transitions.select()
                .where(dispute_transitions.c.dispute_id.in_(ids[start : start + _CHUNK]))
                .order_by(dispute_transitions.c.at, dispute_transitions.c.seq)
            )
            found.extend(_transition(r) for r in rows)
        return found

    # -- evidence ---------------------------------------------------------------------------

    async def add_evidence(self, meta: EvidenceMeta, sealed_content: str) -> None:
        await self._conn.execute(
            dispute_evidence.insert().values(
                id=meta.id,
                dispute_id=meta.dispute_id,
                partner_id=meta.partner_id,
                content_type=meta.content_type,
                size=meta.size,
                sha256=meta.sha256,
                content=sealed_content,
                uploaded_by_type=meta.uploaded_by_type,
                uploaded_by_id=meta.uploaded_by_id,
                request_id=meta.request_id,
                created_at=meta.created_at,
            )
        )

    async def evidence(self, dispute_ids: Sequence[str]) -> list[EvidenceMeta]:
        found: list[EvidenceMeta] = []
        ids = list(dispute_ids)
        for start in range(0, len(ids), _CHUNK):
            rows = await self._conn.execute(
                sa.select(*_EVIDENCE_META)
                .where(dispute_evidence.c.dispute_id.in_(ids[start : start + _CHUNK]))
                .order_by(dispute_evidence.c.created_at, dispute_evidence.c.id)
            )
            found.extend(_evidence(r) for r in rows)
        return found

    async def evidence_count(self, dispute_id: str) -> int:
        count = (
            await self._conn.execute(
                sa.select(sa.func.count()).where(dispute_evidence.c.dispute_id == dispute_id)
            )
        ).scalar_one()
        return int(count)

    async def evidence_file(self, evidence_id: str) -> tuple[EvidenceMeta, str] | None:
        row = (
            await self._conn.execute(
                dispute_evidence.select().where(dispute_evidence.c.id == evidence_id)
            )
        ).first()
        return (_evidence(row), str(row.content)) if row else None
