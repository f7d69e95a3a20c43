"""`amanat timeline ID`: a payment's merged timeline printed as a table for support, and a
clear exit 1 for an id nothing is known of.

CliRunner runs ``asyncio.run`` inside, so these tests are synchronous; the set-up runs in
an event loop of its own (tests/support/cli.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import wipe
from tests.support.cli import cli_settings, in_container
from tests.support.oauth import ACTOR, make_client
from typer.testing import CliRunner

from amanat.auth.domain import Caller
from amanat.bootstrap import Container
from amanat.cli import app
from amanat.payments.service import AccountIn
from amanat.platform.settings import Settings

IBAN = "PK36SCBL0000001123456702"


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    settings = cli_settings(database_url, tmp_path, monkeypatch)
    in_container(settings, wipe)
    yield settings
    in_container(settings, wipe)


async def _settled_payout(container: Container) -> str:
    merchant = await make_client(container, name="CLI shop")
    caller = Caller(merchant.partner.id, merchant.id, ACTOR)
    await container.payments.top_up(caller, 1_000_000)
    payment = await container.payments.create_payout(
        caller,
        amount=25_000,
        currency="PKR",
        creditor=AccountIn(iban=IBAN, raast_id=None, name="Ayesha Khan"),
        reference="INV-9",
        description=None,
        metadata={},
    )
    await container.payments.apply_rail_status(
        payment.id, "accepted", sequence=1, rail_reference="RRN-1", cause="rail callback"
    )
    await container.payments.apply_rail_status(
        payment.id, "settled", sequence=2, cause="rail callback"
    )
    return payment.id


def test_the_timeline_of_a_payment_is_printed(settings: Settings) -> None:
    payment_id = in_container(settings, _settled_payout)

    result = CliRunner().invoke(app, ["timeline", payment_id])

    assert result.exit_code == 0, result.output
    out = result.output
    for header in ("time", "source", "what", "actor", "request id", "facts"):
        assert header in out
    lines = [line for line in out.splitlines() if "│" in line]
    created = next(i for i, line in enumerate(lines) if "payout created (pending)" in line)
    processing = next(i for i, line in enumerate(lines) if "pending → processing" in line)
    succeeded = next(i for i, line in enumerate(lines) if "processing → succeeded" in line)
    journal = next(i for i, line in enumerate(lines) if "journal payout: 250.00 PKR" in line)
    assert created < processing < succeeded < journal
    assert "payment.created" in out and "hold of 250.00 PKR placed" in out
    assert "SCBL …6702" in out and IBAN not in out and "Ayesha" not in out


def test_an_unknown_id_exits_1_with_a_clear_message(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["timeline", "pay_01JZZZZZZZZZZZZZZZZZZZZZZZ"])

    assert result.exit_code == 1
    assert "Nothing is known of 'pay_01JZZZZZZZZZZZZZZZZZZZZZZZ'" in " ".join(result.output.split())
