"""A write that cannot get SQLite's lock within the busy timeout is a 503 to retry,
never a 500, and leaves nothing behind."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from tests.conftest import TEST_DB, wipe
from tests.support.oauth import fetch_token, make_client

from amanat.app import create_app
from amanat.bootstrap import build_container
from amanat.platform.settings import Settings

pytestmark = pytest.mark.skipif(TEST_DB != "sqlite", reason="SQLite's single write lock")

BODY = {"name": "Ayesha Khan", "iban": "PK36SCBL0000001123456702"}


async def test_a_write_lock_timeout_is_a_503_with_retry_after(settings: Settings) -> None:
    quick = settings.model_copy(
        update={"database": settings.database.model_copy(update={"sqlite_busy_timeout_ms": 200})}
    )
    container = build_container(quick)
    try:
        registered = await make_client(container, name="Shop")
        app = create_app(container=container)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            token = (await fetch_token(client, registered))["access_token"]
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "busy"}
            blocker = sqlite3.connect(quick.database.url.split("///", 1)[1], isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
            try:
                response = await client.post("/v1/customers", json=BODY, headers=headers)
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "service_unavailable"
            assert response.headers["retry-after"] == "1"
            retried = await client.post("/v1/customers", json=BODY, headers=headers)
            assert retried.status_code == 201, "the 503 did not use up the key"
            assert "idempotent-replayed" not in retried.headers
    finally:
        await wipe(container)
        await container.close()
