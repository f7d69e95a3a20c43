"""A periodic-job scheduler that is safe to run on many workers at once.

Each job holds a lease row; a worker runs a job only when it wins the lease, and the lease
stays taken until the job's next due time, so the schedule is shared by the whole fleet:
adding workers never runs a job twice. A failed job is retried after at most a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from amanat.bootstrap import Container
from amanat.platform.audit.domain import Actor
from amanat.platform.jobs.leases import SqlLeaseRepository

log = structlog.get_logger("amanat.worker")
WORKER = Actor(type="system", id="worker")
RETRY_FAILED_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Container], Awaitable[str]]


async def _retention(container: Container) -> str:
    outcomes = await container.retention.run(WORKER, dry_run=False)
    return ", ".join(f"{o.data_class}={o.done}" for o in outcomes if o.done) or "nothing due"


async def _retire_signing_keys(container: Container) -> str:
    retired = await container.signing_keys.retire_expired(WORKER)
    if retired:
        await container.key_ring.refresh(force=True)
    return f"retired {retired}" if retired else "none due"


async def _reencrypt(container: Container) -> str:
    moved = await container.protection.reencrypt(WORKER)
    retired = await container.protection.retire_unused(WORKER)
    return f"moved {sum(moved.values())}, retired {retired}"


def _sweep_payments(stranded_after: timedelta) -> Callable[[Container], Awaitable[str]]:
    async def sweep(container: Container) -> str:
        queued = await container.payments.requeue_stranded(stranded_after)
        if any(queued.values()):
            log.warning("stranded_payments_requeued", **queued)
        return ", ".join(f"{kind}={n}" for kind, n in queued.items() if n) or "none stranded"

    return sweep


async def _drop_expired_held(container: Container) -> str:
    dropped = await container.webhooks.drop_expired_held()
    return f"dropped {dropped} held deliveries" if dropped else "none held too long"


def default_jobs(
    *,
    sweep_every: timedelta = timedelta(minutes=1),
    stranded_after: timedelta = timedelta(minutes=5),
) -> list[Job]:
    # The audit seal runs far more often than a job: see workers/sealer.py.
    return [
        Job("payments.sweep", sweep_every, _sweep_payments(stranded_after)),
        Job("webhooks.drop_expired_held", timedelta(hours=1), _drop_expired_held),
        Job("signing_keys.retire", timedelta(minutes=5), _retire_signing_keys),
        Job("data_keys.reencrypt", timedelta(minutes=15), _reencrypt),
        Job("retention.run", timedelta(hours=24), _retention),
    ]


class Scheduler:
    def __init__(
        self,
        container: Container,
        jobs: list[Job],
        *,
        owner: str | None = None,
        tick_seconds: float = 5.0,
    ) -> None:
        self._container = container
        self._jobs = jobs
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._tick = tick_seconds

    async def run_due(self) -> dict[str, str]:
        """Run every job whose lease this worker wins now; returns name -> outcome."""
        results: dict[str, str] = {}
        clock = self._container.clock
        for job in self._jobs:
            now = clock.now()
            async with self._container.db.write() as conn:
                won = await SqlLeaseRepository(conn).acquire(
                    job.name, self._owner, now, now + job.every
                )
            if not won:
                continue
            next_free = now + job.every
            try:
                outcome = await job.run(self._container)
                log.info("job_finished", job=job.name, outcome=outcome)
            except Exception as exc:
                outcome = f"failed: {type(exc).__name__}"
                next_free = clock.now() + min(job.every, RETRY_FAILED_AFTER)
                log.exception("job_failed", job=job.name)
            async with self._container.db.write() as conn:
                await SqlLeaseRepository(conn).finish(
                    job.name, self._owner, clock.now(), next_free, outcome
                )
            results[job.name] = outcome
        return results

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("worker_started", owner=self._owner, jobs=[j.name for j in self._jobs])
        while not stop.is_set():
            try:
                await self.run_due()
            except Exception:
                log.exception("scheduler_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._tick)
        log.info("worker_stopped", owner=self._owner)
