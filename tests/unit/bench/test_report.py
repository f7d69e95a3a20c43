"""Target evaluation and the Markdown report of the bench."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench.report import END, START, evaluate, peak_api_rss, render_markdown, update_readme


def _scenario(name: str, throughput: float, p99: float, **extra: Any) -> dict[str, Any]:
    return {
        "scenario": name,
        "status": "ok",
        "connections": 64,
        "throughput_rps": throughput,
        "latency_ms": {"p50": p99 / 4, "p95": p99 / 2, "p99": p99},
        "errors": 0,
        "rss_mb": {"api": 150.0},
        "cpu": {"other_pct": 0.0},
        "load": {"duration_s": 30.0},
        "checks": [{"name": "no 5xx", "ok": True}],
        **extra,
    }


def _results() -> dict[str, Any]:
    return {
        "generated_at": "2026-11-24 12:00 UTC",
        "mode": "full",
        "git": {"commit": "abc1234", "dirty": False},
        "machine": {"cpu": "Test CPU", "logical_cpus": 2, "memory_gib": 8},
        "config": {"duration_s": 30, "merchants": 1000},
        "elapsed_s": 600,
        "databases": {
            "postgresql": {
                "baselines": {
                    "database": {
                        "tool": "pgbench (PostgreSQL) 15",
                        "clients": 64,
                        "throughput_tps": 2000.0,
                        "failed": 0,
                        "latency": {"p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": 30.0},
                    }
                },
                "scenarios": {
                    "create_spread": _scenario(
                        "create_spread", 1600.0, 90.0, ratio={"database": 0.8, "echo": 0.2}
                    ),
                    "create_hot": _scenario("create_hot", 1000.0, 120.0),
                    "webhooks": {"scenario": "webhooks", "status": "skipped",
                                 "skipped": "webhooks not available"},
                },
            },
            "sqlite": {
                "baselines": {},
                "scenarios": {
                    "create_spread": _scenario(
                        "create_spread",
                        390.0,
                        150.0,
                        rss_mb={"api": 390.0, "api_largest_process": 210.5},
                    )
                },
            },
        },
    }  # fmt: skip


def test_targets_met_missed_and_not_measured() -> None:
    rows = {row["id"]: row for row in evaluate(_results())}
    assert rows["pg_create_rate"]["status"] == "met"
    assert rows["pg_create_p99"]["status"] == "met"
    assert rows["pg_create_ratio"]["status"] == "met"
    assert rows["pg_hot"]["value"] == pytest.approx(0.625)
    assert rows["pg_hot"]["status"] == "missed"
    assert rows["pg_webhook_rate"]["status"] == "not measured"  # skipped scenario
    assert rows["pg_replay"]["status"] == "not measured"  # not run
    assert rows["sqlite_create_rate"]["status"] == "missed"
    assert rows["sqlite_create_p99"]["status"] == "met"
    assert rows["api_rss"]["value"] == pytest.approx(210.5)
    assert rows["api_rss"]["status"] == "missed"
    assert rows["pg_create_rate"]["conditions"] == "64 connections, 30 s"


def test_peak_api_rss_is_the_maximum_over_every_scenario() -> None:
    assert peak_api_rss(_results()) == pytest.approx(210.5)
    assert peak_api_rss({"databases": {}}) is None


def test_markdown_has_every_row_and_the_targets() -> None:
    results = _results()
    results["targets"] = evaluate(results)
    results["correctness"] = {"ok": True, "failures": []}
    text = render_markdown(results)
    assert "| PostgreSQL | Baseline (a): pgbench, payout SQL | 64 | 2,000 |" in text
    assert "| PostgreSQL | Create payout, spread over the merchants | 64 | 1,600 |" in text
    assert "Webhook deliveries while payments flow (webhooks not available)" in text
    assert "| SQLite | Create payout, spread over the merchants |" in text
    assert "| Create payout, PostgreSQL, 64 connections, 30 s | ≥ 1,500/s | 1,600/s |" in text
    assert "| missed |" in text and "| not measured |" in text
    assert "every check passed" in text


def test_markdown_lists_correctness_failures() -> None:
    results = _results()
    results["correctness"] = {"ok": False, "failures": ["sqlite replay: ledger balances"]}
    assert "- sqlite replay: ledger balances" in render_markdown(results)


def test_update_readme_replaces_only_the_marked_part(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Bench\n\nintro\n\n{START}\nold table\n{END}\n\nafter\n")
    update_readme(readme, "new table")
    assert readme.read_text() == f"# Bench\n\nintro\n\n{START}\nnew table\n{END}\n\nafter\n"
    readme.write_text("no markers")
    with pytest.raises(RuntimeError, match="markers"):
        update_readme(readme, "x")
