"""On PostgreSQL the service can run as a role that may only read and append the audit
trail: `amanat db create-roles` and `amanat migrate` (as the owner) grant it nothing more.

Roles are cluster-wide and test databases run in parallel on one server, so the role has a
fixed name and creating it again is not an error.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB
from typer.testing import CliRunner

from amanat.cli import app
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.store import SqlAuditRepository
from amanat.platform.db.engine import create_engine
from amanat.platform.settings import DatabaseSettings

pytestmark = pytest.mark.skipif(TEST_DB != "postgresql", reason="PostgreSQL roles")
ROLE = "amanat_test_app"


async def _as_app_role(url: str, *statements: str) -> list[str]:
    """Run each statement as the application role; return the error of each (or 'ok')."""
    engine = create_engine(DatabaseSettings(url=url))
    outcomes: list[str] = []
    try:
        for statement in statements:
            async with engine.connect() as conn:
                await conn.exec_driver_sql(f"SET ROLE {ROLE}")
                try:
                    await conn.exec_driver_sql(statement)
                    outcomes.append("ok")
                except sa.exc.DBAPIError as exc:
                    outcomes.append(str(exc.orig).splitlines()[0])
                await conn.rollback()
    finally:
        await engine.dispose()
    return outcomes


async def _append_as_app_role(url: str) -> int:
    """Write a record as a business transaction does, then chain it as the sequencer does,
    both as the application role (the inbox's sequence, the head, the log)."""
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"SET ROLE {ROLE}")
            audit = SqlAuditRepository(conn)
            await audit.append_at_commit(
                record_id="audit_roletest",
                occurred_at=datetime.now(UTC),
                actor=Actor(type="cli", id="t"),
                action="test.role",
                target_type=None,
                target_id=None,
                payload={},
            )
            await audit.flush()
            chained = await audit.chain_pending(10)
            seq, _ = await audit.head()
            await conn.rollback()
            return seq if chained else 0
    finally:
        await engine.dispose()


def test_the_app_role_can_only_read_and_append_the_audit_tables(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMANAT_DATABASE__URL", database_url)
    monkeypatch.setenv("AMANAT_DATABASE__APP_ROLE", ROLE)
    created = CliRunner().invoke(app, ["db", "create-roles"])
    assert created.exit_code == 0, created.output
    assert f"role {ROLE}" in created.stdout
    again = CliRunner().invoke(app, ["db", "create-roles"])
    assert again.exit_code == 0, again.output
    assert "already existed" in again.stdout
    migrated = CliRunner().invoke(app, ["migrate"])
    assert migrated.exit_code == 0, migrated.output

    outcomes = asyncio.run(
        _as_app_role(
            database_url,
            "DELETE FROM audit_log",
            "UPDATE audit_log SET action = 'x'",
            "DELETE FROM audit_seals",
            "UPDATE audit_seals SET head_hash = 'x'",
            "TRUNCATE audit_seals",
            "DROP TRIGGER audit_seals_no_update_delete ON audit_seals",
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
            "SELECT count(*) FROM audit_log",
            "SELECT count(*) FROM audit_seals",
            "SELECT * FROM alembic_version",
            "DELETE FROM partners WHERE id = 'none'",
        )
    )
    *refused, read_log, read_seals, read_version, ordinary = outcomes
    for outcome in refused[:5]:
        assert "permission denied" in outcome, outcomes
    for outcome in refused[5:]:
        assert "must be owner" in outcome, outcomes
    assert [read_log, read_seals, read_version, ordinary] == ["ok"] * 4
    assert asyncio.run(_append_as_app_role(database_url)) >= 1
