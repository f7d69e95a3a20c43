"""`amanat audit verify | seal | export-seals` against the test database, and the attack
drill (tests/audit_drill.py) run against the real command.

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
from tests.audit_drill import ATTACKS, attack
from tests.conftest import wipe
from tests.support.cli import cli_settings, in_container
from typer.testing import CliRunner

from amanat.cli import app
from amanat.platform.db.database import Database
from amanat.platform.db.engine import create_engine
from amanat.platform.settings import DatabaseSettings


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    settings = cli_settings(database_url, tmp_path, monkeypatch, witness=True)
    in_container(settings, wipe)  # an empty log, whatever ran before
    yield tmp_path
    in_container(settings, wipe)


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


# -- the attack drill ---------------------------------------------------------------------
# The log: four records (1-4), a seal over 4 (its audit.sealed record is 5), two more
# records (6, 7) and a seal over 7 (record 8). Both seals are in the witness file.

DRILL = {
    "edit-field": [(4, "edited")],
    "break-json": [(4, "unparsable")],
    "delete-middle": [(4, "gap"), (4, "seal_mismatch")],
    "delete-newest": [(8, "truncated")],
    "delete-newest-rewind-head": [(8, "truncated")],
    "delete-seals-rewrite-chain": [
        (4, "seal_mismatch"),
        (4, "seal_missing"),
        (7, "seal_missing"),
        (7, "truncated"),
    ],
}


def _drill_log() -> None:
    make_records()
    assert invoke("audit", "seal").exit_code == 0
    for target in ("ds_4", "ds_5"):
        held = invoke("retention", "hold", "data_subjects", target, "--reason", "FIA 2026/115")
        assert held.exit_code == 0, held.output
    sealed = invoke("audit", "seal")
    assert "sealed record 7" in sealed.stdout, sealed.output
    clean = invoke("audit", "verify")
    assert clean.exit_code == 0, clean.output
    assert "8 records, head 8, 2 seals verified, 2 witnessed seals match" in clean.stdout


@pytest.mark.parametrize("case", list(DRILL))
def test_the_attack_drill_is_reported_by_record(
    cli_env: Path, database_url: str, case: str
) -> None:
    assert set(DRILL) == set(ATTACKS)
    _drill_log()
    asyncio.run(attack(database_url, case))

    result = invoke("audit", "verify")
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "audit log TAMPERED" in result.stdout
    for seq, kind in DRILL[case]:
        assert f"at record {seq} ({kind})" in result.stdout, result.stdout

    as_json = invoke("audit", "verify", "--json")
    assert as_json.exit_code == 1, as_json.output
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert [(f["seq"], f["kind"]) for f in report["findings"]] == DRILL[case]


def test_verify_reports_every_finding_not_just_the_first(cli_env: Path, database_url: str) -> None:
    make_records()
    tamper(
        database_url,
        "UPDATE audit_log SET payload = '{\"broken' WHERE seq = 1",
        "UPDATE audit_log SET actor_id = 'someone_else' WHERE seq = 3",
    )
    result = invoke("audit", "verify", "--json")
    assert result.exit_code == 1, result.output
    findings = [(f["seq"], f["kind"]) for f in json.loads(result.stdout)["findings"]]
    assert findings == [(1, "unparsable"), (3, "edited")]


def test_verify_exits_2_without_a_traceback_when_the_witness_file_is_missing(
    cli_env: Path,
) -> None:
    result = invoke("audit", "verify", "--witness", str(cli_env / "nowhere.jsonl"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_a_bare_verify_in_the_sandbox_checks_against_the_make_run_witness(
    cli_env: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` writes the witness to var/ (beside the sandbox credentials); a verify run
    by hand in another shell, with no witness setting, must still check against it."""
    _drill_log()
    (cli_env / "witness.jsonl").rename(cli_env / "audit-witness.jsonl")
    monkeypatch.delenv("AMANAT_AUDIT__WITNESS_FILE")
    asyncio.run(attack(database_url, "delete-seals-rewrite-chain"))  # only a witness sees it

    result = invoke("audit", "verify")
    assert result.exit_code == 1, result.output
    assert "at record 7 (seal_missing)" in result.stdout, result.output
