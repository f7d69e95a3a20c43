"""A unit of work commits everything or nothing; SQLite runs with the safe pragmas."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB

from amanat.adapters.db.tables import audit_log
from amanat.bootstrap import Container


def _row(seq: int) -> dict[str, object]:
    from datetime import UTC, datetime

    return {
        "seq": seq,
        "id": f"aud_{seq}",
        "occurred_at": datetime.now(UTC),
        "actor_type": "system",
        "actor_id": "test",
        "action": "test.action",
        "payload": "{}",
        "prev_hash": "0" * 64,
        "hash": "1" * 64,
    }


async def test_exception_rolls_back_the_whole_transaction(container: Container) -> None:
    with pytest.raises(RuntimeError):
        async with container.db.write() as conn:
            await conn.execute(audit_log.insert().values(**_row(1)))
            raise RuntimeError("business rule failed after the first write")
    async with container.db.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar()
    assert count == 0


async def test_normal_exit_commits(container: Container) -> None:
    async with container.db.write() as conn:
        await conn.execute(audit_log.insert().values(**_row(1)))
    async with container.db.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar()
    assert count == 1


@pytest.mark.skipif(TEST_DB != "sqlite", reason="SQLite pragmas")
async def test_sqlite_connections_use_wal_fk_and_full_sync(container: Container) -> None:
    async with container.db.read() as conn:
        journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
        busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    assert journal == "wal"
    assert fks == 1
    assert sync == 2  # FULL
    assert busy == container.settings.database.sqlite_busy_timeout_ms
