"""PaymentService's dispute journals (disputes' only way to move money) against the
in-memory fakes: a hold takes what the available balance covers, a release gives it
back, a reversal sends it to the payer through the rail, a won payout dispute returns
the amount; every journal balances, the ledger checks out after any sequence of them, and
each lands in the merchant's settlement as the right line."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.fake_payments import CALLER, MERCHANT, PARTNER, payout

from amanat.payments.domain import ledger
from amanat.payments.domain.ledger import InsufficientFunds
from amanat.payments.fakes import FakePayments, fake_payments
from amanat.reconciliation.domain.settlement import (
    FeeSchedule,
    LineKind,
    Movement,
    settlement_lines,
    totals,
)

HELD = ledger.dispute_held_account(PARTNER)


async def funded(amount: int) -> FakePayments:
    fakes = fake_payments()
    if amount:
        await fakes.service.top_up(CALLER, amount)
    return fakes


def balance_of(fakes: FakePayments, account: str) -> int:
    found = fakes.ledger.accounts.get(account)
    return found.posted if found else 0


def kinds(fakes: FakePayments) -> list[str]:
    return [j.kind for j in fakes.ledger.journals.values()]


async def test_a_hold_moves_the_amount_out_of_the_available_balance() -> None:
    fakes = await funded(10_000)
    held, journal_id = await fakes.service.hold_for_dispute(PARTNER, "dp_1", 4_000, "PKR")
    assert (held, journal_id is not None) == (4_000, True)
    assert balance_of(fakes, MERCHANT) == 6_000
    assert await fakes.service.disputes_held(PARTNER) == 4_000
    journal = fakes.ledger.journals[str(journal_id)]
    assert (journal.kind, journal.reference) == ("dispute_hold", "dp_1")
    assert {(p.account, p.amount) for p in journal.postings} == {(MERCHANT, 4_000), (HELD, -4_000)}
    assert await fakes.service.check_ledger() == []


async def test_a_hold_takes_only_what_is_available() -> None:
    fakes = await funded(10_000)
    await payout(fakes, 7_000)  # 7,000 held for a payout in flight
    assert await fakes.service.hold_for_dispute(PARTNER, "dp_1", 5_000, "PKR") == (
        3_000,
        next(iter(j.id for j in fakes.ledger.journals.values() if j.kind == "dispute_hold")),
    )
    assert (await fakes.service.balance(PARTNER)).available == 0
    assert await fakes.service.hold_for_dispute(PARTNER, "dp_2", 5_000, "PKR") == (0, None)
    assert await fakes.service.check_ledger() == []


async def test_release_reversal_and_a_returned_payout() -> None:
    fakes = await funded(10_000)
    await fakes.service.hold_for_dispute(PARTNER, "dp_1", 6_000, "PKR")
    await fakes.service.release_dispute_hold(PARTNER, "dp_1", 2_000, "PKR")
    assert (balance_of(fakes, MERCHANT), balance_of(fakes, HELD)) == (6_000, 4_000)
    rail_before = fakes.ledger.entries_total(ledger.RAAST_SETTLEMENT)
    await fakes.service.reverse_dispute_hold(PARTNER, "dp_1", 4_000, "PKR")
    assert (balance_of(fakes, MERCHANT), balance_of(fakes, HELD)) == (6_000, 0)
    assert fakes.ledger.entries_total(ledger.RAAST_SETTLEMENT) == rail_before - 4_000
    await fakes.service.return_disputed_payout(PARTNER, "dp_2", 1_500, "PKR")
    assert balance_of(fakes, MERCHANT) == 7_500
    assert fakes.ledger.entries_total(ledger.RAAST_SETTLEMENT) == rail_before - 2_500
    assert kinds(fakes)[-3:] == ["dispute_release", "dispute_reversal", "dispute_reversal"]
    assert await fakes.service.check_ledger() == []


async def test_nothing_leaves_the_dispute_held_account_that_is_not_in_it() -> None:
    fakes = await funded(10_000)
    await fakes.service.hold_for_dispute(PARTNER, "dp_1", 1_000, "PKR")
    for move in (fakes.service.release_dispute_hold, fakes.service.reverse_dispute_hold):
        with pytest.raises(InsufficientFunds):
            await move(PARTNER, "dp_1", 1_001, "PKR")
    assert balance_of(fakes, HELD) == 1_000
    assert await fakes.service.check_ledger() == []


ops = st.lists(
    st.tuples(
        st.sampled_from(["hold", "release", "reverse", "return", "top_up"]),
        st.integers(1, 50_000),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 100_000), ops)
def test_any_sequence_keeps_the_ledger_whole(start: int, sequence: list[tuple[str, int]]) -> None:
    async def scenario() -> None:
        fakes = await funded(start)
        service = fakes.service
        held = 0
        for op, amount in sequence:
            if op == "hold":
                took, _ = await service.hold_for_dispute(PARTNER, "dp_1", amount, "PKR")
                assert 0 <= took <= amount
                held += took
            elif op in ("release", "reverse") and held:
                part = min(amount, held)
                move = (
                    service.release_dispute_hold
                    if op == "release"
                    else service.reverse_dispute_hold
                )
                await move(PARTNER, "dp_1", part, "PKR")
                held -= part
            elif op == "return":
                await service.return_disputed_payout(PARTNER, "dp_2", amount, "PKR")
            elif op == "top_up":
                await service.top_up(CALLER, amount)
            assert await service.disputes_held(PARTNER) == held
            assert (await service.balance(PARTNER)).available >= 0
        assert await service.check_ledger() == []

    asyncio.run(scenario())


async def test_dispute_journals_land_in_the_settlement_as_their_lines() -> None:
    fakes = await funded(10_000)
    start = fakes.clock.now()
    fakes.clock.advance(seconds=1)
    await fakes.service.hold_for_dispute(PARTNER, "dp_1", 3_000, "PKR")
    await fakes.service.release_dispute_hold(PARTNER, "dp_1", 1_000, "PKR")
    await fakes.service.reverse_dispute_hold(PARTNER, "dp_1", 2_000, "PKR")  # not the merchant's
    await fakes.service.return_disputed_payout(PARTNER, "dp_2", 500, "PKR")
    moved = await fakes.service.ledger_movements(PARTNER, start, start + timedelta(hours=1))
    lines = settlement_lines(
        [Movement(m.journal_id, m.kind, m.reference, m.amount, m.currency, m.at) for m in moved],
        FeeSchedule(collection_bps=100, per_payout=50),
        carried_in=0,
        closed_at=start,
        currency="PKR",
    )
    assert [(line.kind, line.reference, line.amount, line.fee) for line in lines] == [
        (LineKind.DISPUTE_HOLD, "dp_1", -3_000, 0),
        (LineKind.DISPUTE_REVERSAL, "dp_1", 1_000, 0),
        (LineKind.DISPUTE_REVERSAL, "dp_2", 500, 0),
    ]
    summary = totals(lines)
    assert (summary.dispute_holds, summary.dispute_reversals, summary.net) == (3_000, 1_500, -1_500)
    assert balance_of(fakes, MERCHANT) == 10_000 + summary.net
