"""Everything a worker process runs: the outbox dispatcher, the webhook deliverer, the audit
sealer and the periodic jobs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from amanat.bootstrap import Container
from amanat.payments.jobs import Dispatcher
from amanat.platform.audit.sealer import AuditSealer
from amanat.platform.jobs.scheduler import Scheduler, default_jobs
from amanat.webhooks.jobs import WebhookDeliverer


async def run_worker(container: Container, stop: asyncio.Event) -> None:
    settings = container.settings.worker
    scheduler = Scheduler(
        container,
        default_jobs(
            sweep_every=timedelta(seconds=settings.sweep_every_seconds),
            stranded_after=timedelta(seconds=settings.stranded_after_seconds),
        ),
        tick_seconds=settings.tick_seconds,
    )
    sealer = AuditSealer(
        container,
        every_records=container.settings.audit.seal_every_records,
        every_seconds=container.settings.audit.seal_every_seconds,
    )
    dispatcher = Dispatcher(
        container,
        container.rail,
        callback_url=container.rail_callback_url,
        lease=timedelta(seconds=settings.job_lease_seconds),
    )
    deliverer = webhook_deliverer(container)
    await asyncio.gather(
        scheduler.run_forever(stop),
        sealer.run_forever(stop),
        dispatcher.run_forever(stop),
        deliverer.run_forever(stop),
    )


def webhook_deliverer(container: Container) -> WebhookDeliverer:
    hooks = container.settings.webhooks
    return WebhookDeliverer(
        container.webhooks,
        container.webhook_sender,
        container.clock,
        allow_private=not container.settings.is_production,
        concurrency=hooks.concurrency,
        per_endpoint=hooks.per_endpoint_concurrency,
    )
