"""The server the bench starts: amanat's own ASGI app, served as ``amanat serve`` serves
it (uvicorn, the same options, plus a longer wait for a worker process to start: see
:func:`serve_options`), with one bench-only change that lives here and never in ``src/``:

* ``POST /bench/echo``: the bare-endpoint baseline. It parses the same JSON body with the
  same model as ``POST /v1/payments`` and returns it, through the same middleware, JSON
  response class and server, with no authentication, no database and no business logic.

Rate limits are not touched here: the bench partners carry a high-volume partner's own
quota, set through the product's service in bench/world.py.

Run as ``python -m bench.server`` with the ``AMANAT_*`` environment of the run.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import FastAPI

from amanat.asgi import app as amanat_app
from amanat.payments.routes.payments import PaymentIn
from amanat.platform.settings import Settings

ECHO_PATH = "/bench/echo"


async def echo(body: PaymentIn) -> dict[str, Any]:
    """The baseline: parse and validate the payout body, send it back."""
    return body.model_dump(mode="json")


def create() -> FastAPI:
    application = amanat_app()
    application.add_api_route(ECHO_PATH, echo, methods=["POST"], include_in_schema=False)
    return application


def serve_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options of `amanat serve` (src/amanat/cli.py), but the application:
    the bench server and the bare FastAPI baseline (bench/bare_app.py) both use them."""
    from amanat.platform.http.client_address import uvicorn_proxy_options
    from amanat.platform.http.header_limits import REQUEST_LINE_ALLOWANCE, HeaderLimitedProtocol

    return {
        "host": settings.http.host,
        "port": settings.http.port,
        "workers": int(os.environ.get("BENCH_API_WORKERS", "1")),
        "http": HeaderLimitedProtocol,
        "h11_max_incomplete_event_size": settings.http.max_header_bytes + REQUEST_LINE_ALLOWANCE,
        "access_log": False,
        "log_config": None,
        "server_header": False,
        # Not an option of `amanat serve`: uvicorn's supervisor kills a worker process that
        # has not finished starting (or misses a health ping) within 5 s, and on the shared
        # 2-core machine, loaded by other work, importing the app alone took 7 s (the
        # children died in a loop). Start-up only: it changes nothing of what is measured.
        "timeout_worker_healthcheck": 60,
        **uvicorn_proxy_options(settings),
    }


def main() -> None:
    from amanat.platform.http import listeners
    from amanat.platform.observability.logging import configure_logging

    settings = Settings()
    as_json = settings.observability.log_json
    configure_logging(
        json=True if as_json is None else as_json, level=settings.observability.log_level
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # As `amanat serve` runs it: several workers each on a socket of their own.
    listeners.run("bench.server:create", factory=True, **serve_options(settings))


if __name__ == "__main__":
    main()
