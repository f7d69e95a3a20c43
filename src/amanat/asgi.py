"""The ASGI entry point ``amanat serve`` runs: the app, plus the embedded worker when
``AMANAT_WORKER__EMBEDDED`` is on (as ``make run`` sets it), so the sandbox is one process.
Production runs ``amanat worker`` separately and leaves this off.

Every server process runs :func:`app` (``amanat serve --workers N`` starts N fresh
processes, each importing this module), so logging is configured here, in each of them."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from amanat.app import BackgroundJob, create_app
from amanat.bootstrap import Container
from amanat.platform.db.malloc_arenas import cap_malloc_arenas
from amanat.platform.observability.logging import configure_logging_from, route_stderr_as_json
from amanat.platform.settings import Settings
from amanat.platform.startup_heap import freeze_startup_heap
from amanat.sandbox_rail.app import create_rail_app
from amanat.sandbox_rail.engine import RailSettings as SandboxRailSettings


async def embedded_worker(container: Container, stop: asyncio.Event) -> None:
    await container.run_worker(stop)


async def freeze_after_startup(_container: Container, _stop: asyncio.Event) -> None:
    """Runs once the app's start-up (the container's keys and caches) has finished
    (platform/startup_heap.py)."""
    freeze_startup_heap()


def sandbox_rail(settings: Settings) -> FastAPI:
    """The sandbox Raast rail, served at /sandbox-rail beside the API (never in production)."""
    return create_rail_app(
        SandboxRailSettings(
            callback_secret=settings.rail.secret.get_secret_value(),
            admin_token=settings.rail.admin_token.get_secret_value(),
            state_file=settings.rail.sandbox_state_file,
        )
    )


def app() -> FastAPI:
    # Before any database thread starts (see the module).
    cap_malloc_arenas()
    settings = Settings()
    # A server logs a line per request: written once per turn of the event loop.
    if configure_logging_from(settings, batch_lines=True):
        # A worker process's stray stderr text (a crash traceback printed by
        # multiprocessing) would otherwise be the one line that is neither JSON nor masked.
        route_stderr_as_json()
    background: list[BackgroundJob] = [freeze_after_startup]
    if settings.worker.embedded:
        background.append(embedded_worker)
    application = create_app(settings, background=background)
    if settings.rail.mount_sandbox and not settings.is_production:
        rail = sandbox_rail(settings)
        application.mount("/sandbox-rail", rail)

        async def close_rail(_: Container, stop: asyncio.Event) -> None:
            await stop.wait()
            await rail.state.rail_engine.aclose()

        background.append(close_rail)
    return application
