"""Replay counts wait in memory and are written together: none lost while the writes
work, none written twice, bounded while they do not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amanat.kernel.clock import FrozenClock
from amanat.platform.idempotency import replay_counts
from amanat.platform.idempotency.replay_counts import ReplayCounts


class _Repository:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.writes: list[list[tuple[str, str, int, datetime]]] = []
        self.failing = False

    async def count_replays(self, counts: list[tuple[str, str, int, datetime]]) -> None:
        if self.failing:
            raise RuntimeError("database down")
        self.writes.append(counts)
        for client_id, key, n, _at in counts:
            self.counts[(client_id, key)] = self.counts.get((client_id, key), 0) + n


class _Transactions:
    def __init__(self) -> None:
        self.idempotency = _Repository()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Any]:
        yield self


def _counts(delay: float = 60.0, max_waiting: int = 1000) -> tuple[ReplayCounts, _Repository]:
    transactions = _Transactions()
    counts = ReplayCounts(transactions, FrozenClock(), delay=delay, max_waiting=max_waiting)  # type: ignore[arg-type]
    return counts, transactions.idempotency


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xyz"), st.booleans())))
def test_every_replay_is_written_once(steps: list[tuple[str, str, bool]]) -> None:
    async def play() -> None:
        counts, repository = _counts()
        expected: dict[tuple[str, str], int] = {}
        for client_id, key, flush_after in steps:
            assert counts.add(client_id, key)
            expected[(client_id, key)] = expected.get((client_id, key), 0) + 1
            if flush_after:
                await counts.flush()
        await counts.close()
        assert repository.counts == expected
        assert counts.waiting == 0
        for write in repository.writes:
            assert write == sorted(write), "keys in one order, so two flushes never deadlock"

    asyncio.run(play())


async def test_counts_are_written_by_themselves_a_moment_later() -> None:
    counts, repository = _counts(delay=0.01)
    for _ in range(3):
        counts.add("cli_a", "k1")
    counts.add("cli_a", "k2")
    for _ in range(200):
        if repository.counts:
            break
        await asyncio.sleep(0.01)
    assert repository.counts == {("cli_a", "k1"): 3, ("cli_a", "k2"): 1}
    assert len(repository.writes) == 1, "one write for every key waiting"


async def test_a_failed_write_is_dropped_and_the_next_one_works() -> None:
    counts, repository = _counts()
    counts.add("cli_a", "k1")
    repository.failing = True
    assert await counts.flush() == 0
    repository.failing = False
    counts.add("cli_a", "k1")
    assert await counts.flush() == 1
    assert repository.counts == {("cli_a", "k1"): 1}


async def test_at_most_max_waiting_keys_wait() -> None:
    counts, repository = _counts(max_waiting=2)
    assert counts.add("cli_a", "k1") and counts.add("cli_a", "k2")
    assert not counts.add("cli_a", "k3"), "a new key beyond the bound goes uncounted"
    assert counts.add("cli_a", "k1"), "a key already waiting is still counted"
    await counts.flush()
    assert repository.counts == {("cli_a", "k1"): 2, ("cli_a", "k2"): 1}
    assert counts.add("cli_a", "k3")


async def test_a_large_flush_is_written_in_short_transactions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay_counts, "CHUNK", 3)
    counts, repository = _counts()
    for n in range(8):
        counts.add("cli_a", f"k{n}")
    assert await counts.flush() == 8
    assert [len(write) for write in repository.writes] == [3, 3, 2]


async def test_after_close_nothing_is_counted_or_scheduled() -> None:
    counts, repository = _counts(delay=0.01)
    counts.add("cli_a", "k1")
    await counts.close()
    assert not counts.add("cli_a", "k2")
    await asyncio.sleep(0.05)
    assert repository.counts == {("cli_a", "k1"): 1}
    assert counts.waiting == 0
