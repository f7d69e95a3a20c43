"""``ledger.hold_on``: how a batch of payouts decides, in memory, which of them the
merchant's shards cover (payments/batching.py); the shards it returns are written back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.payments.domain.ledger import InsufficientFunds, Shard, hold_on
from amanat.payments.service import _moved_shards

shard_lists = st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)).map(
        lambda t: (max(t), min(t))  # posted >= held: a shard never holds more than it has
    ),
    min_size=1,
    max_size=8,
).map(lambda rows: [Shard(i, posted, held) for i, (posted, held) in enumerate(rows)])


@given(shard_lists, st.lists(st.integers(1, 20_000), min_size=1, max_size=30), st.integers(0, 7))
def test_a_batch_of_holds_conserves_money_and_refuses_exactly_what_is_not_covered(
    shards: list[Shard], amounts: list[int], start: int
) -> None:
    posted = sum(s.posted for s in shards)
    held = sum(s.held for s in shards)
    for amount in amounts:
        available = sum(s.available for s in shards)
        before = shards
        try:
            shards, index = hold_on(shards, amount, start % len(shards))
        except InsufficientFunds:
            assert amount > available, "refused although the shards covered it together"
            assert shards is before, "a refused hold changed the shards"
            continue
        assert amount <= available
        held += amount
        assert [s.index for s in shards] == [s.index for s in before]
        assert index in {s.index for s in shards}
        # Evening out moves posted money between shards, never in or out of the account.
        assert sum(s.posted for s in shards) == posted
        assert sum(s.held for s in shards) == held
        assert all(s.available >= 0 for s in shards)
        after = next(s for s in shards if s.index == index)
        assert after.held >= amount


def test_the_first_covering_shard_from_the_start_is_used_as_is() -> None:
    shards = [Shard(0, 100, 0), Shard(1, 50, 0), Shard(2, 500, 0)]
    after, index = hold_on(shards, 80, 1)
    assert index == 2
    assert after == [Shard(0, 100, 0), Shard(1, 50, 0), Shard(2, 500, 80)]


def test_money_spread_thin_is_evened_out_then_held() -> None:
    shards = [Shard(0, 60, 0), Shard(1, 60, 0), Shard(2, 60, 0)]
    after, index = hold_on(shards, 150, 0)
    assert sum(s.posted for s in after) == 180
    assert next(s for s in after if s.index == index).held == 150
    with pytest.raises(InsufficientFunds):
        hold_on(after, 31, 0)


@given(shard_lists, st.lists(st.integers(1, 20_000), min_size=1, max_size=30), st.integers(0, 7))
def test_writing_back_only_the_moved_shards_leaves_what_the_holds_left(
    shards: list[Shard], amounts: list[int], start: int
) -> None:
    """The batch writes back ``_moved_shards``: with them applied, the stored shards are
    exactly the shards after the holds, and a hold that did not even them out moved one."""
    before = {"acc": shards}
    after = list(shards)
    for amount in amounts:
        try:
            moved_alone, _ = hold_on(after, amount, start % len(after))
        except InsufficientFunds:
            continue
        one = _moved_shards({"acc": after}, {"acc": moved_alone}, {"acc"})
        evened = any(a.posted != b.posted for a, b in zip(after, moved_alone, strict=True))
        assert len(one) == 1 or evened
        after = moved_alone
    written = {s.index: s for s in shards}
    for account, shard in _moved_shards(before, {"acc": after}, {"acc"}):
        assert account == "acc"
        written[shard.index] = shard
    assert [written[s.index] for s in shards] == after
