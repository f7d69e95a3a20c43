"""Target evaluation and the Markdown report of the bench."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench.report import (
    END,
    START,
    TARGETS,
    evaluate,
    figures,
    peak_api_rss,
    render_markdown,
    update_readme,
)


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
                    },
                    "payment_shaped": {
                        "tool": "pgbench (PostgreSQL) 15",
                        "clients": 64,
                        "throughput_tps": 4000.0,
                        "failed": 0,
                        "latency": {"p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0},
                    },
                    "echo": _scenario("echo", 1400.0, 40.0, ratio={"bare_app": 0.7}),
                    "bare_app": _scenario("bare_app", 2000.0, 30.0),
                },
                "scenarios": {
                    "create_spread": _scenario(
                        "create_spread", 1600.0, 90.0,
                        ratio={"database": 0.8, "payment_shaped": 0.4, "echo": 0.2,
                               "bare_app": 0.1},
                    ),
                    "replay": _scenario("replay", 4200.0, 50.0),
                    "retrieve": _scenario("retrieve", 3900.0, 50.0),
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


def test_the_target_table_is_the_issues() -> None:
    assert [t.text for t in TARGETS] == [
        "create payout, PostgreSQL, 64 connections, spread over merchants",
        "the same, as a ratio to a payment-shaped pgbench transaction measured in the same run "
        "(five inserts and one commit, no shared lock)",
        "one hot merchant, as a share of the spread figure",
        "create payout, SQLite, 16 connections",
        "idempotent replay and retrieve by id, PostgreSQL",
        "bare endpoint through the whole middleware stack, as a ratio to a bare FastAPI app in "
        "the same run",
        "webhook deliveries, one worker, signed, to a local receiver",
        "API process RSS",
    ]
    assert [t.goal for t in TARGETS] == [
        "≥ 1,500/s, p99 ≤ 100 ms",
        "≥ 0.30",
        "≥ 0.80",
        "≥ 400/s, p99 ≤ 200 ms",
        "≥ 4,000/s",
        "≥ 0.60",
        "≥ 1,000/s, event-to-first-attempt p99 ≤ 1 s",
        "≤ 200 MB",
    ]


def test_targets_met_missed_and_not_measured() -> None:
    rows = {row["id"]: row for row in evaluate(_results())}
    assert rows["pg_create"]["status"] == "met"
    assert rows["pg_create"]["measured"] == "1,600/s, p99 90 ms"
    assert rows["pg_create"]["ratio_payment_shaped"] == pytest.approx(0.4)
    assert rows["pg_create"]["ratio_bare_app"] == pytest.approx(0.1)
    assert rows["pg_create_vs_payment_shaped"]["status"] == "met"
    assert rows["pg_hot"]["value"] == pytest.approx(0.625)
    assert rows["pg_hot"]["status"] == "missed"
    assert rows["pg_webhooks"]["status"] == "not measured"  # skipped scenario
    # Both must be met: retrieve is below 4,000/s.
    assert rows["pg_replay_retrieve"]["status"] == "missed"
    assert rows["pg_replay_retrieve"]["measured"] == "replay 4,200/s, retrieve 3,900/s"
    assert rows["stack_vs_bare_app"]["value"] == pytest.approx(0.7)
    assert rows["stack_vs_bare_app"]["status"] == "met"
    # One criterion met, the other missed: the row is missed.
    assert rows["sqlite_create"]["status"] == "missed"
    assert rows["api_rss"]["value"] == pytest.approx(210.5)
    assert rows["api_rss"]["status"] == "missed"
    assert rows["pg_create"]["conditions"] == "64 connections, 30 s"


def test_a_target_with_one_criterion_unmeasured_is_not_measured() -> None:
    results = _results()
    del results["databases"]["postgresql"]["scenarios"]["retrieve"]
    results["databases"]["postgresql"]["scenarios"]["replay"]["throughput_rps"] = 5000.0
    rows = {row["id"]: row for row in evaluate(results)}
    assert rows["pg_replay_retrieve"]["status"] == "not measured"
    assert rows["pg_replay_retrieve"]["measured"] == "replay 5,000/s, retrieve —"


def test_figures_keep_what_a_later_run_prints_beside_its_own() -> None:
    found = figures(_results())
    assert found["commit"] == "abc1234"
    assert found["targets"]["pg_create"] == "1,600/s, p99 90 ms"
    assert found["scenarios"]["postgresql"]["create_spread"] == {
        "throughput_rps": 1600.0,
        "p99_ms": 90.0,
    }
    assert found["scenarios"]["postgresql"]["baseline:payment_shaped"]["throughput_rps"] == 4000.0
    assert "webhooks" not in found["scenarios"]["postgresql"]  # skipped: no figure
    # Results of an older run, without the new baselines, still give what they have.
    assert figures({"databases": {}})["targets"]["pg_create"] is None


def test_peak_api_rss_is_the_maximum_over_every_scenario() -> None:
    assert peak_api_rss(_results()) == pytest.approx(210.5)
    assert peak_api_rss({"databases": {}}) is None


def test_markdown_has_every_row_the_targets_and_the_previous_run() -> None:
    results = _results()
    results["targets"] = evaluate(results)
    results["correctness"] = {"ok": True, "failures": []}
    previous = _results()
    previous["git"]["commit"] = "0ld0ld0"
    previous["databases"]["postgresql"]["scenarios"]["create_spread"]["throughput_rps"] = 800.0
    results["previous"] = figures(previous)
    text = render_markdown(results)
    assert "| PostgreSQL | Baseline (a): pgbench, payout SQL | 64 | 2,000 |" in text
    assert "| PostgreSQL | Baseline (a'): pgbench, payment-shaped" in text
    assert "| PostgreSQL | Baseline (b'): bare FastAPI app, same model and uvicorn options" in text
    assert "| PostgreSQL | Create payout, spread over the merchants | 64 | 1,600 |" in text
    assert "| 0.40× | 0.10× | 800, p99 90.0 | ok |" in text
    assert "Webhook deliveries while payments flow (webhooks not available)" in text
    assert "| SQLite | Create payout, spread over the merchants |" in text
    assert (
        "| create payout, PostgreSQL, 64 connections, spread over merchants | "
        "≥ 1,500/s, p99 ≤ 100 ms | 1,600/s, p99 90 ms | 0.40× | 0.10× | 800/s, p99 90 ms |"
    ) in text
    assert "commit 0ld0ld0" in text
    assert "| missed |" in text and "| not measured |" in text
    assert "every check passed" in text


def test_markdown_without_a_previous_run_says_so() -> None:
    results = _results()
    results["targets"] = evaluate(results)
    assert "**Previous run:** none found" in render_markdown(results)


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


def test_notes_tell_the_scale_out_the_drill_and_the_operators_checks() -> None:
    results = _results()
    phase = results["databases"]["postgresql"]
    phase["api_processes"] = 2
    phase["scenarios"]["scale_out"] = _scenario(
        "scale_out",
        1500.0,
        95.0,
        per_api_rps=[760.0, 740.0],
        redis="redis://127.0.0.1:6379/11",
        workers={"rail_submissions": 300, "rail_submissions_per_s": 25.0, "deliveries": 80},
        checks=[
            {"name": "rate limit shared by the API processes", "ok": True,
             "detail": "20 accepted, 40 answered 429"},
        ],
    )  # fmt: skip
    phase["scenarios"]["sigkill"] = _scenario(
        "sigkill",
        10.0,
        500.0,
        killed_after_s=15.0,
        restart_s=4.2,
        checks=[{"name": "amanat audit verify", "ok": False, "detail": "exit 1: 1 finding(s)"}],
    )
    phase["operator_checks"] = [
        {"name": "amanat audit verify", "ok": True, "detail": "402 records, head 402"},
        {"name": "amanat ledger check", "ok": True, "detail": "ledger OK"},
    ]
    text = render_markdown(results)
    assert "creates 1,500/s (760 + 740)" in text
    assert "against 1,600/s for one server of 2 processes" in text
    assert "shared rate limit: 20 accepted, 40 answered 429" in text
    assert "answered again 4.2 s after the kill; amanat audit verify: FAILED (exit 1" in text
    assert (
        "`amanat audit verify` passed (402 records, head 402); `amanat ledger check` passed" in text
    )


def test_the_webhook_target_is_the_worker_alone_not_the_payments_scenario() -> None:
    results = _results()
    scenarios = results["databases"]["postgresql"]["scenarios"]
    # Payments flowing: bounded by the machine making events, reported but not the target.
    scenarios["webhooks"] = _scenario("webhooks", 450.0, 400.0)
    scenarios["webhook_worker"] = _scenario(
        "webhook_worker",
        1200.0,
        210.0,
        endpoints=4,
        deliveries_offered_per_s=1199.6,
        duration_s=15.0,
    )
    row = {r["id"]: r for r in evaluate(results)}["pg_webhooks"]
    assert (row["status"], row["measured"]) == ("met", "1,200/s, p99 210 ms")
    assert row["conditions"] == "4 endpoints, 1,200 deliveries/s offered for 15 s, 1 worker"
    scenarios["webhook_worker"]["latency_ms"]["p99"] = 1500.0
    assert {r["id"]: r for r in evaluate(results)}["pg_webhooks"]["status"] == "missed"


def test_rows_show_cpu_per_request_and_the_bare_app_is_its_own_unit() -> None:
    results = _results()
    phase = results["databases"]["postgresql"]
    phase["scenarios"]["create_spread"]["cpu_us_per_request"] = {"api": 960.4, "postgres": 343.0}
    phase["baselines"]["bare_app"]["cpu_us_per_request"] = {"api": 188.2, "postgres": 0.0}
    text = render_markdown(results)
    assert "CPU µs/request: API + PostgreSQL | × payment-shaped pgbench | × bare FastAPI |" in text
    spread = next(line for line in text.splitlines() if "Create payout, spread" in line)
    assert "| 960 + 343 | 0.40× | 0.10× |" in spread
    bare = next(line for line in text.splitlines() if "Baseline (b'): bare FastAPI" in line)
    # No PostgreSQL share where it used none; the ratio of the bare app to itself is 1.
    assert "| 188 | — | 1.00× |" in bare
    header = next(line for line in text.splitlines() if line.startswith("| Database |"))
    assert {line.count("|") for line in text.splitlines() if "| PostgreSQL |" in line} == {
        header.count("|")
    }


def test_the_bare_read_floor_is_a_row_and_reads_are_noted_as_a_share_of_it() -> None:
    results = _results()
    phase = results["databases"]["postgresql"]
    phase["baselines"]["bare_read"] = _scenario(
        "bare_read", 3800.0, 60.0, cpu_us_per_request={"api": 402.5, "postgres": 98.0}
    )
    phase["scenarios"]["retrieve"]["ratio"] = {"bare_read": 0.6}
    phase["scenarios"]["replay"]["ratio"] = {"bare_read": 0.71}
    text = render_markdown(results)
    row = next(line for line in text.splitlines() if "Baseline (b''): bare FastAPI" in line)
    assert "| 3,800 |" in row and "| 402 + 98 |" in row
    note = next(line for line in text.splitlines() if "reference for a read by id" in line)
    assert "answered 3,800/s, p99 60.0 ms, at 402 + 98 µs of CPU a request" in note
    assert "retrieve 3,900/s (0.60×), replay 4,200/s (0.71×) of its throughput" in note


def test_without_the_bare_read_there_is_no_reference_note() -> None:
    text = render_markdown(_results())
    assert "reference for a read by id" not in text
    assert "Baseline (b'')" not in text
