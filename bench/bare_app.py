"""Baselines (b') and (b''): a bare FastAPI app, for the "whole middleware stack" target
and, on PostgreSQL, as a reference for "retrieve by id".

One route, ``POST /bench/echo``, parsing the payout body with the same pydantic model as
``POST /v1/payments`` (and as bench/server.py's echo) and returning it, served under the
same uvicorn options and listeners as the bench server (``serve_options``: process count,
HTTP protocol, header limits, no access log), with FastAPI's defaults and nothing of
amanat's: no middleware, no logging per request, no container. The bench loads it with the same wrk
script and bodies as the echo baseline, so echo / bare is what amanat's stack keeps of a
bare framework's throughput.

On PostgreSQL it has a second route, ``GET /v1/payments/{payment_id}``: the payment's
row read by id through an asyncpg pool (one ``fetchrow`` of ``SELECT *``, the statement
prepared once per connection, no reset query at release) and returned as FastAPI returns
a dict. No token, no rate limit, no log line, no decryption: what a read by id costs a
plain FastAPI app on asyncpg on this machine, nothing of the product's. The bench loads
it with the retrieve scenario's wrk script and ids: a reference for retrieve and replay
(its CPU per request above all; see bench/README.md, "Baselines").

Run as ``python -m bench.bare_app`` with the ``AMANAT_*`` environment of the run (only the
address and the HTTP settings are read).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, HTTPException, Request
from sqlalchemy.engine import make_url

from amanat.payments.routes.payments import PaymentIn
from amanat.platform.settings import Settings
from bench.server import ECHO_PATH, serve_options


async def echo(body: PaymentIn) -> dict[str, Any]:
    return body.model_dump(mode="json")


async def ready() -> dict[str, str]:
    return {"status": "ok"}


READ_PATH = "/v1/payments/{payment_id}"


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """One SELECT in autocommit leaves no session state behind, so the pool's default reset
    (a round trip of RESET ALL, UNLISTEN and the like at every release) is not part of the
    reference: the product's pool does not send one either."""


async def read_payment(payment_id: str, request: Request) -> dict[str, Any]:
    pool = await _pool(request.app)
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM payments WHERE id = $1", payment_id)
    if row is None:
        raise HTTPException(status_code=404)
    return dict(row)


async def _pool(application: FastAPI) -> asyncpg.Pool:
    """The read's pool, opened by the first read: the echo baseline (b') runs first, in
    the same process, and holds no connection and no asyncpg state."""
    state = application.state
    if state.pool is not None:
        return state.pool  # type: ignore[no-any-return]
    async with state.opening:
        if state.pool is None:
            size = state.settings.database.pool_size
            url = make_url(state.settings.database.url).set(drivername="postgresql", query={})
            state.pool = await asyncpg.create_pool(
                url.render_as_string(hide_password=False),
                min_size=size,
                max_size=size,
                reset=_nothing_to_reset,
            )
    pool: asyncpg.Pool = state.pool
    return pool


def create() -> FastAPI:
    settings = Settings()
    on_postgres = make_url(settings.database.url).get_backend_name() == "postgresql"

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        application.state.settings = settings
        application.state.pool = None
        application.state.opening = asyncio.Lock()
        try:
            yield
        finally:
            if application.state.pool is not None:
                await application.state.pool.close()

    application = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
    application.add_api_route(ECHO_PATH, echo, methods=["POST"])
    application.add_api_route("/readyz", ready, methods=["GET"])
    if on_postgres:
        application.add_api_route(READ_PATH, read_payment, methods=["GET"])
    return application


def main() -> None:
    # The listeners of the bench server (one socket per worker), so the ratio compares
    # the applications, not how connections were spread over the processes.
    from amanat.platform.http import listeners

    listeners.run("bench.bare_app:create", factory=True, **serve_options(Settings()))


if __name__ == "__main__":
    main()
