"""The baseline SQL scripts, the drift comparison, wrk's output, webhook signatures."""

from __future__ import annotations

import json

import pytest
from bench.baselines import (
    PGBENCH_SCRIPT,
    SQLITE_SCRIPT,
    drift,
    parse_script,
    script_shapes,
    shape,
)
from bench.load import parse_wrk_output, wrk_result
from bench.receiver import signature, verify
from bench.world import payout_body

# Only on SQLite: the token check's read (PostgreSQL caches the client while its change
# feed is live) and the key's read before a payout joins a batch.
SQLITE_ONLY = ["SELECT oauth_clients", "SELECT idempotency_keys"]


def test_both_baseline_scripts_issue_the_same_statements() -> None:
    pg = script_shapes(PGBENCH_SCRIPT.read_text())
    lite = script_shapes(SQLITE_SCRIPT.read_text())
    assert lite[:2] == SQLITE_ONLY
    assert pg == lite[2:]
    assert {"INSERT payments", "INSERT holds", "INSERT audit_inbox"} <= set(pg)
    assert not {"SELECT audit_head", "UPDATE audit_head"} & set(pg), "no lock on the chain"


def test_parse_script_reads_gset_and_skips_meta_commands() -> None:
    statements = parse_script(
        "\\set n random(1, 5)\n-- a comment\nSELECT a FROM t WHERE n = :n \\gset\n"
        "-- @gset\nSELECT b\n  FROM u;\nBEGIN;\nUPDATE t SET a = 1;\nCOMMIT;\n"
    )
    assert [(s.sql, s.gset) for s in statements] == [
        ("SELECT a FROM t WHERE n = :n", True),
        ("SELECT b FROM u", True),
        ("BEGIN", False),
        ("UPDATE t SET a = 1", False),
        ("COMMIT", False),
    ]
    with pytest.raises(ValueError, match="missing"):
        parse_script("SELECT 1")


def test_shape_and_drift() -> None:
    assert shape("SELECT x.a, x.b \nFROM payments WHERE 1") == "SELECT payments"
    assert shape("INSERT INTO holds (id) VALUES ($1)") == "INSERT holds"
    assert shape("UPDATE balance_shards SET held=1") == "UPDATE balance_shards"
    assert shape("DELETE FROM idempotency_keys WHERE id = $1") == "DELETE idempotency_keys"
    assert shape("BEGIN IMMEDIATE") is None
    assert shape("SELECT a, EXISTS (SELECT * FROM r WHERE (x)) AS b FROM c JOIN d") == "SELECT c"
    assert drift(["SELECT a"], ["SELECT a"]) == []
    assert drift(["SELECT a", "INSERT events"], ["SELECT a"]) == ["@@ -1 +1,2 @@", " SELECT a",
                                                                  "+INSERT events"]  # fmt: skip


def test_wrk_output_is_parsed() -> None:
    line = {
        "requests": 1000,
        "duration_us": 10_000_000,
        "bytes": 1,
        "errors": {"connect": 0, "read": 1, "write": 0, "status": 3, "timeout": 2},
        "latency_us": {"p50": 2000, "p95": 5000, "p99": 9000, "max": 20000, "mean": 2500.5},
        "status": {"2xx": 997, "3xx": 0, "4xx": 3, "5xx": 0, "409": 3, "429": 0},
        "unexpected": 3,
        "replay_header_missing": 0,
        "first_bad": "409 {}",
    }
    result = wrk_result(parse_wrk_output(f"noise\nBENCH_RESULT {json.dumps(line)}\n", 201))
    assert (result.ok, result.transport_errors, result.errors) == (997, 3, 6)
    assert result.throughput == pytest.approx(99.7)
    assert (result.latency.p50, result.latency.p99) == (2.0, 9.0)
    with pytest.raises(RuntimeError, match="BENCH_RESULT"):
        parse_wrk_output("Running 1s test", 200)


def test_payout_body_is_the_json_the_lua_script_sends() -> None:
    body = json.loads(payout_body("ref-1"))
    assert body == {
        "amount": 10000,
        "currency": "PKR",
        "creditor": {"iban": "PK36SCBL0000001123456702", "name": "Ayesha Khan"},
        "reference": "ref-1",
    }


def test_standard_webhooks_signature() -> None:
    # The example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body) == expected
    assert verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body,
                  f"v1,bm90LXRoaXM= {expected}")  # fmt: skip
    assert not verify(secret, "msg_other", "1614265330", body, expected)
