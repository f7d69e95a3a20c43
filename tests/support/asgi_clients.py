"""HTTP clients over one ASGI app, each its own browser (cookie jar), from a chosen source IP.

Tests of sessions, lockouts and rate limits need several clients at once, and tests of
per-address rules need them to come from different addresses; this is the one place that
opens and closes them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

ClientFrom = Callable[[str], httpx.AsyncClient]


@asynccontextmanager
async def asgi_clients(app: Any) -> AsyncIterator[ClientFrom]:
    """``make(ip)`` opens a client whose requests come from ``ip``; all close on exit."""
    opened: list[httpx.AsyncClient] = []

    def make(ip: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 40000))
        http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append(http)
        return http

    try:
        yield make
    finally:
        for http in opened:
            await http.aclose()
