"""The checks an operator runs by hand, run by the bench as the operator would: the CLI
commands ``amanat audit verify`` and ``amanat ledger check``, as child processes with the
run's ``AMANAT_*`` environment, judged by their exit status (and the audit report's JSON).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.checks import Check

CLI_TIMEOUT_S = 900  # the audit walk reads every record: tens of thousands after a full run


def amanat_binary() -> str:
    return str(Path(sys.executable).with_name("amanat"))


def _cli(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own argv
        [amanat_binary(), *argv],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def audit_report(returncode: int, stdout: str, stderr: str) -> Check:
    """``amanat audit verify --json``: 0 intact, 1 findings, 2 could not run."""
    name = "amanat audit verify"
    try:
        report: dict[str, Any] = json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        report = {}
    if returncode == 0 and report.get("ok") is True:
        return Check(name, True, f"{report.get('records')} records, head {report.get('head')}")
    findings = report.get("findings") or []
    detail = (
        f"exit {returncode}: {len(findings)} finding(s), e.g. {findings[:3]}"
        if findings
        else f"exit {returncode}: {(stderr or stdout).strip()[-500:]}"
    )
    return Check(name, False, detail)


def audit_verify(env: Mapping[str, str]) -> Check:
    done = _cli(["audit", "verify", "--json"], env)
    return audit_report(done.returncode, done.stdout, done.stderr)


def ledger_check(env: Mapping[str, str]) -> Check:
    done = _cli(["ledger", "check"], env)
    text = (done.stdout + done.stderr).strip()
    return Check("amanat ledger check", done.returncode == 0, text[-500:])
