"""A dispute's money over random lives: every journal it posts (payments' own journal
builders) balances, the ledger sums to zero, the dispute-held account never goes below
zero, ``held + released + reversed == held_total`` at every step, and a closed dispute
holds nothing. The merchant's available balance, random at each step, decides how much a
hold can take."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.disputes.domain.disputes import (
    TERMINAL,
    TRANSITIONS,
    Action,
    DisputeStatus,
    Funds,
    PaymentKind,
    Step,
    closing_steps,
    consumes,
    next_status,
    opening_steps,
)
from amanat.payments.domain import ledger

PARTNER = "ptr_1"
MERCHANT = ledger.merchant_account(PARTNER)
HELD = ledger.dispute_held_account(PARTNER)
BUILDERS = {
    Step.HOLD: ledger.dispute_hold,
    Step.RELEASE: ledger.dispute_release,
    Step.REVERSE: ledger.dispute_reversal,
    Step.RETURN: ledger.disputed_payout_returned,
}
S = DisputeStatus


class Books:
    """Journals by account, as the ledger keeps them (+ debit, - credit)."""

    def __init__(self, merchant_available: int) -> None:
        self.totals: dict[str, int] = defaultdict(int)
        self.totals[MERCHANT] = -merchant_available  # credit-normal: money the merchant has
        self.totals[ledger.RAAST_SETTLEMENT] = merchant_available
        self.count = 0

    def balance(self, account: str) -> int:
        """A credit-normal account's balance."""
        return -self.totals[account]

    def post(self, step: Step, amount: int) -> None:
        self.count += 1
        journal = BUILDERS[step](f"jnl_{self.count}", "dp_1", PARTNER, amount, "PKR")
        assert journal.kind in {"dispute_hold", "dispute_release", "dispute_reversal"}
        for posting in journal.postings:
            self.totals[posting.account] += posting.amount
        assert sum(self.totals.values()) == 0


def apply(books: Books, funds: Funds, steps: tuple[Step, ...]) -> Funds:
    """What the service does with each step: a hold takes what the merchant has."""
    for step in steps:
        asked = funds.asked(step)
        if asked <= 0:
            continue
        moved = min(asked, books.balance(MERCHANT)) if step is Step.HOLD else asked
        if moved:
            books.post(step, moved)
        funds = funds.after(step, moved)
        assert funds.held == books.balance(HELD)
        assert funds.held_total == funds.held + funds.released + funds.reversed
    return funds


lives = st.tuples(
    st.sampled_from(list(PaymentKind)),
    st.integers(1, 10_000_000),  # the disputed amount
    st.integers(0, 12_000_000),  # what the merchant has when it opens
    st.lists(st.tuples(st.sampled_from(list(Action)), st.integers(0, 5_000_000)), max_size=6),
)


@given(lives)
def test_money_is_conserved_over_any_life(
    life: tuple[PaymentKind, int, int, list[tuple[Action, int]]],
) -> None:
    kind, amount, available, actions = life
    books = Books(available)
    funds = apply(books, Funds(amount), opening_steps(kind))
    if kind is PaymentKind.PAYOUT:
        assert funds.held_total == 0
    else:
        assert funds.held == min(amount, available)
        assert funds.held + funds.shortfall == amount
    status = S.NEEDS_RESPONSE
    for action, more_money in actions:
        if action not in TRANSITIONS.get(status, {}):
            continue
        # The merchant's balance moves on meanwhile (collections in, payouts out).
        books.totals[MERCHANT] -= more_money
        books.totals[ledger.RAAST_SETTLEMENT] += more_money
        status = next_status(status, action)
        funds = apply(books, funds, closing_steps(kind, status))
    assert sum(books.totals.values()) == 0
    assert books.balance(HELD) >= 0
    assert funds.held_total <= amount
    if status in TERMINAL:
        assert funds.held == 0  # nothing stays held once it closes
        if kind is PaymentKind.COLLECTION and status in (S.LOST, S.ACCEPTED):
            assert funds.reversed == funds.held_total and funds.released == 0
        if kind is PaymentKind.COLLECTION and status in (S.WON, S.WITHDRAWN):
            assert funds.released == funds.held_total and funds.reversed == 0
        assert funds.returned == (amount if (kind, status) == (PaymentKind.PAYOUT, S.WON) else 0)
    else:
        assert funds.released == funds.reversed == funds.returned == 0


@pytest.mark.parametrize(
    ("kind", "status", "steps"),
    [
        (PaymentKind.COLLECTION, S.LOST, (Step.HOLD, Step.REVERSE)),
        (PaymentKind.COLLECTION, S.ACCEPTED, (Step.HOLD, Step.REVERSE)),
        (PaymentKind.COLLECTION, S.WON, (Step.RELEASE,)),
        (PaymentKind.COLLECTION, S.WITHDRAWN, (Step.RELEASE,)),
        (PaymentKind.PAYOUT, S.WON, (Step.RETURN,)),
        (PaymentKind.PAYOUT, S.LOST, ()),
        (PaymentKind.PAYOUT, S.ACCEPTED, ()),
        (PaymentKind.PAYOUT, S.WITHDRAWN, ()),
        (PaymentKind.COLLECTION, S.UNDER_REVIEW, ()),
    ],
)
def test_closing_steps(kind: PaymentKind, status: DisputeStatus, steps: tuple[Step, ...]) -> None:
    assert closing_steps(kind, status) == steps


def test_a_lost_dispute_takes_what_it_can_of_its_shortfall_first() -> None:
    books = Books(300)
    funds = apply(books, Funds(1_000), opening_steps(PaymentKind.COLLECTION))
    assert (funds.held, funds.shortfall) == (300, 700)
    books.totals[MERCHANT] -= 500  # a collection of 500 arrived meanwhile
    books.totals[ledger.RAAST_SETTLEMENT] += 500
    funds = apply(books, funds, closing_steps(PaymentKind.COLLECTION, S.LOST))
    assert (funds.held_total, funds.reversed, funds.shortfall, funds.held) == (800, 800, 200, 0)
    assert books.balance(MERCHANT) == 0


@pytest.mark.parametrize(
    ("kind", "status", "taken"),
    [
        (PaymentKind.COLLECTION, S.NEEDS_RESPONSE, 500),
        (PaymentKind.COLLECTION, S.UNDER_REVIEW, 500),
        (PaymentKind.COLLECTION, S.LOST, 500),
        (PaymentKind.COLLECTION, S.ACCEPTED, 500),
        (PaymentKind.COLLECTION, S.WON, 0),
        (PaymentKind.COLLECTION, S.WITHDRAWN, 0),
        (PaymentKind.PAYOUT, S.WON, 500),
        (PaymentKind.PAYOUT, S.LOST, 0),
        (PaymentKind.PAYOUT, S.NEEDS_RESPONSE, 500),
    ],
)
def test_what_a_dispute_takes_of_its_payment(
    kind: PaymentKind, status: DisputeStatus, taken: int
) -> None:
    assert consumes(kind, status, 500) == taken


def test_funds_refuse_to_be_inconsistent() -> None:
    with pytest.raises(ValueError):
        Funds(100, held_total=150)
    with pytest.raises(ValueError):
        Funds(100, held_total=50, released=40, reversed=20)
    with pytest.raises(ValueError):
        Funds(100, returned=50)
