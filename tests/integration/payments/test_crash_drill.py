"""SIGKILL of the whole server+worker process tree at random moments during payouts, a
few times over, on the database of this pass: nothing lost, nothing duplicated, nothing
stuck (the full drill with more kills is ``make drills``; tests/support/crash_drill.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import make_database
from tests.support.crash_drill import Drill

pytestmark = pytest.mark.e2e


def test_payouts_survive_sigkills_of_the_whole_process_tree(tmp_path: Path) -> None:
    url, drop = make_database(tmp_path, migrate=False)
    try:
        figures = Drill(tmp_path, url, seed=3).run(kills=3, payouts=60, recovery_seconds=180)
    finally:
        drop()  # type: ignore[operator]
    print(figures.report())
    assert figures.kills == 3
    assert figures.accepted > 0
    assert figures.lost == 0, figures.report()
    assert figures.duplicated == 0, figures.report()
    assert figures.stuck == 0, figures.report()
    assert figures.ledger_problems == [], figures.report()
    assert figures.balance_drift == 0, figures.report()
    assert figures.held == 0, figures.report()
