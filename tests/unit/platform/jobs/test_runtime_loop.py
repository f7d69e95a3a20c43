"""The outbox runtime's loop while the database is away (a restart): a warning per tick
without a trace, and it waits its idle interval instead of spinning."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from amanat.kernel.errors import Unavailable
from amanat.payments.fakes import fake_payments
from amanat.platform.jobs.runtime import JobRuntime


async def test_a_database_away_is_a_warning_per_tick_and_the_loop_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = fake_payments()
    runtime = JobRuntime(fakes.transactions, fakes.clock, {}, owner="test")
    ticks = 0

    async def away() -> int:
        nonlocal ticks
        ticks += 1
        await asyncio.sleep(0)  # as a real database call would: a spinning loop is counted
        if ticks == 1:
            return 1  # a tick that worked: the next one starts at once
        raise Unavailable("The connection to the database was lost; retry in a moment.")

    monkeypatch.setattr(runtime, "run_once", away)
    stop = asyncio.Event()
    with capture_logs() as logs:
        loop = asyncio.ensure_future(runtime.run_forever(stop, idle_seconds=0.05))
        await asyncio.sleep(0.3)
        stop.set()
        async with asyncio.timeout(5):
            await loop
    deferred = [entry for entry in logs if entry["event"] == "job_runtime_tick_deferred"]
    assert 2 <= len(deferred) <= 10, f"{len(deferred)} ticks in 0.3 s: it spun"
    assert all(entry["log_level"] == "warning" and "exc_info" not in entry for entry in deferred)
    assert not [entry for entry in logs if entry["event"] == "job_runtime_tick_failed"]
