"""wait_for_stop: returns when the event is set or the time is up, and never swallows the
caller's cancellation."""

from __future__ import annotations

import asyncio

import pytest

from amanat.kernel.waiting import wait_for_stop


async def test_returns_at_once_when_stopped() -> None:
    stop = asyncio.Event()
    stop.set()
    async with asyncio.timeout(5):  # a guard: the wait below must not take its hour
        await wait_for_stop(stop, 3600)


async def test_returns_when_the_time_is_up_without_a_stop() -> None:
    stop = asyncio.Event()
    await wait_for_stop(stop, 0)
    assert not stop.is_set()


async def test_a_cancellation_as_the_stop_arrives_still_cancels() -> None:
    stop = asyncio.Event()
    waiting = asyncio.ensure_future(wait_for_stop(stop, 3600))
    await asyncio.sleep(0)
    stop.set()  # the wait is ending...
    waiting.cancel()  # ...and the caller is canceled in the same step
    with pytest.raises(asyncio.CancelledError):
        await waiting
