"""Periodic jobs run once per period across any number of workers, and failures retry."""

from __future__ import annotations

from datetime import timedelta

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.jobs.scheduler import Job, Scheduler


async def test_two_workers_share_one_schedule(container: Container, clock: FrozenClock) -> None:
    runs: list[str] = []

    async def job() -> str:
        runs.append("ran")
        return "ok"

    jobs = [Job("test.job", timedelta(minutes=10), job)]
    first = Scheduler(container.transactions, clock, jobs, owner="worker-a")
    second = Scheduler(container.transactions, clock, jobs, owner="worker-b")
    assert await first.run_due() == {"test.job": "ok"}
    assert await second.run_due() == {}
    assert await first.run_due() == {}, "not due again until its period has passed"
    clock.advance(minutes=10, seconds=1)
    assert await second.run_due() == {"test.job": "ok"}
    assert runs == ["ran", "ran"]


async def test_a_failing_job_is_retried_within_a_minute(
    container: Container, clock: FrozenClock
) -> None:
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("core banking timeout")
        return "recovered"

    jobs = [Job("flaky", timedelta(hours=24), flaky)]
    worker = Scheduler(container.transactions, clock, jobs, owner="w")
    assert await worker.run_due() == {"flaky": "failed: RuntimeError"}
    clock.advance(seconds=30)
    assert await worker.run_due() == {}
    clock.advance(seconds=31)
    assert await worker.run_due() == {"flaky": "recovered"}


async def test_default_jobs_run_and_leave_the_audit_log_intact(
    container: Container, clock: FrozenClock
) -> None:
    async with container.transactions.write() as tx:
        await audit.record(tx, clock, Actor(type="cli", id="t"), "test.event")
    scheduler = Scheduler(container.transactions, clock, container.periodic_jobs(), owner="w")
    results = await scheduler.run_due()
    assert "audit.seal" not in results  # the sealer runs on its own (workers/sealer.py)
    assert results["retention.run"]
    report = await container.audit_integrity.verify()
    assert report.ok, report.findings
