"""Percentile maths and summaries of the bench (pure, nothing is timed)."""

from __future__ import annotations

import pytest
from bench.stats import cpu_per_request, percentile, rate, ratio, summarize


def test_percentile_interpolates_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == pytest.approx(25.0)
    assert percentile(values, 95) == pytest.approx(38.5)


def test_percentile_ignores_input_order_and_handles_edges() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0], 101)


def test_percentile_of_a_uniform_range() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 50) == pytest.approx(50.5)


def test_summarize() -> None:
    summary = summarize([5.0, 1.0, 3.0])
    assert (summary.count, summary.max, summary.p50) == (3, 5.0, 3.0)
    assert summary.mean == pytest.approx(3.0)
    assert summary.as_dict()["p99_ms"] == pytest.approx(4.96)
    empty = summarize([])
    assert empty.count == 0 and empty.as_dict()["p50_ms"] is None


def test_ratio_and_rate() -> None:
    assert ratio(150.0, 300.0) == 0.5
    assert ratio(None, 300.0) is None
    assert ratio(1.0, 0.0) is None
    assert rate(30, 10.0) == 3.0
    assert rate(1, 0.0) is None


def test_cpu_per_request_from_core_shares_and_throughput() -> None:
    # 150 % of a core over 3,000 requests a second: 500 us of API CPU per request.
    cpu = {"api_pct": 150.0, "postgres_pct": 24.0, "bench_pct": 170.0}
    assert cpu_per_request(cpu, 3_000.0) == {"api": 500.0, "postgres": 80.0}
    assert cpu_per_request({"postgres_pct": 0.0}, 100.0) == {"postgres": 0.0}
    assert cpu_per_request(cpu, 0.0) is None
    assert cpu_per_request({}, 100.0) is None
