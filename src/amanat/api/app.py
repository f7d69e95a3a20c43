"""The application factory: one FastAPI app with both API surfaces and the human pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from amanat import __version__
from amanat.api import health, pages
from amanat.api.errors import configure_problem_base_url, install_error_handlers
from amanat.api.middleware import ContractMiddleware
from amanat.api.oauth import authorize as oauth_authorize
from amanat.api.oauth import routes as oauth_routes
from amanat.api.openapi import install_openapi
from amanat.api.operator import routes as operator_routes
from amanat.api.responses import JsonResponse
from amanat.api.v1 import banks
from amanat.bootstrap import Container, build_container
from amanat.settings import Settings


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    settings = container.settings if container is not None else (settings or Settings())
    owns_container = container is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.container is None:
            app.state.container = build_container(settings)
        try:
            yield
        finally:
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
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(oauth_routes.router)
    app.include_router(oauth_authorize.router)
    app.include_router(operator_routes.public)
    app.include_router(operator_routes.router)
    app.include_router(banks.router)
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"
    )
    install_openapi(app, version=__version__)
    app.add_middleware(ContractMiddleware, max_body_bytes=settings.http.max_body_bytes)
    return app
