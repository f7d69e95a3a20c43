"""Everything a worker process runs: the job runtime over the outbox, the periodic-job
scheduler, and the long-running workers each capability registered (the webhook
deliverer, the audit sealer...)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import timedelta

from amanat.kernel.clock import Clock
from amanat.platform.jobs.outcomes import JobHandler
from amanat.platform.jobs.runtime import JobRuntime
from amanat.platform.jobs.scheduler import Scheduler
from amanat.platform.registry import PeriodicJob, Worker
from amanat.platform.settings import WorkerSettings
from amanat.platform.unit_of_work.sql import SqlTransactions


def job_runtime(
    transactions: SqlTransactions,
    clock: Clock,
    handlers: Mapping[str, JobHandler],
    settings: WorkerSettings,
    *,
    owner: str | None = None,
) -> JobRuntime:
    return JobRuntime(
        transactions,
        clock,
        handlers,
        owner=owner,
        lease=timedelta(seconds=settings.job_lease_seconds),
    )


async def run_worker(
    transactions: SqlTransactions,
    clock: Clock,
    settings: WorkerSettings,
    *,
    handlers: Mapping[str, JobHandler],
    periodic: Sequence[PeriodicJob],
    workers: Sequence[Worker],
    stop: asyncio.Event,
) -> None:
    scheduler = Scheduler(transactions, clock, list(periodic), tick_seconds=settings.tick_seconds)
    runtime = job_runtime(transactions, clock, handlers, settings)
    await asyncio.gather(
        scheduler.run_forever(stop),
        runtime.run_forever(stop),
        *(worker.run_forever(stop) for worker in workers),
    )
