"""Fixtures shared by the API tests that need several independent clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from tests.support.operators import NewClient

from amanat.api.app import create_app
from amanat.bootstrap import Container


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container=container)


@pytest.fixture
async def new_client(app: FastAPI) -> AsyncIterator[NewClient]:
    """A fresh cookie jar per operator: each is its own browser."""
    opened: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
        )
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()
