"""Pure numbers: percentiles, latency summaries, ratios. No clocks, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks
    (NumPy's default method); None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    fraction = rank - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Milliseconds."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "mean_ms": _round(self.mean),
            "p50_ms": _round(self.p50),
            "p95_ms": _round(self.p95),
            "p99_ms": _round(self.p99),
            "max_ms": _round(self.max),
        }


def summarize(latencies_ms: Iterable[float]) -> LatencySummary:
    values = sorted(latencies_ms)
    if not values:
        return LatencySummary(0, None, None, None, None, None)
    return LatencySummary(
        count=len(values),
        mean=sum(values) / len(values),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        p99=percentile(values, 99),
        max=values[-1],
    )


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline``; None when either is missing or the baseline is not positive."""
    if value is None or baseline is None or baseline <= 0:
        return None
    return value / baseline


def rate(count: int, seconds: float) -> float | None:
    return count / seconds if seconds > 0 else None


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def cpu_per_request(cpu: dict[str, float], throughput: float) -> dict[str, float] | None:
    """CPU time per answered request, in microseconds, for the API's processes and for
    PostgreSQL's, from a window's ``<name>_pct`` figures (% of one core) and the requests
    per second answered in it. Other tenants taking the CPU slow the throughput but not
    the CPU a request costs, so for an A/B on one machine this is the figure to compare;
    it still scales with the machine's speed (bench/README.md, "What the numbers mean").
    None without throughput."""
    if throughput <= 0:
        return None
    found = {}
    for name, key in (("api", "api_pct"), ("postgres", "postgres_pct")):
        pct = cpu.get(key)
        if pct is not None:
            found[name] = round(pct / 100 * 1_000_000 / throughput, 1)
    return found or None
