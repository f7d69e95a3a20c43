"""The deliverer's record batcher: what arrives while a batch is written goes into the
next one, every submitter gets its own result, and a failed batch fails only its own."""

from __future__ import annotations

import asyncio

import pytest

from amanat.webhooks.jobs import Batcher


async def test_items_submitted_during_a_flush_form_the_next_batch() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        batches.append(items)
        if len(batches) == 1:
            await release.wait()
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(flush, size=100)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(2, 6)]
    await asyncio.sleep(0)
    release.set()
    assert await first == 10
    assert [await r for r in rest] == [20, 30, 40, 50]
    assert batches == [[1], [2, 3, 4, 5]]


async def test_a_batch_is_at_most_size_items() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        batches.append(items)
        return items

    batcher: Batcher[int, int] = Batcher(flush, size=3)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(7))) == list(range(7))
    assert all(len(b) <= 3 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(7))


async def test_a_failed_flush_fails_its_own_submitters_only() -> None:
    calls = 0

    async def flush(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database gone")
        return items

    batcher: Batcher[int, int] = Batcher(flush, size=10)
    with pytest.raises(RuntimeError):
        await batcher.submit(1)
    assert await batcher.submit(2) == 2


async def test_a_lingering_batcher_gathers_what_arrives_meanwhile_into_one_flush() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        batches.append(items)
        return items

    batcher: Batcher[int, int] = Batcher(flush, size=10, linger_seconds=0.05)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 4)]
    assert await first == 0
    assert [await r for r in later] == [1, 2, 3]
    assert batches == [[0, 1, 2, 3]]


async def test_a_full_batch_does_not_linger() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        batches.append(items)
        return items

    # A linger longer than any test run: a full batch must be flushed without it.
    batcher: Batcher[int, int] = Batcher(flush, size=3, linger_seconds=3600)
    submitted = [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
    async with asyncio.timeout(30):
        assert [await s for s in submitted] == [0, 1, 2]
    assert batches == [[0, 1, 2]]
