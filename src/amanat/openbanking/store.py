"""Consents and PSU authorisation walks in SQL (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.openbanking.domain.authorisation import AuthorisationWalk, Stage
from amanat.openbanking.domain.consents import Consent, ConsentKind, ConsentStatus
from amanat.openbanking.ports import InitiatedPayment
from amanat.openbanking.tables import (
    consents,
    initiated_payments,
    payee_checks,
    psu_authorisations,
)
from amanat.platform.db.dialect import locked


def _consent_values(consent: Consent) -> dict[str, Any]:
    return {
        "status": consent.status.value,
        "permissions": list(consent.permissions),
        "expires_at": consent.expires_at,
        "transactions_from": consent.transactions_from,
        "transactions_to": consent.transactions_to,
        "psu_id": consent.psu_id,
        "account_ids": list(consent.account_ids),
        "ended_reason": consent.ended_reason,
        "version": consent.version,
        "status_updated_at": consent.status_updated_at,
    }


def _consent(row: Any) -> tuple[Consent, str | None]:
    consent = Consent(
        id=row.id,
        kind=ConsentKind(row.kind),
        partner_id=row.partner_id,
        client_id=row.client_id,
        status=ConsentStatus(row.status),
        created_at=row.created_at,
        status_updated_at=row.status_updated_at,
        permissions=tuple(row.permissions),
        expires_at=row.expires_at,
        transactions_from=row.transactions_from,
        transactions_to=row.transactions_to,
        psu_id=row.psu_id,
        account_ids=tuple(row.account_ids),
        ended_reason=row.ended_reason,
        version=row.version,
    )
    return consent, row.details


class SqlConsentRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, consent: Consent, sealed_details: str | None) -> None:
        await self._conn.execute(
            consents.insert().values(
                id=consent.id,
                kind=consent.kind.value,
                partner_id=consent.partner_id,
                client_id=consent.client_id,
                created_at=consent.created_at,
                details=sealed_details,
                **_consent_values(consent),
            )
        )

    async def get(self, consent_id: str) -> tuple[Consent, str | None] | None:
        row = (
            await self._conn.execute(consents.select().where(consents.c.id == consent_id))
        ).first()
        return _consent(row) if row else None

    async def get_for_update(self, consent_id: str) -> tuple[Consent, str | None] | None:
        stmt = locked(consents.select().where(consents.c.id == consent_id), self._conn)
        row = (await self._conn.execute(stmt)).first()
        return _consent(row) if row else None

    async def save(self, consent: Consent) -> bool:
        result = await self._conn.execute(
            consents.update()
            .where(consents.c.id == consent.id, consents.c.version == consent.version - 1)
            .values(**_consent_values(consent))
        )
        return result.rowcount == 1

    async def of_psu(self, psu_id: str, *, limit: int) -> list[Consent]:
        rows = await self._conn.execute(
            consents.select()
            .where(consents.c.psu_id == psu_id)
            .order_by(consents.c.created_at.desc(), consents.c.id.desc())
            .limit(limit)
        )
        return [_consent(row)[0] for row in rows]

    async def due_to_end(self, now: datetime, awaiting_before: datetime, limit: int) -> list[str]:
        stale = sa.select(consents.c.id).where(
            consents.c.status == ConsentStatus.AWAITING_AUTHORISATION.value,
            consents.c.created_at < awaiting_before,
        )
        expired = sa.select(consents.c.id).where(
            consents.c.status == ConsentStatus.AUTHORISED.value,
            consents.c.expires_at.is_not(None),
            consents.c.expires_at <= now,
        )
        rows = await self._conn.execute(sa.union_all(stale, expired).limit(limit))
        return [row[0] for row in rows]


def _walk_values(walk: AuthorisationWalk) -> dict[str, Any]:
    return {
        "stage": walk.stage.value,
        "psu_id": walk.psu_id,
        "otp_hash": walk.otp_hash,
        "otp_expires_at": walk.otp_expires_at,
        "failures": walk.failures,
    }


def _walk(row: Any) -> AuthorisationWalk:
    return AuthorisationWalk(
        id=row.id,
        secret_hash=row.secret_hash,
        consent_id=row.consent_id,
        client_id=row.client_id,
        redirect_uri=row.redirect_uri,
        state=row.state,
        scope=row.scope,
        code_challenge=row.code_challenge,
        stage=Stage(row.stage),
        created_at=row.created_at,
        expires_at=row.expires_at,
        psu_id=row.psu_id,
        otp_hash=row.otp_hash,
        otp_expires_at=row.otp_expires_at,
        failures=row.failures,
    )


class SqlWalkRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, walk: AuthorisationWalk) -> None:
        await self._conn.execute(
            psu_authorisations.insert().values(
                id=walk.id,
                secret_hash=walk.secret_hash,
                consent_id=walk.consent_id,
                client_id=walk.client_id,
                redirect_uri=walk.redirect_uri,
                state=walk.state,
                scope=walk.scope,
                code_challenge=walk.code_challenge,
                created_at=walk.created_at,
                expires_at=walk.expires_at,
                **_walk_values(walk),
            )
        )

    async def get_for_update(self, walk_id: str) -> AuthorisationWalk | None:
        stmt = locked(
            psu_authorisations.select().where(psu_authorisations.c.id == walk_id), self._conn
        )
        row = (await self._conn.execute(stmt)).first()
        return _walk(row) if row else None

    async def save(self, walk: AuthorisationWalk) -> None:
        await self._conn.execute(
            psu_authorisations.update()
            .where(psu_authorisations.c.id == walk.id)
            .values(**_walk_values(walk))
        )

    async def delete_ended(self, before: datetime) -> int:
        result = await self._conn.execute(
            psu_authorisations.delete().where(psu_authorisations.c.expires_at < before)
        )
        return int(result.rowcount or 0)


class SqlPayeeCheckRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self, check_id: str, partner_id: str, account_bidx: str, verdict: str, at: datetime
    ) -> None:
        await self._conn.execute(
            payee_checks.insert().values(
                id=check_id,
                partner_id=partner_id,
                account_bidx=account_bidx,
                verdict=verdict,
                created_at=at,
            )
        )

    async def confirmed_since(
        self, partner_id: str, account_bidx: str, since: datetime, verdicts: tuple[str, ...]
    ) -> bool:
        row = (
            await self._conn.execute(
                sa.select(payee_checks.c.id)
                .where(
                    payee_checks.c.partner_id == partner_id,
                    payee_checks.c.account_bidx == account_bidx,
                    payee_checks.c.created_at >= since,
                    payee_checks.c.verdict.in_(verdicts),
                )
                .limit(1)
            )
        ).first()
        return row is not None


class SqlInitiatedPaymentRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, payment: InitiatedPayment) -> None:
        await self._conn.execute(
            initiated_payments.insert().values(
                payment_id=payment.payment_id,
                consent_id=payment.consent_id,
                partner_id=payment.partner_id,
                account_id=payment.account_id,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                created_at=payment.created_at,
                returned_at=payment.returned_at,
            )
        )

    async def get(self, payment_id: str, *, for_update: bool = False) -> InitiatedPayment | None:
        stmt = initiated_payments.select().where(initiated_payments.c.payment_id == payment_id)
        row = (await self._conn.execute(locked(stmt, self._conn) if for_update else stmt)).first()
        if row is None:
            return None
        return InitiatedPayment(
            payment_id=row.payment_id,
            consent_id=row.consent_id,
            partner_id=row.partner_id,
            account_id=row.account_id,
            amount_minor=row.amount_minor,
            currency=row.currency,
            created_at=row.created_at,
            returned_at=row.returned_at,
        )

    async def mark_returned(self, payment_id: str, at: datetime) -> None:
        await self._conn.execute(
            initiated_payments.update()
            .where(initiated_payments.c.payment_id == payment_id)
            .values(returned_at=at)
        )
