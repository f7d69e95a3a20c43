"""The ASGI entry point ``amanat serve`` runs: the app, plus the embedded worker when
``AMANAT_WORKER__EMBEDDED`` is on (as ``make run`` sets it), so the sandbox is one process.
Production runs ``amanat worker`` separately and leaves this off."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from amanat.api.app import BackgroundJob, create_app
from amanat.bootstrap import Container
from amanat.settings import Settings
from amanat.workers.scheduler import Scheduler, default_jobs


async def embedded_worker(container: Container, stop: asyncio.Event) -> None:
    settings = container.settings.worker
    jobs = default_jobs(timedelta(minutes=settings.audit_seal_minutes))
    await Scheduler(container, jobs, tick_seconds=settings.tick_seconds).run_forever(stop)


def app() -> FastAPI:
    settings = Settings()
    background: list[BackgroundJob] = [embedded_worker] if settings.worker.embedded else []
    return create_app(settings, background=background)
