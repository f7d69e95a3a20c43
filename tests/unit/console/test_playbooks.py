"""Every payment failure code and every alert kind has a playbook section, at a stable
anchor the console links to: a new code without a playbook fails the build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from amanat.console import playbooks
from amanat.payments import alerts as payment_alerts
from amanat.payments.domain.payments import RAIL_FAILURE_CODES
from amanat.platform.audit import health
from amanat.reconciliation import alerts as recon_alerts
from amanat.webhooks import alerts as webhook_alerts

PAYMENTS_SOURCE = Path(playbooks.__file__).resolve().parents[1] / "payments"
ALERT_KINDS = {
    payment_alerts.PAYMENT_STUCK,
    webhook_alerts.ENDPOINT_DISABLED,
    webhook_alerts.BACKLOG,
    recon_alerts.BREAK_AGED,
    "audit_seal_failed",
    "audit_chain_stalled",
    "audit_seal_overdue",
    *(
        f"dispute_{stage}_{state}"
        for stage in ("response", "decision")
        for state in ("due", "overdue")
    ),
}


@pytest.fixture(scope="module")
def text() -> str:
    loaded = playbooks.load()
    assert loaded is not None, f"{playbooks.playbooks_path()} is missing"
    return loaded


def codes_set_in_payments() -> set[str]:
    """Failure codes the payments package sets by name (beside the rail's mapped ones)."""
    found: set[str] = set()
    for path in PAYMENTS_SOURCE.rglob("*.py"):
        source = path.read_text()
        found |= set(re.findall(r'fail_submission\(\s*[^,]+,\s*"([a-z0-9_]+)"', source))
        found |= set(re.findall(r'Failure\(\s*(?:code=)?"([a-z0-9_]+)"', source))
    return found


def test_every_failure_code_has_a_section(text: str) -> None:
    sections = playbooks.anchors(text)
    codes = RAIL_FAILURE_CODES | codes_set_in_payments()
    assert {"rail_unavailable", "rail_unknown_transfer"} <= codes  # the scan finds them
    missing = sorted(codes - sections)
    assert not missing, f"docs/playbooks.md has no section for {missing}"


def test_every_alert_kind_has_a_section(text: str) -> None:
    missing = sorted(ALERT_KINDS - playbooks.anchors(text))
    assert not missing, f"docs/playbooks.md has no section for {missing}"
    assert health.PLAYBOOK.format("x") == "playbooks.md#x"


def test_the_rendered_page_carries_each_anchor(text: str) -> None:
    html = playbooks.as_html(text)
    for code in RAIL_FAILURE_CODES | ALERT_KINDS:
        assert f'<h2 id="{code}">{code}</h2>' in html
    assert "<script" not in html


def test_links_to_playbooks() -> None:
    assert playbooks.href("playbooks.md#payment_stuck") == "/console/playbooks#payment_stuck"
    assert playbooks.href("docs/playbooks.md#rail_ac01") == "/console/playbooks#rail_ac01"
    assert playbooks.href("rail_ac01") == "/console/playbooks#rail_ac01"
    assert playbooks.href("runbooks.md#dispute_deadline") is None  # another document
    assert playbooks.href(None) is None


def test_a_missing_file_reads_as_none(tmp_path: Path) -> None:
    assert playbooks.load(tmp_path / "playbooks.md") is None


def test_headings_in_code_fences_are_not_sections() -> None:
    assert playbooks.anchors("## real\n\n```\n## not_a_section\n```\n") == {"real"}
