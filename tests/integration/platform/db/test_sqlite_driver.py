"""SQLite's driver connection: a write transaction's statements run on the loop's thread,
its COMMIT on the connection's, and so do direct calls in any transaction; a write waiting
for another process's lock leaves the loop free; a refusal for a busy database is retried,
never a stale snapshot."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from tests.conftest import TEST_DB

from amanat.bootstrap import Container
from amanat.platform.db.sqlite_driver import HybridConnection, hybrid_creator

pytestmark = pytest.mark.skipif(TEST_DB != "sqlite", reason="SQLite's driver")


async def _traced(conn: object) -> tuple[list[tuple[str, int]], sqlite3.Connection]:
    driver = (await conn.get_raw_connection()).driver_connection  # type: ignore[attr-defined]
    assert isinstance(driver, HybridConnection)
    seen: list[tuple[str, int]] = []
    raw = driver._conn
    raw.set_trace_callback(lambda sql: seen.append((sql.split()[0].upper(), threading.get_ident())))
    return seen, raw


async def test_a_write_runs_inline_and_commits_on_the_connections_thread(
    container: Container,
) -> None:
    loop_thread = threading.get_ident()
    async with container.db.write() as conn:
        seen, raw = await _traced(conn)
        await conn.exec_driver_sql("SELECT 1")
    raw.set_trace_callback(None)
    async with container.db.read() as conn:
        read, raw = await _traced(conn)
        await conn.exec_driver_sql("SELECT 2")
    raw.set_trace_callback(None)
    wrote = [(sql, tid == loop_thread) for sql, tid in seen]
    assert ("SELECT", True) in wrote, "the write's statement ran on the loop's thread"
    assert ("COMMIT", False) in wrote, "COMMIT (its fsync) ran on the connection's thread"
    assert [(sql, tid == loop_thread) for sql, tid in read] == [
        ("SELECT", False),
        ("COMMIT", False),
    ]


async def test_waiting_for_another_process_lock_leaves_the_loop_free(
    container: Container,
) -> None:
    path = container.settings.database.url.split("///", 1)[1]
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(tick())
    # Why 1 s: a free loop ticks ~200 times meanwhile (a blocked one about once), so a
    # slow, shared machine still makes the 10; 0.2 s left it too little room.
    asyncio.get_running_loop().call_later(1.0, blocker.execute, "ROLLBACK")

    async with container.db.write() as conn:
        await conn.exec_driver_sql("SELECT 1")
    ticker.cancel()
    blocker.close()
    assert ticks >= 10, f"the loop ran only {ticks} times while the write waited"


@pytest.fixture
async def driver(tmp_path: Path) -> HybridConnection:
    create = hybrid_creator(str(tmp_path / "d.db"), {"isolation_level": None}, busy_timeout=2)
    connection = await create()
    yield connection  # type: ignore[misc]
    await connection.close()


def _busy(calls: list[int], times: int, code: int = 5) -> object:
    def statement() -> str:
        calls.append(1)
        if len(calls) <= times:
            exc = sqlite3.OperationalError("database is locked")
            exc.sqlite_errorcode = code
            raise exc
        return "done"

    return statement


@pytest.mark.parametrize("code", [5, 261], ids=["busy", "busy_recovery"])
async def test_busy_is_retried_inline_or_not(driver: HybridConnection, code: int) -> None:
    calls: list[int] = []
    for inline in (False, True):
        driver.inline = inline
        calls.clear()
        assert await driver._execute(_busy(calls, 3, code)) == "done"
        assert len(calls) == 4


async def test_a_stale_snapshot_is_never_retried(driver: HybridConnection) -> None:
    calls: list[int] = []
    with pytest.raises(sqlite3.OperationalError):
        await driver._execute(_busy(calls, 1, code=517))
    assert len(calls) == 1


async def test_busy_gives_up_after_the_busy_timeout(driver: HybridConnection) -> None:
    # Why 0.5 s: with pauses of at most 5 ms that is ~100 tries (well under the 1000 a
    # loop without pauses would pass), and a stalled scheduler still gets its 3.
    driver.busy_timeout = 0.5
    calls: list[int] = []
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await driver._execute(_busy(calls, 10_000))
    assert 3 <= len(calls) < 1000, "retried with pauses until the timeout, then refused"


async def test_other_errors_are_not_retried(driver: HybridConnection) -> None:
    driver.inline = True
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await driver._execute(driver._conn.execute, "SELECT * FROM nowhere")


async def test_only_commit_goes_to_the_thread_in_a_write(container: Container) -> None:
    async with container.db.write() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert isinstance(driver, HybridConnection)
        handed = driver._handed
        await conn.exec_driver_sql("CREATE TEMP TABLE t (n INTEGER)")
        await conn.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
        assert (await conn.exec_driver_sql("SELECT count(*) FROM t")).scalar() == 2
        assert driver._handed == handed, "statements, cursors and their closing ran inline"
    assert driver._handed == handed + 1, "COMMIT went to the connection's thread"
    assert not driver.inline


@pytest.mark.parametrize("way", ["inline", "direct"])
async def test_a_call_on_the_loop_waits_behind_a_call_still_on_the_thread(
    driver: HybridConnection, way: str
) -> None:
    release = threading.Event()
    slow = asyncio.create_task(driver._execute(release.wait, 5))
    await asyncio.sleep(0.01)
    slow.cancel()  # its caller gave up; the call itself still runs on the thread
    driver.inline = way == "inline"

    async def where_it_runs() -> int:
        if way == "inline":
            ident: int = await driver._execute(threading.get_ident)
            return ident
        return await driver.run_direct(lambda _db: threading.get_ident())

    where = asyncio.create_task(where_it_runs())
    await asyncio.sleep(0.01)
    assert not where.done(), "queued behind the running call, not run on the loop"
    release.set()
    assert await where != threading.get_ident()
    assert await where_it_runs() == threading.get_ident()


async def test_a_direct_call_runs_on_the_loop_outside_a_write_too(
    driver: HybridConnection,
) -> None:
    assert not driver.inline
    assert await driver.run_direct(lambda _db: threading.get_ident()) == threading.get_ident()
    rows = await driver.run_direct(lambda db: db.execute("SELECT 1, 'a'").fetchall())
    assert rows == [(1, "a")]
    assert driver._handed == driver._finished


async def test_a_direct_call_waits_out_a_busy_database(driver: HybridConnection) -> None:
    calls: list[int] = []
    busy = _busy(calls, 3)
    assert await driver.run_direct(lambda _db: busy()) == "done"  # type: ignore[operator]
    assert len(calls) == 4
