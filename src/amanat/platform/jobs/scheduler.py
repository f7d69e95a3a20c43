"""A periodic-job scheduler that is safe to run on many workers at once.

Each job holds a lease row; a worker runs a job only when it wins the lease, and the lease
stays taken until the job's next due time, so the schedule is shared by the whole fleet:
adding workers never runs a job twice. A failed job is retried after at most a minute.
Each capability brings its periodic jobs through the registry (``registry.add_periodic``).
"""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta

import structlog

from amanat.kernel.clock import Clock
from amanat.kernel.waiting import wait_for_stop
from amanat.platform.db.ports import TransactionFactory
from amanat.platform.jobs.ports import JobsTx
from amanat.platform.registry import PeriodicJob

log = structlog.get_logger("amanat.worker")
RETRY_FAILED_AFTER = timedelta(seconds=60)
Job = PeriodicJob


class Scheduler:
    def __init__(
        self,
        transactions: TransactionFactory[JobsTx],
        clock: Clock,
        jobs: list[PeriodicJob],
        *,
        owner: str | None = None,
        tick_seconds: float = 5.0,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._jobs = jobs
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._tick = tick_seconds

    async def run_due(self) -> dict[str, str]:
        """Run every job whose lease this worker wins now; returns name -> outcome."""
        results: dict[str, str] = {}
        clock = self._clock
        for job in self._jobs:
            now = clock.now()
            async with self._tx.write() as tx:
                won = await tx.leases.acquire(job.name, self._owner, now, now + job.every)
            if not won:
                continue
            next_free = now + job.every
            try:
                outcome = await job.run()
                log.info("job_finished", job=job.name, outcome=outcome)
            except Exception as exc:
                outcome = f"failed: {type(exc).__name__}"
                next_free = clock.now() + min(job.every, RETRY_FAILED_AFTER)
                log.exception("job_failed", job=job.name)
            async with self._tx.write() as tx:
                await tx.leases.finish(job.name, self._owner, clock.now(), next_free, outcome)
            results[job.name] = outcome
        return results

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("worker_started", owner=self._owner, jobs=[j.name for j in self._jobs])
        while not stop.is_set():
            try:
                await self.run_due()
            except Exception:
                log.exception("scheduler_tick_failed")
            await wait_for_stop(stop, self._tick)
        log.info("worker_stopped", owner=self._owner)
