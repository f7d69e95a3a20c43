"""The server the bench starts: amanat's own ASGI app, served exactly as ``amanat serve``
serves it (uvicorn, same options), with two bench-only changes that live here and never
in ``src/``:

* ``POST /bench/echo``: the bare-endpoint baseline. It parses the same JSON body with the
  same model as ``POST /v1/payments`` and returns it, through the same middleware, JSON
  response class and server, with no authentication, no database and no business logic.
* Rate-limit quotas raised to a billion per window (unless ``BENCH_PRODUCT_RATE_LIMITS=1``).
  The limiter still counts every request in the same storage (the same cost per request);
  only the refusals go, since a quota of 120 writes a minute per client would turn a
  throughput benchmark into a rate-limit test.

Run as ``python -m bench.server`` with the ``AMANAT_*`` environment of the run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from amanat.api.ratelimit import DEFAULT_POLICIES, Policy, RateLimiter
from amanat.api.v1.payments import PaymentIn
from amanat.asgi import app as amanat_app
from amanat.settings import Settings

ECHO_PATH = "/bench/echo"
BENCH_QUOTA = 1_000_000_000


async def echo(body: PaymentIn) -> dict[str, Any]:
    """The baseline: parse and validate the payout body, send it back."""
    return body.model_dump(mode="json")


def _raise_quotas(application: FastAPI) -> None:
    inner = application.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            container = app.state.container
            product = container.rate_limiter
            container.rate_limiter = RateLimiter(
                container.settings.redis_url,
                {
                    name: Policy(name, BENCH_QUOTA, policy.window_seconds)
                    for name, policy in DEFAULT_POLICIES.items()
                },
            )
            await product.close()
            yield state

    application.router.lifespan_context = lifespan


def create() -> FastAPI:
    application = amanat_app()
    application.add_api_route(ECHO_PATH, echo, methods=["POST"], include_in_schema=False)
    if os.environ.get("BENCH_PRODUCT_RATE_LIMITS", "") not in {"1", "true", "yes"}:
        _raise_quotas(application)
    return application


def main() -> None:
    import uvicorn

    from amanat.observability.logging import configure_logging

    settings = Settings()
    as_json = settings.observability.log_json
    configure_logging(
        json=True if as_json is None else as_json, level=settings.observability.log_level
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    workers = int(os.environ.get("BENCH_API_WORKERS", "1"))
    # The options of `amanat serve` (src/amanat/cli.py), with this module's factory.
    uvicorn.run(
        "bench.server:create",
        factory=True,
        host=settings.http.host,
        port=settings.http.port,
        workers=workers,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )


if __name__ == "__main__":
    main()
