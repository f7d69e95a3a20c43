"""The FastAPI application over the routers the capabilities registered.

:func:`make_api` knows nothing of any capability: the composition root
(:mod:`amanat.app`) hands it the routers, in order, and the lifespan that builds and
closes the process's container.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig

from amanat import __version__
from amanat.platform.http import health, pages
from amanat.platform.http.errors import configure_problem_base_url, install_error_handlers
from amanat.platform.http.lean_routes import LeanRoutes
from amanat.platform.http.middleware import ContractMiddleware
from amanat.platform.http.openapi import install_openapi
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.route_index import index_included_routers
from amanat.platform.settings import Settings

# FastAPI's own OpenTelemetry stays off. It would record, under any provider an operator
# installs, URL paths and query values, validation errors with the values refused and
# exception messages, none of them through amanat's masking (a CNIC, an IBAN or a token
# could leave in a span or a log record). Left on, it also asks on every request whether
# a provider is configured: about 10 us of CPU per request of the echo endpoint, run in
# process (bench/README.md, fifteenth round).
FRAMEWORK_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def make_api(
    settings: Settings,
    routers: Sequence[APIRouter],
    *,
    lifespan: Any,
    container: object | None,
    refusal_renderers: Sequence[tuple[str, Any]] = (),
    upload_paths: Sequence[str] = (),
) -> FastAPI:
    app = FastAPI(
        title="amanat API",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        default_response_class=JsonResponse,
        telemetry=FRAMEWORK_TELEMETRY,
    )
    app.state.container = container
    app.state.settings = settings
    configure_problem_base_url(settings.http.public_url)
    install_error_handlers(app, refusal_renderers)
    for router in routers:
        app.include_router(router)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"
    )
    install_openapi(app, version=__version__)
    index_included_routers(app)
    # Inside the contract middleware (ids, limits, the request log), outside FastAPI's own.
    app.add_middleware(LeanRoutes, fastapi_app=app)
    app.add_middleware(
        ContractMiddleware,
        max_body_bytes=settings.http.max_body_bytes,
        max_header_bytes=settings.http.max_header_bytes,
        max_header_count=settings.http.max_header_count,
        refusal_renderers=refusal_renderers,
        # A surface with its own error shape takes JSON bodies only, like /v1.
        json_only_prefixes=("/v1/", *(prefix for prefix, _ in refusal_renderers)),
        upload_paths=upload_paths,
        max_upload_bytes=settings.http.max_upload_bytes,
    )
    return app
