"""PayoutBatcher's gathering wait (payments/batching.py): after a large batch, a flusher
that finds only the first few of the next requests queued waits until half as many as
the last batch have come (or a short deadline passes), instead of committing one payout
while the rest wait behind it. A lone request, or one after small batches, never waits.

The batch's transaction is replaced by a recorder: only which requests go together is
under test. Nothing is timed: where a wait must not happen, the deadline is made an hour
long and a guard of a few seconds turns a wait into a failure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from amanat.payments import batching
from amanat.payments.batching import PayoutBatcher

GUARD_SECONDS = 10  # a bound on a hang, never a measurement


class _Recorded(PayoutBatcher):
    def __init__(self) -> None:
        super().__init__(None, None, None)  # type: ignore[arg-type]
        self.sizes: list[int] = []

    async def _commit(self, batch: list[Any]) -> dict[int, Any]:
        self.sizes.append(len(batch))
        return {i: (201, {"n": i}) for i in range(len(batch))}

    def after_batch(self, size: int, seconds: float, ended_ago: float) -> None:
        """As if a batch of ``size`` had taken ``seconds`` and ended ``ended_ago`` ago."""
        self._last_size, self._last_seconds = size, seconds
        self._last_end = asyncio.get_running_loop().time() - ended_ago


async def _request(batcher: PayoutBatcher) -> Any:
    async def prepare() -> Any:
        return object()

    record = type("Record", (), {"client_id": "cli", "key": str(id(prepare))})()
    return await batcher.create(record, lambda exc: (422, {}), prepare)  # type: ignore[arg-type]


@pytest.fixture
def no_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the requests' arrival can end a gathering wait."""
    monkeypatch.setattr(batching, "GATHER_LIMIT", 3600.0)


async def test_after_a_large_batch_the_next_one_gathers_before_it_commits(
    no_deadline: None,
) -> None:
    batcher = _Recorded()
    batcher.after_batch(size=8, seconds=3600.0, ended_ago=0.0)
    first = asyncio.ensure_future(_request(batcher))
    await asyncio.sleep(0)  # the flusher starts and finds one request: it waits
    assert batcher.sizes == []
    rest = [asyncio.ensure_future(_request(batcher)) for _ in range(3)]
    async with asyncio.timeout(GUARD_SECONDS):
        answers = await asyncio.gather(first, *rest)
    assert batcher.sizes == [4]  # half the last batch: the wait ends, one batch of four
    assert batcher.gathers == 1
    assert [status for status, _ in answers] == [201] * 4


@pytest.mark.parametrize(
    ("size", "ended_ago", "why"),
    [
        (0, 0.0, "no batch before"),
        (3, 0.0, "the last batch was small"),
        (8, 7200.0, "the last batch ended long ago"),
    ],
)
async def test_a_request_that_is_not_the_front_of_a_wave_does_not_wait(
    no_deadline: None, size: int, ended_ago: float, why: str
) -> None:
    batcher = _Recorded()
    batcher.after_batch(size=size, seconds=3600.0, ended_ago=ended_ago)
    async with asyncio.timeout(GUARD_SECONDS):
        status, _ = await _request(batcher)
    assert status == 201, why
    assert batcher.sizes == [1] and batcher.gathers == 0, why


async def test_a_wave_that_does_not_come_ends_the_wait_at_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A deadline of 1 ms; the last batch's own time stays long, so however slowly this
    # machine gets to the flusher, the batch before still counts as just ended.
    monkeypatch.setattr(batching, "GATHER_LIMIT", 0.001)
    batcher = _Recorded()
    batcher.after_batch(size=8, seconds=3600.0, ended_ago=0.0)
    async with asyncio.timeout(GUARD_SECONDS):
        status, _ = await _request(batcher)
    assert status == 201
    assert batcher.sizes == [1] and batcher.gathers == 1


async def test_a_queue_that_already_holds_a_quarter_of_the_last_batch_goes_at_once(
    no_deadline: None,
) -> None:
    batcher = _Recorded()
    batcher.after_batch(size=8, seconds=3600.0, ended_ago=0.0)
    async with asyncio.timeout(GUARD_SECONDS):
        answers = await asyncio.gather(*(_request(batcher) for _ in range(2)))
    assert batcher.sizes == [2] and batcher.gathers == 0
    assert len(answers) == 2
