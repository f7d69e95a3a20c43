"""Baseline (b'): a bare FastAPI app, for the "whole middleware stack" target.

One route, ``POST /bench/echo``, parsing the payout body with the same pydantic model as
``POST /v1/payments`` (and as bench/server.py's echo) and returning it, served under the
same uvicorn options as the bench server (``serve_options``: process count, HTTP protocol,
header limits, no access log), with FastAPI's defaults and nothing of amanat's: no
middleware, no logging per request, no container. The bench loads it with the same wrk
script and bodies as the echo baseline, so echo / bare is what amanat's stack keeps of a
bare framework's throughput.

Run as ``python -m bench.bare_app`` with the ``AMANAT_*`` environment of the run (only the
address and the HTTP settings are read).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from amanat.payments.routes.payments import PaymentIn
from amanat.platform.settings import Settings
from bench.server import ECHO_PATH, serve_options


async def echo(body: PaymentIn) -> dict[str, Any]:
    return body.model_dump(mode="json")


async def ready() -> dict[str, str]:
    return {"status": "ok"}


def create() -> FastAPI:
    application = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    application.add_api_route(ECHO_PATH, echo, methods=["POST"])
    application.add_api_route("/readyz", ready, methods=["GET"])
    return application


def main() -> None:
    import uvicorn

    uvicorn.run("bench.bare_app:create", factory=True, **serve_options(Settings()))


if __name__ == "__main__":
    main()
