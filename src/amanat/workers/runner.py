"""Everything a worker process runs: the outbox dispatcher and the periodic jobs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from amanat.bootstrap import Container
from amanat.workers.dispatcher import Dispatcher
from amanat.workers.scheduler import Scheduler, default_jobs


async def run_worker(container: Container, stop: asyncio.Event) -> None:
    settings = container.settings.worker
    scheduler = Scheduler(
        container,
        default_jobs(timedelta(minutes=settings.audit_seal_minutes)),
        tick_seconds=settings.tick_seconds,
    )
    dispatcher = Dispatcher(container, container.rail, callback_url=container.rail_callback_url)
    await asyncio.gather(scheduler.run_forever(stop), dispatcher.run_forever(stop))
