"""The audit attack drill: what someone with full control of the database could try.

Each attack steps around the append-only triggers the way the database's owner can (drops
them on SQLite, disables them on PostgreSQL, puts them back after) and edits the audit
tables directly. `amanat audit verify` must then name the damage, without a traceback.

Run by hand on a COPY of a sandbox database (never on one you need):

    cp var/amanat.db /tmp/drill.db && cp var/audit-witness.jsonl /tmp/drill-witness.jsonl
    export AMANAT_DATABASE__URL=sqlite+aiosqlite:////tmp/drill.db
    export AMANAT_AUDIT__WITNESS_FILE=/tmp/drill-witness.jsonl
    .venv/bin/python -m tests.audit_drill edit-field      # or any case below
    .venv/bin/amanat audit verify

Cases: edit-field, break-json, delete-middle, delete-newest, delete-newest-rewind-head,
delete-seals-rewrite-chain. Each prints what it did.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.audit.domain import GENESIS_HASH, canonical_json
from amanat.platform.audit.store import SqlAuditRepository
from amanat.platform.audit.tables import audit_head, audit_log
from amanat.platform.db.engine import create_engine
from amanat.platform.settings import DatabaseSettings, Settings

AUDIT_TABLES = ("audit_log", "audit_seals")


async def _without_triggers(
    conn: AsyncConnection, attack: Callable[[AsyncConnection], Awaitable[str]]
) -> str:
    if conn.dialect.name == "sqlite":
        rows = await conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type='trigger' "
            "AND tbl_name IN ('audit_log', 'audit_seals')"
        )
        saved = rows.all()
        for name, _ in saved:
            await conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        done = await attack(conn)
        for _, sql in saved:
            await conn.exec_driver_sql(sql)
        return done
    for table in AUDIT_TABLES:
        await conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    done = await attack(conn)
    for table in AUDIT_TABLES:
        await conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    return done


async def _newest(conn: AsyncConnection) -> int:
    return int(await conn.scalar(sa.select(sa.func.max(audit_log.c.seq))) or 0)


async def _middle(conn: AsyncConnection) -> int:
    return max(1, await _newest(conn) // 2)


async def edit_field(conn: AsyncConnection) -> str:
    seq = await _middle(conn)
    await conn.execute(
        audit_log.update().where(audit_log.c.seq == seq).values(actor_id="op_mallory")
    )
    return f"edited actor_id of record {seq}"


async def break_json(conn: AsyncConnection) -> str:
    seq = await _middle(conn)
    await conn.execute(
        audit_log.update().where(audit_log.c.seq == seq).values(payload='{"amount": 15000')
    )
    return f"broke the JSON payload of record {seq}"


async def delete_middle(conn: AsyncConnection) -> str:
    seq = await _middle(conn)
    await conn.execute(audit_log.delete().where(audit_log.c.seq == seq))
    return f"deleted record {seq}"


async def delete_newest(conn: AsyncConnection) -> str:
    seq = await _newest(conn)
    await conn.execute(audit_log.delete().where(audit_log.c.seq == seq))
    return f"deleted the newest record {seq}"


async def delete_newest_rewind_head(conn: AsyncConnection) -> str:
    seq = await _newest(conn)
    await conn.execute(audit_log.delete().where(audit_log.c.seq == seq))
    previous = await conn.scalar(sa.select(audit_log.c.hash).where(audit_log.c.seq == seq - 1))
    await conn.execute(
        audit_head.update()
        .where(audit_head.c.id == 1)
        .values(seq=seq - 1, hash=previous or GENESIS_HASH)
    )
    return f"deleted the newest record {seq} and rewound the head to {seq - 1}"


async def delete_seals_rewrite_chain(conn: AsyncConnection) -> str:
    """The strongest attack from inside the database: no seal left in it, no audit.sealed
    record left in the chain, one record edited, every hash recomputed, numbers dense."""
    await conn.exec_driver_sql("DELETE FROM audit_seals")
    stored = await SqlAuditRepository(conn).stored_records(0, 1_000_000)
    kept = [s.record for s in stored if s.record.action != "audit.sealed"]
    edited_seq = max(1, len(kept) // 2)
    await conn.execute(audit_log.delete())
    prev = GENESIS_HASH
    for number, original in enumerate(kept, start=1):
        record = dataclasses.replace(original, seq=number, prev_hash=prev)
        if number == edited_seq:
            record = dataclasses.replace(record, payload=record.payload | {"note": "rewritten"})
        prev = record.compute_hash()
        await conn.execute(
            audit_log.insert().values(
                seq=record.seq,
                id=record.id,
                occurred_at=record.occurred_at,
                actor_type=record.actor.type,
                actor_id=record.actor.id,
                source_ip=record.actor.source_ip,
                user_agent=record.actor.user_agent,
                request_id=record.actor.request_id,
                action=record.action,
                target_type=record.target_type,
                target_id=record.target_id,
                payload=canonical_json(record.payload),
                prev_hash=record.prev_hash,
                hash=prev,
            )
        )
    await conn.execute(
        audit_head.update().where(audit_head.c.id == 1).values(seq=len(kept), hash=prev)
    )
    return (
        f"deleted every seal and {len(stored) - len(kept)} audit.sealed record(s), edited "
        f"record {edited_seq}, renumbered and rehashed the chain to {len(kept)} records"
    )


ATTACKS: dict[str, Callable[[AsyncConnection], Awaitable[str]]] = {
    "edit-field": edit_field,
    "break-json": break_json,
    "delete-middle": delete_middle,
    "delete-newest": delete_newest,
    "delete-newest-rewind-head": delete_newest_rewind_head,
    "delete-seals-rewrite-chain": delete_seals_rewrite_chain,
}


async def attack(url: str, case: str) -> str:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with engine.begin() as conn:
            return await _without_triggers(conn, ATTACKS[case])
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ATTACKS:
        print(f"usage: python -m tests.audit_drill {{{','.join(ATTACKS)}}}", file=sys.stderr)
        return 2
    print(asyncio.run(attack(Settings().database.url, argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
