"""argon2 runs at most one hash per core at a time (each needs 19 MiB), off the loop."""

from __future__ import annotations

import asyncio
import os
import threading

from amanat.identity.adapters import passwords
from amanat.identity.adapters.passwords import Argon2Hasher


async def test_hashes_run_on_their_own_pool_one_per_core() -> None:
    hasher = Argon2Hasher(time_cost=1, memory_cost=8)
    running = 0
    most = 0
    names: set[str] = set()
    lock = threading.Lock()
    release = threading.Event()

    def slow_verify(hashed: str, secret: str) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            names.add(threading.current_thread().name)
        release.wait(timeout=10)
        with lock:
            running -= 1
        return True

    class SlowHasher:
        verify = staticmethod(slow_verify)

    hasher._hasher = SlowHasher()  # type: ignore[assignment]
    cores = os.cpu_count() or 2
    checks = [asyncio.create_task(hasher.verify("h", "s")) for _ in range(cores + 4)]
    for _ in range(1000):  # wait until the pool is full
        await asyncio.sleep(0.01)
        with lock:
            if running >= cores:
                break
    await asyncio.sleep(0.05)  # had the pool more threads, more hashes would start now
    release.set()
    assert all(await asyncio.gather(*checks))
    assert most == cores
    assert all(name.startswith("argon2") for name in names)
    assert passwords._POOL._max_workers == cores


async def test_real_hash_and_verify() -> None:
    hasher = Argon2Hasher(time_cost=1, memory_cost=8)
    hashed = await hasher.hash("s3cret")
    assert await hasher.verify(hashed, "s3cret")
    assert not await hasher.verify(hashed, "wrong")
    assert not await hasher.verify("not a hash", "s3cret")
