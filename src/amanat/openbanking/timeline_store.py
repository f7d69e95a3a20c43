"""Open banking's reads for a transaction's timeline and the console's search, in SQL:
a consent, the payments initiated under it, and the consent behind a payment."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.openbanking.tables import consents, initiated_payments
from amanat.openbanking.timeline import ConsentRow, InitiationRow

_c = consents.c
_CONSENT_COLUMNS = (
    _c.id,
    _c.kind,
    _c.partner_id,
    _c.client_id,
    _c.status,
    _c.ended_reason,
    _c.expires_at,
    _c.created_at,
    _c.status_updated_at,
)
_i = initiated_payments.c
_INITIATION_COLUMNS = (
    _i.payment_id,
    _i.consent_id,
    _i.amount_minor,
    _i.currency,
    _i.created_at,
    _i.returned_at,
)


def _consent(row: Any) -> ConsentRow:
    return ConsentRow(
        id=row.id,
        kind=row.kind,
        partner_id=row.partner_id,
        client_id=row.client_id,
        status=row.status,
        ended_reason=row.ended_reason,
        expires_at=row.expires_at,
        created_at=row.created_at,
        status_updated_at=row.status_updated_at,
    )


def _initiation(row: Any) -> InitiationRow:
    return InitiationRow(
        payment_id=row.payment_id,
        consent_id=row.consent_id,
        amount=int(row.amount_minor),
        currency=row.currency,
        created_at=row.created_at,
        returned_at=row.returned_at,
    )


class SqlOpenBankingHistory:
    """Repository ``openbanking_history`` (openbanking/wiring.py)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def consent(self, consent_id: str) -> ConsentRow | None:
        row = (
            await self._conn.execute(sa.select(*_CONSENT_COLUMNS).where(_c.id == consent_id))
        ).first()
        return _consent(row) if row else None

    async def initiations(
        self, *, consent_id: str | None = None, payment_id: str | None = None
    ) -> list[InitiationRow]:
        where = (
            _i.consent_id == consent_id if consent_id is not None else _i.payment_id == payment_id
        )
        rows = await self._conn.execute(
            sa.select(*_INITIATION_COLUMNS).where(where).order_by(_i.created_at, _i.payment_id)
        )
        return [_initiation(r) for r in rows]

    async def consents_of(self, partner_id: str, limit: int) -> list[ConsentRow]:
        rows = await self._conn.execute(
            sa.select(*_CONSENT_COLUMNS)
            .where(_c.partner_id == partner_id)
            .order_by(_c.created_at.desc(), _c.id.desc())
            .limit(limit)
        )
        return [_consent(r) for r in rows]
