"""`amanat partners set-rate-limit`: a partner's own quota from the command line, audited.

CliRunner runs ``asyncio.run`` inside, so these tests are synchronous.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import wipe
from tests.support.cli import cli_settings, in_container
from typer.testing import CliRunner

from amanat.cli import app
from amanat.platform.audit.domain import Actor
from amanat.platform.settings import Settings


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    settings = cli_settings(database_url, tmp_path, monkeypatch)
    in_container(settings, wipe)
    yield settings
    in_container(settings, wipe)


def test_set_and_clear_a_partner_rate_limit(settings: Settings) -> None:
    async def create(container: Any) -> str:
        partner = await container.partners.create_partner(
            Actor(type="cli", id="test"), name="Payroll Co", roles=["merchant"], mode="sandbox"
        )
        return str(partner.id)

    partner_id = in_container(settings, create)
    runner = CliRunner()
    bad = runner.invoke(app, ["partners", "set-rate-limit", partner_id, "write", "--quota", "9x"])
    assert bad.exit_code == 2
    assert "LIMIT/WINDOW_SECONDS" in " ".join(bad.output.split())
    done = runner.invoke(
        app, ["partners", "set-rate-limit", partner_id, "write", "--quota", "30000/60"]
    )
    assert done.exit_code == 0, done.output
    cleared = runner.invoke(app, ["partners", "set-rate-limit", partner_id, "write"])
    assert cleared.exit_code == 0, cleared.output

    async def audited(container: Any) -> list[Any]:
        await container.audit_integrity.chain_pending()  # the sequencer's work, now
        async with container.transactions.read() as tx:
            page = await tx.audit.list_records(10, None, "partner.rate_limit_changed", partner_id)
        return [(r.actor.type, r.payload["to"]) for r in reversed(page.items)]

    assert in_container(settings, audited) == [("cli", [30000, 60]), ("cli", None)]
