"""The audit trail in SQL: dense sequence numbers and a hash chain that never forks.

Each append locks the single ``audit_head`` row (``FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers), so concurrent transactions take turns at
the head and a rolled-back transaction leaves no gap.

The head lock is held until commit, so every transaction that audits takes its turn
there. Business transactions therefore queue their records (:meth:`append_at_commit`)
and the unit of work appends them as its last statements, just before commit: the lock
is held for three statements and the commit, not for the whole business change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.kernel.pagination import Page
from amanat.platform.audit.domain import Actor, AuditRecord, Seal, StoredRecord, canonical_json
from amanat.platform.audit.tables import audit_head, audit_log, audit_seals

# Every audited change runs these; built once (see the package docstring).
_INSERT_AUDIT_LOG = audit_log.insert()
_HEAD = sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()  # SQLite omits FOR UPDATE (BEGIN IMMEDIATE)
_MOVE_HEAD = audit_head.update().where(audit_head.c.id == 1)
# Verification reads the timestamp without the column type's parser, so a value edited
# into something that is not a timestamp is a finding rather than an exception.
_RAW_RECORDS = sa.select(
    *(c for c in audit_log.c if c.name != "occurred_at"),
    sa.type_coerce(audit_log.c.occurred_at, sa.String).label("occurred_at"),
)
_UNREADABLE_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)


def record_from_row(row: Any) -> AuditRecord:
    return stored_from_row(row).record


def _parse_moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise ValueError("not a timestamp")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stored_from_row(row: Any) -> StoredRecord:
    """A record as stored, however it was edited: fields that no longer parse are named
    in ``unreadable`` and replaced by placeholders, never raised."""
    unreadable: list[str] = []
    try:
        occurred_at = _parse_moment(row.occurred_at)
    except (TypeError, ValueError):
        unreadable.append("occurred_at")
        occurred_at = _UNREADABLE_MOMENT
    try:
        payload = json.loads(row.payload)
        if not isinstance(payload, dict):
            raise ValueError("not an object")
    except (TypeError, ValueError):
        unreadable.append("payload")
        payload = {}
    record = AuditRecord(
        seq=row.seq,
        id=row.id,
        occurred_at=occurred_at,
        actor=Actor(
            type=row.actor_type,
            id=row.actor_id,
            source_ip=row.source_ip,
            user_agent=row.user_agent,
            request_id=row.request_id,
        ),
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        payload=payload,
        prev_hash=row.prev_hash,
    )
    return StoredRecord(record=record, stored_hash=row.hash, unreadable=tuple(unreadable))


class SqlAuditRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._queued: list[dict[str, Any]] = []

    async def append_at_commit(
        self,
        *,
        record_id: str,
        occurred_at: Any,
        actor: Actor,
        action: str,
        target_type: str | None,
        target_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        """Queue a record; :meth:`flush` appends it in this transaction before commit."""
        self._queued.append(
            {
                "record_id": record_id,
                "occurred_at": occurred_at,
                "actor": actor,
                "action": action,
                "target_type": target_type,
                "target_id": target_id,
                "payload": payload,
            }
        )

    @property
    def pending(self) -> int:
        """Records queued by :meth:`append_at_commit` and not yet appended."""
        return len(self._queued)

    async def flush(self) -> None:
        queued, self._queued = self._queued, []
        for entry in queued:
            await self.append(**entry)

    async def append(
        self,
        *,
        record_id: str,
        occurred_at: Any,
        actor: Actor,
        action: str,
        target_type: str | None,
        target_id: str | None,
        payload: dict[str, Any],
    ) -> AuditRecord:
        seq, prev_hash = await self.head(lock=True)
        # Round-trip the payload through canonical JSON so the hash covers what is stored.
        stored_payload = canonical_json(payload)
        record = AuditRecord(
            seq=seq + 1,
            id=record_id,
            occurred_at=occurred_at.replace(microsecond=occurred_at.microsecond // 1000 * 1000),
            actor=Actor(
                type=actor.type[:16],
                id=actor.id[:64],
                source_ip=actor.source_ip[:64] if actor.source_ip else None,
                user_agent=actor.user_agent[:256] if actor.user_agent else None,
                request_id=actor.request_id[:64] if actor.request_id else None,
            ),
            # Fit the columns, so the hash covers exactly what PostgreSQL will store.
            action=action[:64],
            target_type=target_type[:32] if target_type is not None else None,
            target_id=target_id[:64] if target_id is not None else None,
            payload=json.loads(stored_payload),
            prev_hash=prev_hash,
        )
        digest = record.compute_hash()
        await self._conn.execute(
            _INSERT_AUDIT_LOG,
            {
                "seq": record.seq,
                "id": record.id,
                "occurred_at": record.occurred_at,
                "actor_type": record.actor.type,
                "actor_id": record.actor.id,
                "source_ip": record.actor.source_ip,
                "user_agent": record.actor.user_agent,
                "request_id": record.actor.request_id,
                "action": record.action,
                "target_type": record.target_type,
                "target_id": record.target_id,
                "payload": stored_payload,
                "prev_hash": prev_hash,
                "hash": digest,
            },
        )
        await self._conn.execute(_MOVE_HEAD, {"seq": record.seq, "hash": digest})
        return record

    async def list_records(
        self, limit: int, before_seq: int | None, action: str | None, target_id: str | None
    ) -> Page[AuditRecord]:
        stmt = audit_log.select().order_by(audit_log.c.seq.desc())
        if before_seq is not None:
            stmt = stmt.where(audit_log.c.seq < before_seq)
        if action:
            stmt = stmt.where(audit_log.c.action == action)
        if target_id:
            stmt = stmt.where(audit_log.c.target_id == target_id)
        rows = (await self._conn.execute(stmt.limit(limit + 1))).all()
        return Page(items=[record_from_row(r) for r in rows[:limit]], has_more=len(rows) > limit)

    async def stored_records(self, after_seq: int, limit: int) -> list[StoredRecord]:
        rows = (
            await self._conn.execute(
                _RAW_RECORDS.where(audit_log.c.seq > after_seq)
                .order_by(audit_log.c.seq)
                .limit(limit)
            )
        ).all()
        return [stored_from_row(r) for r in rows]

    async def head(self, *, lock: bool = False) -> tuple[int, str]:
        # Locked, appenders and sealers take turns at the head, so the chain never forks.
        row = (await self._conn.execute(_HEAD_FOR_UPDATE if lock else _HEAD)).first()
        if row is None:
            raise RuntimeError("audit_head row missing: run `amanat migrate`")
        return int(row.seq), str(row.hash)

    async def add_seal(self, seal: Seal) -> None:
        await self._conn.execute(
            audit_seals.insert(),
            {
                "seq": seal.seq,
                "head_hash": seal.head_hash,
                "signature": seal.signature,
                "public_key": seal.public_key,
                "sealed_at": seal.sealed_at,
            },
        )

    async def seals(self, after_seq: int = 0, up_to: int | None = None) -> list[Seal]:
        stmt = audit_seals.select().where(audit_seals.c.seq > after_seq)
        if up_to is not None:
            stmt = stmt.where(audit_seals.c.seq <= up_to)
        rows = (await self._conn.execute(stmt.order_by(audit_seals.c.seq))).all()
        return [_seal_from_row(r) for r in rows]

    async def latest_seal(self) -> Seal | None:
        stmt = audit_seals.select().order_by(audit_seals.c.seq.desc()).limit(1)
        row = (await self._conn.execute(stmt)).first()
        return None if row is None else _seal_from_row(row)


def _seal_from_row(row: Any) -> Seal:
    return Seal(
        seq=row.seq,
        head_hash=row.head_hash,
        signature=row.signature,
        public_key=row.public_key,
        sealed_at=row.sealed_at,
    )
