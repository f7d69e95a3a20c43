"""Migrations build the schema the code expects, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from tests.conftest import make_database

from amanat.bootstrap import tables
from amanat.platform.db.engine import create_engine
from amanat.platform.db.metadata import metadata
from amanat.platform.db.migrate import current_revision, head_revision
from amanat.platform.settings import DatabaseSettings


@pytest.fixture
def fresh_url(tmp_path: Path):  # type: ignore[no-untyped-def]
    url, drop = make_database(tmp_path, migrate=True)
    yield url
    drop()


async def test_empty_database_upgrades_to_head_with_no_model_drift(fresh_url: str) -> None:
    engine = create_engine(DatabaseSettings(url=fresh_url))
    try:
        assert await current_revision(engine) == head_revision()

        def diff(sync_conn: sa.Connection) -> list[object]:
            tables()  # every capability's tables are on the metadata
            context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))

        async with engine.connect() as conn:
            drift = await conn.run_sync(diff)
        assert drift == [], f"models and migrations disagree: {drift}"
    finally:
        await engine.dispose()


@pytest.mark.skipif(
    __import__("tests.conftest", fromlist=["TEST_DB"]).TEST_DB != "postgresql",
    reason="CREATE INDEX CONCURRENTLY: PostgreSQL",
)
def test_an_invalid_queue_index_left_by_a_failed_build_is_built_again(tmp_path: Path) -> None:
    """Migration 0010 builds its index CONCURRENTLY; a build cancelled halfway leaves it
    INVALID, and running the migration again must rebuild it, not take it as done."""
    from amanat.platform.db.migrate import upgrade

    url, drop = make_database(tmp_path, migrate=False)
    query = (
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'ix_webhook_deliveries_queue'"
    )

    async def run(*statements: str) -> object:
        engine = create_engine(DatabaseSettings(url=url))
        try:
            async with engine.begin() as conn:
                result = None
                for statement in statements:
                    found = await conn.execute(sa.text(statement))
                    result = found.scalar() if found.returns_rows else None
                return result
        finally:
            await engine.dispose()

    try:
        upgrade(url, "0009")
        # As a cancelled CONCURRENTLY build leaves it: present, marked invalid.
        asyncio.run(
            run(
                "CREATE INDEX ix_webhook_deliveries_queue ON webhook_deliveries "
                "(endpoint_id, next_attempt_at, id) WHERE status = 'pending'",
                "UPDATE pg_index SET indisvalid = false "
                "WHERE indexrelid = 'ix_webhook_deliveries_queue'::regclass",
            )
        )
        assert asyncio.run(run(query)) is False
        upgrade(url)
        assert asyncio.run(run(query)) is True
    finally:
        drop()  # type: ignore[operator]


@pytest.mark.skipif(
    __import__("tests.conftest", fromlist=["TEST_DB"]).TEST_DB != "postgresql",
    reason="a table's fillfactor: PostgreSQL",
)
async def test_idempotency_keys_pages_keep_room_for_their_replay_counts(fresh_url: str) -> None:
    """Migration 0019: the replay count updates a key's row in place only when its page has
    room for the new version (a heap-only tuple, no index entry)."""
    engine = create_engine(DatabaseSettings(url=fresh_url))
    try:
        async with engine.connect() as conn:
            options = (
                await conn.execute(
                    sa.text("SELECT reloptions FROM pg_class WHERE relname = 'idempotency_keys'")
                )
            ).scalar()
        assert options == ["fillfactor=80"]
    finally:
        await engine.dispose()
