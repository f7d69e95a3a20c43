"""Fixtures shared by the API tests that need several independent clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from tests.support.asgi_clients import ClientFrom, asgi_clients
from tests.support.operators import NewClient

from amanat.app import create_app
from amanat.bootstrap import Container


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container=container)


@pytest.fixture
async def new_client(app: FastAPI) -> AsyncIterator[NewClient]:
    """A fresh cookie jar per operator: each is its own browser."""
    async with asgi_clients(app) as make:
        yield lambda: make("127.0.0.1")


@pytest.fixture
async def from_address(app: FastAPI) -> AsyncIterator[ClientFrom]:
    """A browser whose requests come from the given source IP."""
    async with asgi_clients(app) as make:
        yield make
