"""Settings come from AMANAT_ variables; production refuses unsafe configurations."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from amanat.cli import app
from amanat.platform.settings import Environment, Settings


def test_nested_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMANAT_ENV", "production")
    monkeypatch.setenv("AMANAT_DATABASE__URL", "postgresql+asyncpg://amanat:pw@db/amanat")
    monkeypatch.setenv("AMANAT_HTTP__MAX_BODY_BYTES", "2048")
    settings = Settings()
    assert settings.env is Environment.PRODUCTION
    assert settings.database.url.startswith("postgresql+asyncpg://")
    assert settings.http.max_body_bytes == 2048


def test_sandbox_has_no_production_problems() -> None:
    assert Settings().production_problems() == []


def test_production_lists_one_message_per_problem() -> None:
    settings = Settings(
        env="production", observability={"debug": True}, auth={"access_token_ttl_seconds": 3600}
    )
    problems = settings.production_problems()
    joined = "\n".join(problems)
    for needle in (
        "SQLite",
        "debug",
        "master key",
        "SIGNING_KEY_PASSPHRASE",
        "above 900",
        "PUBLIC_URL",
        "ISSUER",
        "SANDBOX__SEED",
        "AUDIT__WITNESS_FILE",
    ):
        assert needle in joined, needle
    assert len(problems) == len(set(problems))


RECIPIENT = "age1vuy7c7exnewrgu2pnls646tnsprt7hma5frpfmgds2qhr5975dysvndf2z"


def test_secure_production_configuration_passes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    seal = tmp_path / "seal.key"
    seal.write_text("present")
    settings = Settings(
        env="production",
        database={"url": "postgresql+asyncpg://amanat:pw@db/amanat"},
        crypto={
            "master_key_file": tmp_path / "k",
            "audit_seal_key_file": seal,
            "export_recipients": [RECIPIENT],
        },
        auth={"signing_key_passphrase": "long passphrase", "issuer": "https://api.bank.pk"},
        http={"public_url": "https://api.bank.pk"},
        sandbox={"seed": False},
        rail={"mount_sandbox": False, "secret": "agreed with the rail operator"},
        audit={"witness_file": tmp_path / "witness" / "audit-seals.jsonl"},
    )
    assert settings.production_problems() == []


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMANAT_DATABASE__URL", "postgresql+asyncpg://amanat:hunter2@db/amanat")
    monkeypatch.setenv("AMANAT_CRYPTO__MASTER_KEY", "super-secret-master-key")
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert "super-secret-master-key" not in result.output
    shown = json.loads(result.stdout)
    assert shown["database"]["url"] == "postgresql+asyncpg://amanat:[redacted]@db/amanat"


def test_serve_refuses_insecure_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMANAT_ENV", "production")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "refuses to start in production" in result.output
    assert "SQLite" in result.output
