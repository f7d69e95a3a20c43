"""A settlement's lines, fees and totals (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from amanat.reconciliation.domain.settlement import (
    FeeSchedule,
    LineKind,
    Movement,
    carry_forward,
    fees_due,
    settlement_lines,
    totals,
)

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
FEES = FeeSchedule(collection_bps=150, per_payout=500)


def _movement(kind: str, amount: int, n: int = 0) -> Movement:
    return Movement(f"jnl_{n}", kind, f"pay_{n}", amount, "PKR", AT)


def test_lines_bear_their_fees_and_fee_journals_are_not_lines() -> None:
    lines = settlement_lines(
        [
            _movement("collection", 10_001, 1),
            _movement("payout", -20_000, 2),
            _movement("refund", -1_000, 3),
            _movement("settlement_fee", -700, 4),
            _movement("top_up", 5_000, 5),
        ],
        FEES,
        carried_in=300,
        closed_at=AT,
        currency="PKR",
    )
    assert [line.kind for line in lines] == [
        LineKind.COLLECTION,
        LineKind.PAYOUT,
        LineKind.REFUND,
        LineKind.TOP_UP,
        LineKind.FEES_CARRIED_IN,
    ]
    assert [line.fee for line in lines] == [150, 500, 500, 0, 300]  # 150.015 rounds to 150
    summary = totals(lines)
    assert summary.gross_collections == 10_001 and summary.payouts == 20_000
    assert summary.refunds == 1_000 and summary.other == 5_000 and summary.fees == 1_450
    assert summary.net == 10_001 - 20_000 - 1_000 + 5_000 - 1_450


def test_an_uncovered_fee_is_carried_forward_and_the_fee_column_sums_to_what_was_charged() -> None:
    lines = settlement_lines(
        [_movement("payout", -1_000)], FEES, carried_in=0, closed_at=AT, currency="PKR"
    )
    carried = carry_forward(lines, 200, AT, "PKR")
    assert carried[-1].kind is LineKind.FEES_CARRIED_FORWARD and carried[-1].fee == -200
    assert fees_due(carried) == 300
    assert totals(carried).net == -1_000 - 300


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["collection", "payout", "refund", "top_up", "recon_adjustment"]),
            st.integers(min_value=1, max_value=10**9),
        ),
        max_size=30,
    ),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=1_000),
)
def test_money_is_conserved(
    moves: list[tuple[str, int]], carried_in: int, uncovered_share: int
) -> None:
    movements = [
        _movement(kind, amount if kind in {"collection", "top_up"} else -amount, n)
        for n, (kind, amount) in enumerate(moves)
    ]
    lines = settlement_lines(movements, FEES, carried_in=carried_in, closed_at=AT, currency="PKR")
    due = fees_due(lines)
    uncovered = due * uncovered_share // 1_000
    final = carry_forward(lines, uncovered, AT, "PKR")
    summary = totals(final)
    # What the balance moved by: every movement, less the fees actually charged.
    assert summary.net == sum(m.amount for m in movements) - (due - uncovered)
    assert summary.fees == due - uncovered
    assert summary.line_count == len(final)
