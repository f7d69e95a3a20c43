"""The dashboard's judging and formatting: red above the threshold, amber above half of
it, and amounts in rupees from paisa."""

from __future__ import annotations

from datetime import timedelta

from amanat.console.operations import WINDOWS, duration, judge, percent, pkr


def test_tiles_are_red_above_the_threshold_amber_above_half() -> None:
    assert judge(2.1, 2.0) == "red"
    assert judge(2.0, 2.0) == "amber"  # at the threshold is not above it
    assert judge(1.0, 2.0) == "green"
    assert judge(1.1, 2.0) == "amber"
    assert judge(50, 2.0, enough=False) == "green"  # too few payments to judge
    assert judge(0, 0) == "green" and judge(1, 0) == "red"


def test_formats() -> None:
    assert pkr(150_000) == "PKR 1,500.00"
    assert pkr(123_456_789) == "PKR 1,234,567.89"
    assert pkr(5) == "PKR 0.05"
    assert pkr(-250) == "PKR -2.50"
    assert percent(0.025) == "2.5 %" and percent(0.5) == "50 %"
    assert duration(timedelta(seconds=42)) == "42 s"
    assert duration(timedelta(minutes=14, seconds=5)) == "14 min"
    assert duration(660.0) == "11 min"
    assert duration(timedelta(hours=3, minutes=2)) == "3 h 2 min"
    assert duration(timedelta(days=3, hours=1)) == "3 d 1 h"


def test_windows() -> None:
    assert list(WINDOWS) == ["15m", "1h", "24h"]
    assert WINDOWS["1h"].length == timedelta(hours=1)
    assert all(12 <= w.buckets <= 24 for w in WINDOWS.values())
