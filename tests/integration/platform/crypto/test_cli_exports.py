"""`amanat audit export` writes an age-encrypted copy only its recipient can read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amanat.cli import app
from amanat.platform.crypto.exports import ExportEncryptionError, decrypt_with, generate_identity


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AMANAT_DATABASE__URL", database_url)
    monkeypatch.setenv("AMANAT_CRYPTO__SANDBOX_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    monkeypatch.setenv("AMANAT_CRYPTO__AUDIT_SEAL_KEY_FILE", str(tmp_path / "seal.key"))
    monkeypatch.setenv("AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE", str(tmp_path / "creds.json"))
    return tmp_path


def test_export_is_encrypted_for_the_recipient(cli_env: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(
        app, ["partners", "create", "--name", "Export Shop", "--role", "merchant"]
    )
    assert created.exit_code == 0, created.output
    identity, recipient = generate_identity()
    out = cli_env / "audit.age"
    result = runner.invoke(app, ["audit", "export", "--out", str(out), "--recipient", recipient])
    assert result.exit_code == 0, result.output
    assert "encrypted for 1 age recipient" in result.output
    raw = out.read_bytes()
    assert raw.startswith(b"age-encryption.org/v1")
    assert b"partner.created" not in raw
    assert out.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in decrypt_with(raw, identity).decode().splitlines()]
    actions = [line["action"] for line in lines if line["type"] == "record"]
    assert "partner.created" in actions and "client.created" in actions
    assert all(len(line["hash"]) == 64 for line in lines if line["type"] == "record")

    # Anyone else's key cannot read it.
    other_identity, _ = generate_identity()
    with pytest.raises(ExportEncryptionError, match="cannot decrypt"):
        decrypt_with(raw, other_identity)


def test_production_refuses_an_unencrypted_export(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amanat.cli import _write_export

    monkeypatch.setenv("AMANAT_ENV", "production")
    import typer

    with pytest.raises(typer.Exit) as stopped:
        _write_export(cli_env / "plain.jsonl", b"{}", [])
    assert stopped.value.exit_code == 2
    assert not (cli_env / "plain.jsonl").exists()
