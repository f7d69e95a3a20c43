"""Which rows each retention data class covers, and how they are removed.

Holds name records by :func:`~amanat.platform.retention.service.hold_key` of their id here.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.db.tables import (
    authorization_codes,
    client_assertion_jtis,
    data_subjects,
    events,
    idempotency_keys,
    legal_holds,
    operator_sessions,
    refresh_tokens,
    revoked_tokens,
    webhook_attempts,
    webhook_deliveries,
)
from amanat.platform.retention.service import hold_key

# oauth_artifacts spans four tables; its ids are "<table>:<key>".
_OAUTH = {
    "authorization_codes": (
        authorization_codes,
        authorization_codes.c.code_hash,
        authorization_codes.c.expires_at,
    ),
    "refresh_tokens": (refresh_tokens, refresh_tokens.c.token_hash, refresh_tokens.c.expires_at),
    "revoked_tokens": (revoked_tokens, revoked_tokens.c.jti, revoked_tokens.c.expires_at),
}


class SqlRetentionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    def supports(self, data_class: str) -> bool:
        return data_class in {
            "oauth_artifacts",
            "operator_sessions",
            "data_subjects",
            "idempotency_records",
            "webhook_deliveries",
        }

    async def due(
        self, data_class: str, cutoff: datetime, limit: int, exclude: set[str]
    ) -> list[str]:
        """Up to ``limit`` ids that are due, none of them held.

        ``exclude`` holds hold keys (see :func:`hold_key`); held rows are filtered after the
        query, so each query fetches enough rows that ``limit`` unheld ones remain.
        """
        ids: list[str] = []
        fetch = limit + len(exclude)
        if data_class == "oauth_artifacts":
            for name, (_table, key, expires) in _OAUTH.items():
                rows = (
                    await self._conn.execute(sa.select(key).where(expires < cutoff).limit(fetch))
                ).all()
                ids += [f"{name}:{r[0]}" for r in rows]
            rows = (
                await self._conn.execute(
                    sa.select(client_assertion_jtis.c.client_id, client_assertion_jtis.c.jti)
                    .where(client_assertion_jtis.c.expires_at < cutoff)
                    .limit(fetch)
                )
            ).all()
            ids += [f"client_assertion_jtis:{r[0]}|{r[1]}" for r in rows]
        elif data_class == "operator_sessions":
            rows = (
                await self._conn.execute(
                    sa.select(operator_sessions.c.id_hash)
                    .where(operator_sessions.c.expires_at < cutoff)
                    .limit(fetch)
                )
            ).all()
            ids = [str(r[0]) for r in rows]
        elif data_class == "data_subjects":
            rows = (
                await self._conn.execute(
                    sa.select(data_subjects.c.id)
                    .where(data_subjects.c.created_at < cutoff, data_subjects.c.erased_at.is_(None))
                    .order_by(data_subjects.c.created_at)
                    .limit(fetch)
                )
            ).all()
            ids = [str(r[0]) for r in rows]
        elif data_class == "idempotency_records":
            rows = (
                await self._conn.execute(
                    sa.select(idempotency_keys.c.id)
                    .where(idempotency_keys.c.created_at < cutoff)
                    .limit(fetch)
                )
            ).all()
            ids = [str(r[0]) for r in rows]
        elif data_class == "webhook_deliveries":
            ids = await self._due_webhook_rows(cutoff, fetch)
        # A long id is held under its digest (older SQLite holds may name it in full).
        return [i for i in ids if i not in exclude and hold_key(i) not in exclude][:limit]

    async def delete(self, data_class: str, ids: list[str]) -> int:
        deleted = 0
        if not ids:
            return 0
        if data_class == "operator_sessions":
            result = await self._conn.execute(
                operator_sessions.delete().where(operator_sessions.c.id_hash.in_(ids))
            )
            return int(result.rowcount or 0)
        if data_class == "idempotency_records":
            result = await self._conn.execute(
                idempotency_keys.delete().where(idempotency_keys.c.id.in_(ids))
            )
            return int(result.rowcount or 0)
        if data_class == "webhook_deliveries":
            return await self._delete_webhook_rows(ids)
        if data_class != "oauth_artifacts":
            raise ValueError(f"{data_class} is not deleted by rows")
        for qualified in ids:
            name, _, key = qualified.partition(":")
            if name == "client_assertion_jtis":
                client_id, _, jti = key.partition("|")
                stmt = client_assertion_jtis.delete().where(
                    client_assertion_jtis.c.client_id == client_id,
                    client_assertion_jtis.c.jti == jti,
                )
            else:
                table, column, _ = _OAUTH[name]
                stmt = table.delete().where(column == key)
            result = await self._conn.execute(stmt)
            deleted += int(result.rowcount or 0)
        return deleted

    async def _due_webhook_rows(self, cutoff: datetime, fetch: int) -> list[str]:
        """Finished deliveries (with their attempts), then events no delivery refers to
        any more; ids are "webhook_deliveries:<id>" and "events:<id>"."""
        d = webhook_deliveries
        done = (
            await self._conn.execute(
                sa.select(d.c.id)
                .where(d.c.created_at < cutoff, d.c.status != "pending")
                .order_by(d.c.created_at)
                .limit(fetch)
            )
        ).all()
        unreferenced = (
            await self._conn.execute(
                sa.select(events.c.id)
                .where(
                    events.c.created_at < cutoff,
                    ~sa.exists().where(d.c.event_id == events.c.id),
                )
                .order_by(events.c.created_at)
                .limit(fetch)
            )
        ).all()
        return [f"webhook_deliveries:{r[0]}" for r in done] + [
            f"events:{r[0]}" for r in unreferenced
        ]

    async def _delete_webhook_rows(self, ids: list[str]) -> int:
        deliveries = [i.partition(":")[2] for i in ids if i.startswith("webhook_deliveries:")]
        event_ids = [i.partition(":")[2] for i in ids if i.startswith("events:")]
        deleted = 0
        if deliveries:
            await self._conn.execute(
                webhook_attempts.delete().where(webhook_attempts.c.delivery_id.in_(deliveries))
            )
            result = await self._conn.execute(
                webhook_deliveries.delete().where(webhook_deliveries.c.id.in_(deliveries))
            )
            deleted += int(result.rowcount or 0)
        if event_ids:
            result = await self._conn.execute(
                events.delete().where(
                    events.c.id.in_(event_ids),
                    ~sa.exists().where(webhook_deliveries.c.event_id == events.c.id),
                )
            )
            deleted += int(result.rowcount or 0)
        return deleted

    async def held_ids(self, data_class: str) -> set[str]:
        rows = (
            await self._conn.execute(
                sa.select(legal_holds.c.target_id).where(
                    legal_holds.c.data_class == data_class, legal_holds.c.released_at.is_(None)
                )
            )
        ).all()
        return {str(r[0]) for r in rows}

    async def add_hold(
        self,
        hold_id: str,
        data_class: str,
        target_id: str,
        reason: str,
        created_by: str,
        at: datetime,
    ) -> None:
        await self._conn.execute(
            legal_holds.insert(),
            {
                "id": hold_id,
                "data_class": data_class,
                "target_id": target_id,
                "reason": reason[:500],
                "created_by": created_by[:64],
                "created_at": at,
                "released_at": None,
            },
        )

    async def release_hold(self, data_class: str, target_id: str, at: datetime) -> int:
        result = await self._conn.execute(
            legal_holds.update()
            .where(
                legal_holds.c.data_class == data_class,
                legal_holds.c.target_id == target_id,
                legal_holds.c.released_at.is_(None),
            )
            .values(released_at=at)
        )
        return int(result.rowcount or 0)
