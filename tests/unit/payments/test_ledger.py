"""The ledger's rules (payments/domain/ledger.py), directly: journals balance per currency,
each business journal moves money the right way, shards rebalance without creating money;
and holds as the ledger store promises them (reserve, post, void, never twice), on the
in-memory ledger. The SQL ledger under concurrency: tests/integration/payments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.kernel.errors import InvalidInput
from amanat.payments.domain.ledger import (
    RAAST_SETTLEMENT,
    SANDBOX_FUNDING,
    InsufficientFunds,
    Journal,
    Posting,
    Shard,
    collection_settled,
    credit_normal_balance,
    merchant_account,
    payout_settled,
    rebalanced,
    refund_settled,
    sandbox_top_up,
    transfer,
)
from amanat.payments.fakes import InMemoryLedger

NOW = datetime(2026, 3, 1, tzinfo=UTC)
MERCHANT = merchant_account("partner_1")


def test_a_balanced_journal_is_accepted() -> None:
    journal = Journal("j1", "x", "r", (Posting("a", 300, "PKR"), Posting("b", -300, "PKR")))
    assert sum(p.amount for p in journal.postings) == 0


@pytest.mark.parametrize(
    "postings",
    [
        (Posting("a", 300, "PKR"), Posting("b", -299, "PKR")),  # off by one
        (Posting("a", 300, "PKR"),),  # one leg
        (Posting("a", 0, "PKR"), Posting("b", 0, "PKR")),  # zero legs
        (Posting("a", 300, "PKR"), Posting("b", -300, "USD")),  # balanced only across currencies
    ],
)
def test_an_unbalanced_journal_cannot_exist(postings: tuple[Posting, ...]) -> None:
    with pytest.raises(InvalidInput) as refused:
        Journal("j1", "x", "r", postings)
    assert refused.value.code == "unbalanced"


def test_each_currency_balances_on_its_own() -> None:
    Journal(
        "j1",
        "fx",
        "r",
        (
            Posting("a", 300, "PKR"),
            Posting("b", -300, "PKR"),
            Posting("c", 2, "USD"),
            Posting("d", -2, "USD"),
        ),
    )


@pytest.mark.parametrize("amount", [0, -5])
def test_a_transfer_moves_a_positive_amount(amount: int) -> None:
    with pytest.raises(InvalidInput):
        transfer("j1", "x", "r", debit="a", credit="b", amount=amount, currency="PKR")


@pytest.mark.parametrize(
    ("build", "merchant_delta", "other"),
    [
        (sandbox_top_up, +700, SANDBOX_FUNDING),
        (collection_settled, +700, RAAST_SETTLEMENT),
        (payout_settled, -700, RAAST_SETTLEMENT),
        (refund_settled, -700, RAAST_SETTLEMENT),
    ],
)
def test_each_business_journal_moves_the_merchant_balance_its_way(
    build: object, merchant_delta: int, other: str
) -> None:
    journal = build("j1", "ref_1", "partner_1", 700, "PKR")  # type: ignore[operator]
    by_account = {p.account: p.amount for p in journal.postings}
    assert set(by_account) == {MERCHANT, other}
    assert credit_normal_balance(by_account[MERCHANT]) == merchant_delta
    assert journal.reference == "ref_1"


shards = st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)).map(
        lambda t: (t[0] + t[1], t[1])  # posted >= held: nothing overdrawn
    ),
    min_size=1,
    max_size=8,
)


@given(shards)
def test_rebalancing_spreads_what_is_available_and_creates_no_money(
    values: list[tuple[int, int]],
) -> None:
    before = [Shard(i, posted, held) for i, (posted, held) in enumerate(values)]
    after = rebalanced(before)
    assert sum(s.posted for s in after) == sum(s.posted for s in before)
    assert [s.held for s in after] == [s.held for s in before]
    availables = [s.available for s in after]
    assert sum(availables) == sum(s.available for s in before)
    share = min(availables)
    assert share >= 0
    assert availables[1:] == [share] * (len(after) - 1)
    assert 0 <= availables[0] - share < len(after)  # the remainder lands on shard 0


# -- holds, as the ledger store promises them -----------------------------------------------


async def account_with(amount: int) -> InMemoryLedger:
    ledger = InMemoryLedger()
    await ledger.ensure_account(MERCHANT, "liability", "PKR", 4, NOW)
    await ledger.ensure_account(SANDBOX_FUNDING, "equity", "PKR", 1, NOW)
    await ledger.post(sandbox_top_up("j0", "t0", "partner_1", amount, "PKR"), NOW)
    await ledger.credit(MERCHANT, amount, spread=True)
    return ledger


async def test_a_hold_reserves_and_refuses_beyond_the_available_balance() -> None:
    ledger = await account_with(1_000)
    await ledger.reserve(MERCHANT, "h1", 600, "PKR", NOW)
    assert await ledger.balance(MERCHANT) == (1_000, 600)
    before = ledger.checkpoint()
    with pytest.raises(InsufficientFunds):
        await ledger.reserve(MERCHANT, "h2", 401, "PKR", NOW)
    assert ledger.checkpoint() == before
    await ledger.reserve(MERCHANT, "h2", 400, "PKR", NOW)
    assert await ledger.check() == []


async def test_a_hold_closes_once_posted_or_voided() -> None:
    ledger = await account_with(1_000)
    await ledger.ensure_account(RAAST_SETTLEMENT, "asset", "PKR", 1, NOW)
    await ledger.reserve(MERCHANT, "paid", 600, "PKR", NOW)
    await ledger.reserve(MERCHANT, "back", 300, "PKR", NOW)

    assert await ledger.close_hold("paid", post=True, at=NOW) == 600
    await ledger.post(payout_settled("j1", "paid", "partner_1", 600, "PKR"), NOW)
    assert await ledger.close_hold("back", post=False, at=NOW) == 300
    assert await ledger.balance(MERCHANT) == (400, 0)

    assert await ledger.close_hold("paid", post=True, at=NOW) is None
    assert await ledger.close_hold("back", post=True, at=NOW) is None
    assert await ledger.close_hold("never", post=False, at=NOW) is None
    assert await ledger.balance(MERCHANT) == (400, 0)
    assert await ledger.check() == []


async def test_the_check_finds_a_balance_that_disagrees_with_its_entries() -> None:
    ledger = await account_with(1_000)
    await ledger.credit(MERCHANT, 5, spread=False)  # money with no journal
    await ledger.reserve(MERCHANT, "h1", 10, "PKR", NOW)
    ledger.holds["h1"] = replace(ledger.holds["h1"], status="voided")  # lost its release
    assert await ledger.check() == [
        f"{MERCHANT}: entries say 1000, balance says 1005",
        f"{MERCHANT}: active holds 0, balance holds 10",
    ]
