"""The job runtime: claims outbox jobs, hands each to the handler of its kind, records the
outcome.

Jobs are claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) or compare-and-set (SQLite),
so any number of workers never take the same job, and each claim holds a lease: a worker
that dies mid-job leaves it to be claimed again when the lease ends. The runtime owns what
every kind of job shares (claiming, leases, concurrency, jitter, crash handling, metrics);
a capability registers a handler per kind (``registry.add_job``) that only decides.

A handler's :class:`Done` may carry a state change: it runs in the same transaction that
queues the follow-up job and finishes this one, so a crash at any moment leaves either the
old job (run again; handlers are idempotent) or the new one, never a change with no job.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from amanat.kernel.clock import Clock
from amanat.kernel.errors import Unavailable
from amanat.kernel.waiting import wait_for_stop
from amanat.platform.jobs.outcomes import Dead, Done, FollowUp, JobHandler, JobOutcome, RetryAfter
from amanat.platform.jobs.ports import JobsTx, OutboxJob
from amanat.platform.observability.metrics import OUTBOX_JOBS, OUTBOX_PENDING

log = structlog.get_logger("amanat.jobs")

LEASE = timedelta(seconds=60)
CRASH_RETRY = timedelta(seconds=30)
# The database was too busy to record a job's outcome (SQLite's one write lock held by a
# stream of payouts): nothing was recorded, so the job runs again soon, not as a crash.
CONTENDED_RETRY = timedelta(seconds=2)
UNKNOWN_KIND_RETRY = timedelta(hours=1)


class JobTransactions(Protocol):
    def write(self) -> AbstractAsyncContextManager[JobsTx]: ...
    def read(self) -> AbstractAsyncContextManager[JobsTx]: ...
    def atomic(self) -> AbstractAsyncContextManager[JobsTx]:
        """One transaction that the use cases run inside it join."""
        ...


def jittered(delay: timedelta) -> timedelta:
    return delay * random.uniform(0.8, 1.2)


class JobRuntime:
    def __init__(
        self,
        transactions: JobTransactions,
        clock: Clock,
        handlers: Mapping[str, JobHandler],
        *,
        owner: str | None = None,
        batch: int = 20,
        concurrency: int = 8,
        lease: timedelta = LEASE,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._handlers = dict(handlers)
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:jobs"
        self._batch = batch
        self._lease = lease
        self._semaphore = asyncio.Semaphore(concurrency)

    @property
    def _now(self) -> datetime:
        return self._clock.now()

    async def run_once(self) -> int:
        async with self._tx.write() as tx:
            jobs = await tx.outbox.claim(
                self._owner, self._now, self._now + self._lease, self._batch
            )
        if jobs:
            await asyncio.gather(*(self._guarded(job) for job in jobs))
        return len(jobs)

    async def _guarded(self, job: OutboxJob) -> None:
        async with self._semaphore:
            try:
                outcome = await self._run(job)
                await self._record(job, outcome)
            except Unavailable as busy:
                log.warning("outbox_job_contended", job=job.id, kind=job.kind, error=str(busy))
                OUTBOX_JOBS.labels(job.kind, "contended").inc()
                await self._retry_or_leave(job, CONTENDED_RETRY, "contended: database busy")
            except Exception as exc:
                log.exception("outbox_job_crashed", job=job.id, kind=job.kind)
                OUTBOX_JOBS.labels(job.kind, "crashed").inc()
                await self._retry_or_leave(job, CRASH_RETRY, f"crash: {type(exc).__name__}")

    async def _retry_or_leave(self, job: OutboxJob, delay: timedelta, error: str) -> None:
        """Schedule the job again; when even that finds the database busy, its lease
        (``LEASE``) ends and any worker claims it again."""
        try:
            await self._retry(job, delay, error)
        except Unavailable:
            log.warning("outbox_job_left_to_its_lease", job=job.id, kind=job.kind)

    async def _run(self, job: OutboxJob) -> JobOutcome:
        handler = self._handlers.get(job.kind)
        if handler is None:
            return Dead(f"unknown job kind {job.kind}")
        return await handler(job)

    async def _record(self, job: OutboxJob, outcome: JobOutcome) -> None:
        if isinstance(outcome, Done):
            OUTBOX_JOBS.labels(job.kind, "done").inc()
            await self._finish(job, outcome.then, outcome)
        elif isinstance(outcome, RetryAfter):
            OUTBOX_JOBS.labels(job.kind, "retry").inc()
            await self._retry(job, outcome.delay, outcome.reason)
        else:
            OUTBOX_JOBS.labels(job.kind, "dead").inc()
            log.warning("outbox_job_dead", job=job.id, kind=job.kind, reason=outcome.reason)
            await self._retry(job, UNKNOWN_KIND_RETRY, outcome.reason, dead=True)

    async def _finish(self, job: OutboxJob, then: FollowUp | None, done: Done) -> None:
        """Finish ``job``: its change, its follow-up and its finish commit together."""
        opened = self._tx.atomic() if done.change is not None else self._tx.write()
        async with opened as tx:
            if done.change is not None:
                await done.change()
            if then is not None:
                await tx.outbox.enqueue(
                    then.kind, job.subject_id, then.payload, self._now + then.after
                )
            await tx.outbox.finish(job.id, self._owner, self._now)

    async def _retry(
        self, job: OutboxJob, delay: timedelta, error: str, *, dead: bool = False
    ) -> None:
        async with self._tx.write() as tx:
            await tx.outbox.retry(
                job.id, self._owner, self._now + jittered(delay), error, self._now, dead=dead
            )

    async def observe(self) -> None:
        async with self._tx.read() as tx:
            OUTBOX_PENDING.set(await tx.outbox.pending_count())

    async def run_forever(self, stop: asyncio.Event, *, idle_seconds: float = 0.5) -> None:
        log.info("job_runtime_started", owner=self._owner, kinds=sorted(self._handlers))
        while not stop.is_set():
            try:
                worked = await self.run_once()
                await self.observe()
            except Unavailable as busy:
                # The database is busy or away (a restart): a warning per tick, no trace.
                log.warning("job_runtime_tick_deferred", error=str(busy))
                worked = 0
            except Exception:
                log.exception("job_runtime_tick_failed")
                worked = 0
            if not worked:
                await wait_for_stop(stop, idle_seconds)
        log.info("job_runtime_stopped", owner=self._owner)
