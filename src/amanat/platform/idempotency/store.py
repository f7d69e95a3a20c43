"""Idempotency-Key records in SQL. The first insert of a (client, key) wins by primary key,
so under any concurrency exactly one request executes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.db.dialect import insert_if_absent
from amanat.platform.db.keyed_read import KeyedRead
from amanat.platform.db.raw_write import RawWriteMany
from amanat.platform.db.types import UtcDateTime
from amanat.platform.idempotency.ports import IdempotencyRecord
from amanat.platform.idempotency.tables import idempotency_keys

_table = idempotency_keys
_c = idempotency_keys.c

# Every idempotent POST runs these; built once (see the package docstring).
_BY_ID = _table.select().where(_c.id == sa.bindparam("p_id"))
_BY_IDS = _table.select().where(_c.id.in_(sa.bindparam("p_ids", expanding=True)))
# A retry's read of its key, the hot one: outside a transaction, shared by the requests
# asking at the same moment (platform/db/keyed_read.py). In a storm of retries every
# process meets each key once, and 64 clients' reads of keys not yet remembered went
# each on a connection and a round trip of its own.
_BY_ID_SHARED = KeyedRead(_table.select(), _c.id)
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()  # SQLite omits FOR UPDATE (BEGIN IMMEDIATE)
_COMPLETE = _table.update().where(_c.id == sa.bindparam("p_id"))
_COMPLETE_RAW = RawWriteMany(_COMPLETE)  # a payout batch's answers (raw_write.py)
# A payout batch's claims, by dialect (ON CONFLICT is written differently): raw_write.py.
_CLAIMS: dict[str, RawWriteMany] = {}
_RELEASE = _table.delete().where(_c.id == sa.bindparam("p_id"), _c.status == "in_progress")
_DELETE_EXPIRED = _table.delete().where(
    _c.id == sa.bindparam("p_id"), _c.expires_at < sa.bindparam("p_now")
)
_REPLAYED_AT = sa.bindparam("p_at", type_=UtcDateTime())
_REPLAYED = {
    "replays": _c.replays + sa.bindparam("p_n", type_=sa.Integer()),
    # Never backwards: two processes' flushes may land in either order.
    "last_replayed_at": sa.case(
        (_c.last_replayed_at > _REPLAYED_AT, _c.last_replayed_at), else_=_REPLAYED_AT
    ),
}
# SQLite: one writer at a time; the write lock is what the flush waits for.
_COUNT_REPLAYS = _table.update().where(_c.id == sa.bindparam("p_id")).values(_REPLAYED)
# PostgreSQL: all of a flush's counts in one statement (the rows as arrays), and a row
# another transaction holds is skipped, not waited for. One statement where executemany
# ran the UPDATE once a row: a replay storm over thousands of keys writes about one row
# per replay, and each execution cost the database its own plan and index probe.
_COUNT_REPLAYS_UNLESS_LOCKED = sa.text(
    """
    WITH counted AS (
        SELECT * FROM unnest(:p_ids, :p_ns, :p_ats) AS counted(id, n, at)
    ), free AS (
        SELECT k.id FROM idempotency_keys AS k JOIN counted ON counted.id = k.id
        ORDER BY k.id FOR UPDATE OF k SKIP LOCKED
    )
    UPDATE idempotency_keys AS k
    SET replays = k.replays + counted.n,
        -- Never backwards: two processes' flushes may land in either order.
        last_replayed_at = GREATEST(k.last_replayed_at, counted.at)
    FROM counted JOIN free ON free.id = counted.id
    WHERE k.id = counted.id
    """
).bindparams(
    sa.bindparam("p_ids", type_=postgresql.ARRAY(sa.Text())),
    sa.bindparam("p_ns", type_=postgresql.ARRAY(sa.Integer())),
    sa.bindparam("p_ats", type_=postgresql.ARRAY(UtcDateTime())),
)


def record_id(client_id: str, key: str) -> str:
    return f"{client_id}:{key}"


def _record(row: Any) -> IdempotencyRecord:
    return IdempotencyRecord(
        client_id=row.client_id,
        key=row.key,
        request_hash=row.request_hash,
        method=row.method,
        path=row.path,
        status=row.status,
        response_status=row.response_status,
        response_body=row.response_body,
        response_headers=row.response_headers,
        created_at=row.created_at,
        locked_until=row.locked_until,
        expires_at=row.expires_at,
    )


def _row(record: IdempotencyRecord) -> dict[str, Any]:
    return {
        "id": record_id(record.client_id, record.key),
        "client_id": record.client_id,
        "key": record.key,
        "request_hash": record.request_hash,
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "created_at": record.created_at,
        "locked_until": record.locked_until,
        "expires_at": record.expires_at,
    }


def _answered(status: int, body: str, resource_id: str | None) -> dict[str, Any]:
    """A completed record's columns: its answer (sealed) and what it created."""
    return {
        "status": "completed",
        "response_status": status,
        "response_body": body,
        "response_headers": {},
        "locked_until": None,
        "resource_id": resource_id,
    }


class SqlIdempotencyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def try_insert(self, record: IdempotencyRecord) -> bool:
        """Insert an in-progress record; False when the key already exists."""
        result = await self._conn.execute(insert_if_absent(self._conn, _table), _row(record))
        return bool(result.rowcount)

    async def claim_many(
        self, claims: list[tuple[IdempotencyRecord, int, str, str | None]]
    ) -> set[str]:
        """Insert completed records, each with its answer ``(record, status, sealed body,
        resource id)`` (ON CONFLICT DO NOTHING RETURNING, every row in one round trip), in
        id order so two batches claiming overlapping keys wait on them in one order;
        returns the ids inserted. A key not returned was taken (or has expired: the
        per-request path removes it). The row is written once: a claim of an in-progress
        record completed later would write every key twice, and its indexes twice."""
        if not claims:
            return set()
        rows = sorted(
            (
                _row(record) | _answered(status, body, resource_id)
                for record, status, body, resource_id in claims
            ),
            key=lambda row: str(row["id"]),
        )
        claim = _CLAIMS.get(self._conn.dialect.name)
        if claim is None:
            statement = insert_if_absent(self._conn, _table).returning(_c.id)
            claim = _CLAIMS[self._conn.dialect.name] = RawWriteMany(statement)
        return {str(row[0]) for row in await claim.execute_returning(self._conn, rows)}

    async def complete_many(self, answers: list[tuple[str, str, int, str, str | None]]) -> None:
        """Store each claimed key's answer: ``(client_id, key, status, sealed body,
        resource id)``."""
        if not answers:
            return
        # executemany of one cached statement: asyncpg sends the executions in one round
        # trip; an UPDATE … FROM (VALUES …) would be compiled anew for every batch, which
        # cost more than it saved.
        await _COMPLETE_RAW.execute(
            self._conn,
            [
                {"p_id": record_id(client_id, key), **_answered(status, body, resource_id)}
                for client_id, key, status, body, resource_id in answers
            ],
        )

    async def get_many(self, ids: list[str]) -> dict[str, IdempotencyRecord]:
        """The records under these ids (``client_id:key``) that exist, read without a lock."""
        if not ids:
            return {}
        result = await self._conn.execute(_BY_IDS, {"p_ids": sorted(ids)})
        return {str(row.id): _record(row) for row in result.all()}

    async def get(self, client_id: str, key: str, *, for_update: bool) -> IdempotencyRecord | None:
        row_id = record_id(client_id, key)
        if for_update:
            row = (await self._conn.execute(_BY_ID_FOR_UPDATE, {"p_id": row_id})).first()
        else:
            row = await _BY_ID_SHARED.first(self._conn, row_id)
        return _record(row) if row else None

    async def take_over(
        self, client_id: str, key: str, expected_lock: datetime | None, new_lock: datetime
    ) -> bool:
        """Claim an abandoned in-progress record (its lock expired): compare-and-set."""
        # Built here, not once: ``locked_until == None`` must render as IS NULL.
        result = await self._conn.execute(
            _table.update()
            .where(
                _c.id == record_id(client_id, key),
                _c.status == "in_progress",
                _c.locked_until == expected_lock,
            )
            .values(locked_until=new_lock)
        )
        return bool(result.rowcount)

    async def complete(
        self,
        client_id: str,
        key: str,
        status: int,
        body: str,
        headers: dict[str, str],
        *,
        resource_id: str | None = None,
    ) -> None:
        await self._conn.execute(
            _COMPLETE,
            {
                "p_id": record_id(client_id, key),
                "status": "completed",
                "response_status": status,
                "response_body": body,
                "response_headers": headers,
                "locked_until": None,
                "resource_id": resource_id,
            },
        )

    async def release(self, client_id: str, key: str) -> None:
        await self._conn.execute(_RELEASE, {"p_id": record_id(client_id, key)})

    async def delete_expired(self, client_id: str, key: str, now: datetime) -> bool:
        params = {"p_id": record_id(client_id, key), "p_now": now}
        return bool((await self._conn.execute(_DELETE_EXPIRED, params)).rowcount)

    async def count_replays(self, counts: list[tuple[str, str, int, datetime]]) -> None:
        """Add replays to keys' counts: ``(client_id, key, replays, time of the last)``,
        in the order given; on PostgreSQL a row another transaction holds is skipped."""
        if not counts:
            return
        if self._conn.dialect.name == "sqlite":
            await self._conn.execute(
                _COUNT_REPLAYS,
                [
                    {"p_id": record_id(client_id, key), "p_n": n, "p_at": at}
                    for client_id, key, n, at in counts
                ],
            )
            return
        await self._conn.execute(
            _COUNT_REPLAYS_UNLESS_LOCKED,
            {
                "p_ids": [record_id(client_id, key) for client_id, key, _n, _at in counts],
                "p_ns": [n for _client_id, _key, n, _at in counts],
                "p_ats": [at for _client_id, _key, _n, at in counts],
            },
        )


class IdempotencyRows:
    """Retention class ``idempotency_records``: stored responses past their keep time."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def due(self, cutoff: datetime, fetch: int) -> list[str]:
        rows = (
            await self._conn.execute(
                sa.select(idempotency_keys.c.id)
                .where(idempotency_keys.c.created_at < cutoff)
                .limit(fetch)
            )
        ).all()
        return [str(r[0]) for r in rows]

    async def delete(self, ids: list[str]) -> int:
        result = await self._conn.execute(
            idempotency_keys.delete().where(idempotency_keys.c.id.in_(ids))
        )
        return int(result.rowcount or 0)
