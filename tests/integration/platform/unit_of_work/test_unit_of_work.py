"""A unit of work commits everything or nothing; SQLite runs with the safe pragmas."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB

from amanat.bootstrap import Container
from amanat.platform.audit.tables import audit_log
from amanat.platform.db.sqlite_driver import HybridConnection


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
        cache = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar()
        driver = (await conn.get_raw_connection()).driver_connection
    assert journal == "wal"
    assert cache == -256, "256 KiB of page cache per pooled connection"
    assert fks == 1
    assert sync == 2  # FULL
    # No busy handler in SQLite: the driver waits for the lock without blocking the loop.
    assert busy == 0
    assert isinstance(driver, HybridConnection)
    assert driver.busy_timeout * 1000 == container.settings.database.sqlite_busy_timeout_ms


async def test_a_lookup_runs_outside_any_transaction(container: Container) -> None:
    """No BEGIN (the point of a lookup), and the pooled connection comes back clean: the
    next write and read on it behave as usual."""
    async with container.db.write() as conn:
        await conn.execute(audit_log.insert(), _row(1))
    statements: list[str] = []

    def remember(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.strip().split()[0].upper())

    engine = container.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        for _ in range(3):  # every pooled connection, more than once
            async with container.db.lookup() as conn:
                count = (
                    await conn.execute(sa.select(sa.func.count()).select_from(audit_log))
                ).scalar()
            assert count == 1
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)
    assert statements == ["SELECT"] * 3
    if TEST_DB == "sqlite":
        async with container.db.lookup() as conn:
            raw = await conn.get_raw_connection()
            assert not raw.driver_connection._conn.in_transaction  # type: ignore[union-attr]
    else:
        # Autocommit: each statement is a transaction of its own. After a BEGIN they share one.
        txid = sa.text("SELECT txid_current()")
        async with container.db.lookup() as conn:
            first, second = [(await conn.execute(txid)).scalar() for _ in range(2)]
        assert first != second
        async with container.db.read() as conn:
            first, second = [(await conn.execute(txid)).scalar() for _ in range(2)]
        assert first == second
    with pytest.raises(RuntimeError):
        async with container.db.write() as conn:
            await conn.execute(audit_log.insert(), _row(2))
            raise RuntimeError("rolled back on a connection a lookup used")
    async with container.db.write() as conn:
        await conn.execute(audit_log.insert(), _row(3))
    async with container.db.read() as conn:
        seqs = (await conn.execute(sa.select(audit_log.c.seq))).scalars().all()
    assert sorted(seqs) == [1, 3]


async def test_a_lookup_refuses_audit_records(container: Container) -> None:
    from amanat.platform.audit import recorder as audit
    from amanat.platform.audit.domain import SYSTEM

    with pytest.raises(RuntimeError, match="audit records need a transaction"):
        async with container.transactions.lookup() as tx:
            await audit.record(tx, container.clock, SYSTEM, "test.action")
    async with container.db.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar()
    assert count == 0


async def test_a_full_pool_answers_unavailable_and_then_recovers(container: Container) -> None:
    """Every connection busy past the pool timeout is a retryable 503, not a 500."""
    from amanat.kernel.errors import Unavailable
    from amanat.platform.db.database import Database
    from amanat.platform.db.engine import create_engine

    settings = container.settings.database.model_copy(
        update={"pool_size": 1, "max_overflow": 0, "pool_timeout_seconds": 0.2}
    )
    db = Database(create_engine(settings))
    try:
        async with db.read() as held:
            await held.execute(sa.select(1))
            for opening in (db.read, db.lookup, db.write):
                with pytest.raises(Unavailable):
                    async with opening():
                        pass
        async with db.lookup() as conn:  # the connection came back: served again
            assert (await conn.execute(sa.select(1))).scalar() == 1
    finally:
        await db.dispose()


def test_the_pool_is_fixed_by_default() -> None:
    """No overflow: an overflow connection is closed as soon as the pool has room, and
    under a fluctuating load that reconnected many times a second (docs/configuration.md)."""
    from amanat.platform.settings import DatabaseSettings

    defaults = DatabaseSettings()
    assert defaults.max_overflow == 0
    assert defaults.pool_size >= 20
