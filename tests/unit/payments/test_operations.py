"""Payments' operations read model, the pure part: folding finished payments into
failure counts and rates, and the instants a backlog series is drawn at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from amanat.payments.operations import FinishedGroup, Outcomes, buckets, summarise

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def group(
    type_: str, status: str, code: str | None, bank: str, partner: str, n: int, amount: int
) -> FinishedGroup:
    return FinishedGroup(type_, status, code, bank, partner, n, amount)


GROUPS = [
    group("payout", "succeeded", None, "SCBL", "ptr_a", 7, 700),
    group("payout", "failed", "rail_ac01", "SCBL", "ptr_a", 2, 300),
    group("payout", "failed", "rail_ab08", "HBL", "ptr_b", 1, 50),
    group("collection", "succeeded", None, "HBL", "ptr_b", 4, 400),
    group("collection", "failed", "rail_cust", "HBL", "ptr_b", 1, 10),
    group("refund", "failed", "rail_ac01", "SCBL", "ptr_a", 1, 5),
]


def test_counts_and_rates_by_code_and_journey() -> None:
    failures = summarise(T0, T1, GROUPS)
    assert failures.total == Outcomes("all", finished=16, failed=5, failed_amount=365)
    assert [(o.key, o.failed, o.failed_amount) for o in failures.by_code] == [
        ("rail_ac01", 3, 305),
        ("rail_ab08", 1, 50),
        ("rail_cust", 1, 10),
    ]
    assert failures.by_code[0].rate == 3 / 16  # of every payment finished in the window
    payout = failures.journey("payout")
    assert (payout.finished, payout.failed, payout.rate) == (10, 3, 0.3)
    assert [o.key for o in failures.by_journey] == ["payout", "collection", "refund"]
    assert failures.journey("refund").rate == 1.0


def test_by_bank_and_partner_worst_first() -> None:
    failures = summarise(T0, T1, GROUPS)
    assert [(o.key, o.finished, o.failed) for o in failures.by_bank] == [
        ("SCBL", 10, 3),
        ("HBL", 6, 2),
    ]
    assert [(o.key, o.failed) for o in failures.by_partner] == [("ptr_a", 3), ("ptr_b", 2)]


def test_nothing_finished() -> None:
    failures = summarise(T0, T1, [])
    assert failures.total.rate == 0.0
    assert failures.by_code == [] and failures.by_bank == []
    assert [(o.key, o.finished) for o in failures.by_journey] == [
        ("payout", 0),
        ("collection", 0),
        ("refund", 0),
    ]


def test_buckets_span_the_window_inclusive() -> None:
    points = buckets(T0, T1, 12)
    assert len(points) == 13
    assert points[0] == T0 and points[-1] == T1
    assert points[1] - points[0] == timedelta(minutes=5)
    assert buckets(T1, T0, 12) == [T0]  # an empty window: one point
