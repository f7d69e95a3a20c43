"""Migrations build the schema the code expects, on SQLite and PostgreSQL alike."""

from __future__ import annotations

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
