"""The pure helpers of the scale-out scenario, the SIGKILL drill and the operator's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.baselines import (
    PAYMENT_SHAPED_SCRIPT,
    PAYMENT_SHAPED_SETUP,
    PAYMENT_SHAPED_TABLES,
    parse_script,
    sql_statements,
)
from bench.checks import (
    accepted_within_quota,
    events_per_subject,
    overlapping_duplicates,
    rail_counts,
    sent_once,
)
from bench.load import LoadResult
from bench.operator_checks import audit_report
from bench.run import read_previous
from bench.scale_out import combine_loads, split_connections
from bench.stats import LatencySummary


def _load(ok: int, p99: float, seconds: float, *, errors: int = 0) -> LoadResult:
    return LoadResult(
        tool="wrk",
        duration_s=seconds,
        requests=ok,
        ok=ok,
        status={"2xx": ok, "5xx": 0},
        transport_errors=errors,
        unexpected=0,
        latency=LatencySummary(ok, p99 / 3, p99 / 4, p99 / 2, p99, p99 * 2),
    )


def test_loads_side_by_side_add_up_and_keep_the_worst_percentile() -> None:
    combined = combine_loads([_load(300, 80.0, 10.0), _load(200, 120.0, 10.2, errors=3)])
    assert combined.ok == 500
    assert combined.requests == 500
    assert combined.duration_s == pytest.approx(10.2)
    assert combined.throughput == pytest.approx(500 / 10.2)
    assert combined.latency.p99 == pytest.approx(120.0)
    assert combined.latency.p50 == pytest.approx(30.0)
    assert combined.transport_errors == 3
    assert combined.status == {"2xx": 500, "5xx": 0}
    with pytest.raises(ValueError, match="no loads"):
        combine_loads([])


def test_connections_are_split_evenly_at_least_one_each() -> None:
    assert split_connections(64, 2) == [32, 32]
    assert split_connections(9, 2) == [5, 4]
    assert split_connections(1, 2) == [1, 1]


def _delivery(endpoint: str, webhook_id: str, start: float, end: float | None) -> dict[str, object]:
    return {
        "endpoint": endpoint,
        "webhook_id": webhook_id,
        "started_at": start,
        "received_at": start,
        "answered_at": end,
    }


def test_overlapping_duplicates_are_those_received_twice_at_once() -> None:
    deliveries = [
        _delivery("0", "msg_a", 1.00, 1.02),
        _delivery("0", "msg_a", 1.01, 1.03),  # in flight while the first was: two senders
        _delivery("0", "msg_b", 1.00, 1.02),
        _delivery("0", "msg_b", 2.50, 2.52),  # a retry after an answer: not overlapping
        _delivery("1", "msg_a", 1.00, 1.02),  # another endpoint: its own delivery
        _delivery("1", "msg_c", 3.00, None),  # never answered (receiver stopped)
        _delivery("1", "msg_c", 4.00, 4.01),  # overlaps the unanswered one
    ]
    assert overlapping_duplicates(deliveries) == ["0/msg_a", "1/msg_c"]
    assert overlapping_duplicates([]) == []


def test_events_are_counted_per_subject_from_json_logs() -> None:
    lines = [
        {"event": "rail_submitted", "payment_id": "pay_1", "level": "info"},
        {"event": "rail_submitted", "payment_id": "pay_2"},
        {"event": "rail_submitted", "payment_id": "pay_1"},
        {"event": "rail_submit_timeout", "payment_id": "pay_3"},
        {"event": "rail_submitted"},  # no payment id: not counted
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\nnot json rail_submitted\n"
    assert events_per_subject(text, "rail_submitted", "payment_id") == {"pay_1": 2, "pay_2": 1}


def test_a_shared_quota_accepts_at_most_the_quota() -> None:
    good = accepted_within_quota([200] * 20 + [429] * 40, 20)
    assert good.ok
    assert "20 accepted, 40 answered 429" in good.detail
    # Two processes counting on their own: twice the quota gets through.
    assert not accepted_within_quota([200] * 40 + [429] * 20, 20).ok
    # Nothing refused at all, or answers that are neither: the check cannot pass.
    assert not accepted_within_quota([200] * 10, 20).ok
    assert not accepted_within_quota([200] * 20 + [429] * 39 + [None], 20).ok
    assert not accepted_within_quota([401] * 60, 20).ok


def test_audit_report_reads_the_clis_json_and_exit_status() -> None:
    ok = json.dumps({"ok": True, "records": 402, "head": 402, "findings": []})
    assert audit_report(0, ok, "").ok
    assert audit_report(0, ok, "").detail == "402 records, head 402"
    tampered = json.dumps(
        {"ok": False, "records": 5, "findings": [{"seq": 3, "kind": "hash", "detail": "x"}]}
    )
    bad = audit_report(1, tampered, "")
    assert not bad.ok and "1 finding(s)" in bad.detail
    broken = audit_report(2, "", "audit verification could not run: OperationalError")
    assert not broken.ok and "could not run" in broken.detail
    assert not audit_report(0, "not json", "").ok


def test_the_payment_shaped_script_is_five_inserts_and_one_commit() -> None:
    statements = [s.sql.split()[0].upper() for s in parse_script(PAYMENT_SHAPED_SCRIPT.read_text())]
    assert statements == ["BEGIN", *["INSERT"] * 5, "COMMIT"]
    tables = {s.sql.split()[2] for s in parse_script(PAYMENT_SHAPED_SCRIPT.read_text())[1:-1]}
    assert tables == set(PAYMENT_SHAPED_TABLES)
    setup = sql_statements(PAYMENT_SHAPED_SETUP.read_text())
    created = {s.split()[2] for s in setup if s.startswith("CREATE TABLE")}
    assert created == set(PAYMENT_SHAPED_TABLES)


def test_sql_statements_split_at_line_ends_and_drop_comments() -> None:
    text = "-- a comment\nCREATE TABLE a (x INT,\n  y INT);\n\nDROP TABLE b;\n"
    assert sql_statements(text) == ["CREATE TABLE a (x INT, y INT)", "DROP TABLE b"]


def test_read_previous_gives_figures_or_none(tmp_path: Path) -> None:
    assert read_previous(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{")
    assert read_previous(tmp_path / "bad.json") is None
    stored = {
        "generated_at": "2026-11-25 01:22 UTC",
        "git": {"commit": "c24fb4a"},
        "databases": {
            "postgresql": {
                "scenarios": {
                    "create_spread": {
                        "scenario": "create_spread",
                        "status": "ok",
                        "throughput_rps": 106.0,
                        "latency_ms": {"p99": 1860.7},
                    }
                },
                "baselines": {},
            }
        },
    }
    (tmp_path / "latest.json").write_text(json.dumps(stored))
    found = read_previous(tmp_path / "latest.json")
    assert found is not None
    assert found["commit"] == "c24fb4a"
    assert found["scenarios"]["postgresql"]["create_spread"]["throughput_rps"] == 106.0


def test_sent_once_needs_both_witnesses_to_agree() -> None:
    assert sent_once({"pay_1": 1, "pay_2": 1}, new_transfers=2, new_replays=0).ok
    assert not sent_once({"pay_1": 2}, new_transfers=1, new_replays=0).ok
    resent = sent_once({"pay_1": 1}, new_transfers=1, new_replays=1)
    assert not resent.ok and "1 resubmissions" in resent.detail
    # The rail took payments, the logs name none: the log witness is blind, not clean.
    blind = sent_once({}, new_transfers=5, new_replays=0)
    assert not blind.ok and "no rail_submitted" in blind.detail
    assert sent_once({}, new_transfers=0, new_replays=0).ok  # nothing to send


def test_rail_counts_read_the_rails_own_file(tmp_path: Path) -> None:
    import sqlite3

    assert rail_counts(tmp_path / "missing.db") == (0, 0)
    path = tmp_path / "rail.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE transfers (end_to_end_id TEXT, status TEXT, record TEXT, replays INT)"
    )
    conn.executemany(
        "INSERT INTO transfers VALUES (?, 'settled', '{}', ?)", [("pay_1", 0), ("pay_2", 2)]
    )
    conn.commit()
    conn.close()
    assert rail_counts(path) == (2, 2)
