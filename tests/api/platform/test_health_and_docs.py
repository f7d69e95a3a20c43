"""Health, readiness, OpenAPI and the offline API reference."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from amanat.bootstrap import Container


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_migrated(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


async def test_readyz_answers_not_ready_when_the_database_hangs(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions stuck holding every pooled connection once made /readyz hang for minutes."""
    from amanat.platform.http import health

    async def hangs() -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(health, "READY_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(container.db, "ping", hangs)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "no answer within 0.2 s"


async def test_readyz_not_ready_when_migrations_behind(
    client: httpx.AsyncClient, container: Container
) -> None:
    async with container.db.write() as conn:
        await conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'old'")
    try:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "not_ready"
        assert "head is" in response.json()["checks"]["migrations"]
    finally:
        from amanat.platform.db.migrate import head_revision

        async with container.db.write() as conn:
            await conn.exec_driver_sql(
                "UPDATE alembic_version SET version_num = ?"
                if container.db.is_sqlite
                else "UPDATE alembic_version SET version_num = $1",
                (head_revision(),),
            )


async def test_openapi_is_3_1_and_documents_problems(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert "Problem" in spec["components"]["schemas"]
    ready = spec["paths"]["/readyz"]["get"]["responses"]
    assert "application/problem+json" in ready["500"]["content"]


async def test_docs_reference_only_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, "the docs page should load its assets"
    for source in sources:
        assert source.startswith("/"), f"{source} would need the internet"
        asset = await client.get(source)
        assert asset.status_code == 200, source
