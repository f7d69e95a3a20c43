"""docs/configuration.md lists every AMANAT_ setting, generated from the settings model, and
the committed table cannot drift from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from tests.support.paths import REPO
from typer.testing import CliRunner

from amanat.cli import app
from amanat.platform.settings_docs import (
    END,
    START,
    MissingDescriptionError,
    render_table,
    rewrite,
    rows,
)

PAGE = REPO / "docs" / "configuration.md"


def test_the_committed_table_is_what_the_generator_makes() -> None:
    page = PAGE.read_text()
    assert rewrite(page, render_table()) == page, (
        "docs/configuration.md is stale: run `.venv/bin/amanat config docs`"
    )


def test_every_group_and_setting_is_listed() -> None:
    table = render_table()
    variables = [row.variable for row in rows()]
    assert len(variables) == len(set(variables))
    for variable in (
        "AMANAT_ENV",
        "AMANAT_HTTP__PUBLIC_URL",
        "AMANAT_RAIL__CALLBACK_URL",
        "AMANAT_WORKER__EMBEDDED",
        "AMANAT_PAYMENTS__BALANCE_SHARDS",
        "AMANAT_SANDBOX__INITIAL_BALANCE_MINOR",
        "AMANAT_CRYPTO__VAULT_ADDRESS",
        "AMANAT_WEBHOOKS__RESPONSE_EXCERPT_BYTES",
    ):
        assert f"`{variable}`" in table, variable
    assert all(row.description for row in rows())


def test_a_setting_without_a_description_is_refused() -> None:
    class Inner(BaseModel):
        described: int = Field(default=1, description="Has one.")
        bare: int = 2

    class Outer(BaseModel):
        inner: Inner = Inner()

    with pytest.raises(MissingDescriptionError, match="AMANAT_INNER__BARE"):
        list(rows(Outer))


def test_the_command_rewrites_and_checks(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    page.write_text(f"# Settings\n\n{START}\n| old |\n{END}\n\nafter\n")
    runner = CliRunner()
    stale = runner.invoke(app, ["config", "docs", "--path", str(page), "--check"])
    assert stale.exit_code == 1
    assert "| old |" in page.read_text()

    assert runner.invoke(app, ["config", "docs", "--path", str(page)]).exit_code == 0
    text = page.read_text()
    assert text.startswith("# Settings\n\n") and text.endswith(f"{END}\n\nafter\n")
    assert "`AMANAT_HTTP__PUBLIC_URL`" in text and "| old |" not in text
    fresh = runner.invoke(app, ["config", "docs", "--path", str(page), "--check"])
    assert fresh.exit_code == 0, fresh.output


def test_a_page_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="markers"):
        rewrite("# no table here\n", render_table())
