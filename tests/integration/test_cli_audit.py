"""`amanat audit verify | seal | export-seals` against the test database.

CliRunner runs ``asyncio.run`` inside, so these tests are synchronous; set-up and tampering
run their own event loops.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from tests.conftest import wipe
from typer.testing import CliRunner

from amanat.adapters.db.engine import create_engine
from amanat.adapters.db.uow import Database
from amanat.bootstrap import build_container
from amanat.cli import app
from amanat.settings import DatabaseSettings, Settings


def _settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database=DatabaseSettings(url=database_url),
        auth={"sandbox_credentials_file": tmp_path / "creds.json"},
        crypto={
            "sandbox_master_key_file": tmp_path / "master.key",
            "audit_seal_key_file": tmp_path / "seal.key",
        },
    )


def _wipe(settings: Settings) -> None:
    async def run() -> None:
        container = build_container(settings)
        try:
            await wipe(container)
        finally:
            await container.close()

    asyncio.run(run())


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("AMANAT_DATABASE__URL", database_url)
    monkeypatch.setenv("AMANAT_CRYPTO__SANDBOX_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    monkeypatch.setenv("AMANAT_CRYPTO__AUDIT_SEAL_KEY_FILE", str(tmp_path / "seal.key"))
    monkeypatch.setenv("AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE", str(tmp_path / "creds.json"))
    settings = _settings(database_url, tmp_path)
    _wipe(settings)  # an empty log, whatever ran before
    yield tmp_path
    _wipe(settings)


def tamper(database_url: str, *statements: str) -> None:
    """Edit the log in SQL as a superuser would, around the append-only triggers."""

    async def run() -> None:
        db = Database(create_engine(DatabaseSettings(url=database_url)))
        try:
            async with db.write() as conn:
                triggers: list[str] = []
                if db.is_sqlite:
                    rows = await conn.exec_driver_sql(
                        "SELECT name, sql FROM sqlite_master "
                        "WHERE type='trigger' AND tbl_name='audit_log'"
                    )
                    for name, sql in rows.all():
                        triggers.append(sql)
                        await conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
                else:
                    await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                for statement in statements:
                    await conn.execute(sa.text(statement))
                for sql in triggers:
                    await conn.exec_driver_sql(sql)
        finally:
            await db.dispose()

    asyncio.run(run())


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def make_records() -> int:
    """Three legal holds and a release: four audit records. Returns how many."""
    for target in ("ds_1", "ds_2", "ds_3"):
        held = invoke("retention", "hold", "data_subjects", target, "--reason", "FIA 2026/114")
        assert held.exit_code == 0, held.output
        assert re.fullmatch(r"hold_[0-9A-Z]{26}\n", held.stdout), held.output
    released = invoke("retention", "release", "data_subjects", "ds_2")
    assert released.exit_code == 0, released.output
    assert "released 1 hold(s)" in released.stdout
    verified = invoke("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert "audit log OK: 4 records, head 4, 0 seals verified" in verified.stdout
    return 4


def test_verify_prints_ok_on_a_clean_log(cli_env: Path) -> None:
    empty = invoke("audit", "verify")
    assert empty.exit_code == 0, empty.output
    assert "audit log OK: 0 records, head 0, 0 seals verified" in empty.stdout
    assert make_records() == 4


@pytest.mark.parametrize(
    ("statement", "seq", "kind"),
    [
        ("UPDATE audit_log SET action = 'partner.deleted' WHERE seq = 1", 1, "edited"),
        ("UPDATE audit_log SET payload = '{}' WHERE seq = 2", 2, "edited"),
        ("DELETE FROM audit_log WHERE seq = 1", 1, "gap"),
        ("UPDATE audit_head SET hash = 'ffff' WHERE id = 1", None, "head_mismatch"),
    ],
)
def test_verify_exits_1_and_names_the_tampered_record(
    cli_env: Path, database_url: str, statement: str, seq: int | None, kind: str
) -> None:
    count = make_records()
    tamper(database_url, statement)
    result = invoke("audit", "verify")
    assert result.exit_code == 1, result.output
    assert "audit log OK" not in result.output
    assert "TAMPERED" in result.output
    assert f"at record {seq or count} ({kind})" in result.output


def test_verify_names_truncation_below_a_seal(cli_env: Path, database_url: str) -> None:
    count = make_records()
    sealed = invoke("audit", "seal")
    assert sealed.exit_code == 0, sealed.output
    tamper(
        database_url,
        f"DELETE FROM audit_log WHERE seq >= {count}",  # noqa: S608 - a test's own integer
        f"UPDATE audit_head SET seq = {count - 1}, "  # noqa: S608
        f"hash = (SELECT hash FROM audit_log WHERE seq = {count - 1}) WHERE id = 1",
    )
    result = invoke("audit", "verify")
    assert result.exit_code == 1, result.output
    assert f"at record {count} (truncated)" in result.output


def test_seal_then_export_seals_prints_json(cli_env: Path) -> None:
    nothing = invoke("audit", "seal")
    assert nothing.exit_code == 0, nothing.output
    assert "nothing new to seal" in nothing.stdout

    count = make_records()
    sealed = invoke("audit", "seal")
    assert sealed.exit_code == 0, sealed.output
    match = re.search(r"sealed record (\d+) head ([0-9a-f]{64})", sealed.stdout)
    assert match, sealed.output
    assert int(match[1]) == count
    again = invoke("audit", "seal")
    assert again.exit_code == 0, again.output
    assert "nothing new to seal" in again.stdout

    exported = invoke("audit", "export-seals")
    assert exported.exit_code == 0, exported.output
    seals = json.loads(exported.stdout)
    assert len(seals) == 1
    assert seals[0]["seq"] == count
    assert seals[0]["head_hash"] == match[2]
    assert set(seals[0]) == {"seq", "head_hash", "signature", "public_key", "sealed_at"}

    key = invoke("audit", "init-seal-key")
    assert key.exit_code == 0, key.output
    described = json.loads(key.stdout)
    assert described["created"] is False
    assert described["public_key"] == seals[0]["public_key"]

    verified = invoke("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert f"audit log OK: {count + 1} records, head {count + 1}, 1 seals verified" in (
        verified.stdout
    )
