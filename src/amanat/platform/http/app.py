"""The application factory: one FastAPI app with both API surfaces and the human pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from amanat import __version__
from amanat.auth.routes import authorize as oauth_authorize
from amanat.auth.routes import token as oauth_routes
from amanat.bootstrap import Container, build_container
from amanat.console.routes import pages as console_routes
from amanat.customers.routes import customers
from amanat.identity.routes import operator_api as operator_routes
from amanat.payments.routes import banks, payments
from amanat.payments.routes import rail_callbacks as rails
from amanat.platform.audit.domain import SYSTEM
from amanat.platform.http import health, pages
from amanat.platform.http.errors import configure_problem_base_url, install_error_handlers
from amanat.platform.http.middleware import ContractMiddleware
from amanat.platform.http.openapi import install_openapi
from amanat.platform.http.responses import JsonResponse
from amanat.platform.settings import Settings
from amanat.webhooks.routes import endpoints as webhooks
from amanat.webhooks.routes import events

BackgroundJob = Callable[[Container, asyncio.Event], Coroutine[Any, Any, None]]


def create_app(
    settings: Settings | None = None,
    *,
    container: Container | None = None,
    background: Sequence[BackgroundJob] = (),
) -> FastAPI:
    """The app; ``background`` jobs run for the app's lifetime and stop on shutdown."""
    settings = container.settings if container is not None else (settings or Settings())
    owns_container = container is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.container is None:
            app.state.container = build_container(settings)
            # A fresh database gets its signing and data keys before the first request.
            await app.state.container.signing_keys.ensure_active(SYSTEM)
            await app.state.container.protection.ensure_keys(SYSTEM)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(job(app.state.container, stop)) for job in background]
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                await task
            if owns_container and app.state.container is not None:
                await app.state.container.close()

    app = FastAPI(
        title="amanat API",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        default_response_class=JsonResponse,
    )
    app.state.container = container
    app.state.settings = settings
    configure_problem_base_url(settings.http.public_url)
    install_error_handlers(app)
    # FastAPI tries routes in order and each miss costs several microseconds, so the
    # partner API's busiest paths come first (bench/README.md, "Where the time goes").
    app.include_router(payments.router)
    app.include_router(oauth_routes.router)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.include_router(customers.router)
    app.include_router(banks.router)
    app.include_router(rails.router)
    app.include_router(health.router)
    app.include_router(oauth_authorize.router)
    app.include_router(operator_routes.public)
    app.include_router(operator_routes.router)
    app.include_router(pages.router)
    app.include_router(console_routes.router)
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"
    )
    install_openapi(app, version=__version__)
    app.add_middleware(
        ContractMiddleware,
        max_body_bytes=settings.http.max_body_bytes,
        max_header_bytes=settings.http.max_header_bytes,
        max_header_count=settings.http.max_header_count,
    )
    return app
