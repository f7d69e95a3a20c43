"""The API application of this build: every capability's routes, the container's life."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from amanat.bootstrap import Container, build_container, registry
from amanat.platform.http.app import make_api
from amanat.platform.settings import Settings

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
            await app.state.container.start()
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

    return make_api(
        settings,
        registry().routers,
        lifespan=lifespan,
        container=container,
        refusal_renderers=registry().refusal_renderers,
        upload_paths=registry().upload_paths,
    )
