"""The in-process counters' clean-up runs at most once a second, not on every hit, and a
counter still ends with its window."""

from __future__ import annotations

import asyncio
import time

import pytest
from limits import RateLimitItemPerSecond
from limits.aio.strategies import FixedWindowRateLimiter

from amanat.platform.ratelimit.limiter import Policy, RateLimiter
from amanat.platform.ratelimit.memory_storage import SweptMemoryStorage


async def test_a_thousand_keys_hit_start_one_sweep_not_a_thousand() -> None:
    storage = SweptMemoryStorage(sweep_seconds=60)
    limiter = FixedWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(5, 60)
    for n in range(1000):
        assert await limiter.hit(item, f"client-{n}")
    assert storage.sweeps_started == 1, "limits' hook was called, once"


async def test_a_counter_ends_with_its_window_without_a_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fake wall clock (limits' storage reads time.time), as in test_ratelimit.py: on a
    # slow machine the real 1 s window could roll over between the first hits.
    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    storage = SweptMemoryStorage(sweep_seconds=3600)
    limiter = FixedWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(2, 1)
    assert await limiter.hit(item, "k") and await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")
    await asyncio.sleep(0)  # the one sweep runs now, before the window ends
    now[0] += 1.1
    assert await limiter.hit(item, "k"), "the window ended: a fresh count"
    assert storage.sweeps_started == 1


async def test_the_platform_limiter_uses_it_for_memory() -> None:
    limiter = RateLimiter("memory://", {"read": Policy("read", 3, 60)})
    assert isinstance(limiter._storage, SweptMemoryStorage)
    decisions = [await limiter.hit("read", "cli_a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
