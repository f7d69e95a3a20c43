"""The audit trail in SQL: records written without a lock, chained in commit order after.

A business transaction never touches the chain: :meth:`SqlAuditRepository.flush` inserts
its records into ``audit_inbox`` (one statement, no shared row), so audited writes of all
partners commit in parallel. The sequencer (:meth:`chain_pending`, run by the worker and
by readers of the trail) locks the single ``audit_head`` row, reads the inbox records that
are committed, gives each the next sequence number and the hash over its predecessor's,
moves them into ``audit_log`` and deletes them from the inbox, in one transaction. The
chain therefore never forks (one sequencer at a time holds the head), stays dense (a
rolled-back business transaction leaves nothing in the inbox), loses nothing (a crash
before the sequencer's commit leaves the inbox as it was) and orders records as their
transactions became visible. docs/security.md gives the reasoning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.kernel.pagination import Page
from amanat.platform.audit.domain import Actor, AuditRecord, Seal, StoredRecord, canonical_json
from amanat.platform.audit.tables import audit_head, audit_inbox, audit_log, audit_seals
from amanat.platform.db.raw_write import RawWriteMany

# Every audited change runs the inbox insert; built once.
_INSERT_AUDIT_LOG = audit_log.insert()
_INSERT_INBOX = audit_inbox.insert()
_INSERT_INBOX_RAW = RawWriteMany(_INSERT_INBOX)  # a batch's records (raw_write.py)
_INBOX_IN_ORDER = sa.select(audit_inbox).order_by(audit_inbox.c.pos)
_ANY_PENDING = sa.select(audit_inbox.c.pos).limit(1)
_DELETE_CHAINED = audit_inbox.delete().where(
    audit_inbox.c.pos.in_(sa.bindparam("chained", expanding=True))
)
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
        """Write the queued records to the inbox: one statement, no lock."""
        queued, self._queued = self._queued, []
        if queued:
            await _INSERT_INBOX_RAW.execute(self._conn, [_fitted(**entry) for entry in queued])

    async def any_pending(self) -> bool:
        """Whether a committed record waits for the sequencer (a cheap look, no lock)."""
        return (await self._conn.execute(_ANY_PENDING)).first() is not None

    async def chain_pending(self, limit: int) -> int:
        """Chain up to ``limit`` committed inbox records after the head; returns how many.

        Locks the head first, so the inbox read that follows (a new statement, so a new
        snapshot on PostgreSQL's READ COMMITTED) sees every record committed before any
        other sequencer released the head, and none twice.
        """
        seq, prev_hash = await self.head(lock=True)
        rows = (await self._conn.execute(_INBOX_IN_ORDER.limit(limit))).all()
        if not rows:
            return 0
        chained: list[dict[str, Any]] = []
        for row in rows:
            seq += 1
            record = _chained(row._mapping, seq, prev_hash)
            prev_hash = record.compute_hash()
            chained.append(_log_row(record, row.payload, prev_hash))
        await self._conn.execute(_INSERT_AUDIT_LOG, chained)
        await self._conn.execute(_DELETE_CHAINED, {"chained": [row.pos for row in rows]})
        await self._conn.execute(_MOVE_HEAD, {"seq": seq, "hash": prev_hash})
        return len(rows)

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
        """Chain one record at once, under the head's lock (the sealer's own record,
        which must follow the head it signs)."""
        seq, prev_hash = await self.head(lock=True)
        row = _fitted(
            record_id=record_id,
            occurred_at=occurred_at,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            payload=payload,
        )
        record = _chained(row, seq + 1, prev_hash)
        digest = record.compute_hash()
        await self._conn.execute(_INSERT_AUDIT_LOG, _log_row(record, row["payload"], digest))
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


def _fitted(
    *,
    record_id: str,
    occurred_at: datetime,
    actor: Actor,
    action: str,
    target_type: str | None,
    target_id: str | None,
    payload: dict[str, Any],
) -> dict[str, Any]:
    """A record's stored form: cut to the columns and to the millisecond, the payload as
    canonical JSON, so the hash computed later covers exactly what the database keeps."""
    return {
        "id": record_id,
        "occurred_at": occurred_at.replace(microsecond=occurred_at.microsecond // 1000 * 1000),
        "actor_type": actor.type[:16],
        "actor_id": actor.id[:64],
        "source_ip": actor.source_ip[:64] if actor.source_ip else None,
        "user_agent": actor.user_agent[:256] if actor.user_agent else None,
        "request_id": actor.request_id[:64] if actor.request_id else None,
        "action": action[:64],
        "target_type": target_type[:32] if target_type is not None else None,
        "target_id": target_id[:64] if target_id is not None else None,
        "payload": canonical_json(payload),
    }


def _chained(row: Mapping[Any, Any], seq: int, prev_hash: str) -> AuditRecord:
    """The record a stored form (see :func:`_fitted`) becomes at ``seq`` in the chain."""
    return AuditRecord(
        seq=seq,
        id=row["id"],
        occurred_at=_parse_moment(row["occurred_at"]),
        actor=Actor(
            type=row["actor_type"],
            id=row["actor_id"],
            source_ip=row["source_ip"],
            user_agent=row["user_agent"],
            request_id=row["request_id"],
        ),
        action=row["action"],
        target_type=row["target_type"],
        target_id=row["target_id"],
        payload=json.loads(row["payload"]),
        prev_hash=prev_hash,
    )


def _log_row(record: AuditRecord, stored_payload: str, digest: str) -> dict[str, Any]:
    return {
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
        "prev_hash": record.prev_hash,
        "hash": digest,
    }


def _seal_from_row(row: Any) -> Seal:
    return Seal(
        seq=row.seq,
        head_hash=row.head_hash,
        signature=row.signature,
        public_key=row.public_key,
        sealed_at=row.sealed_at,
    )
