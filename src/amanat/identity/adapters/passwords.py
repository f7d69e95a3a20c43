"""Slow hashing (argon2id) for operator passwords, off the event loop.

Hashes run on one pool per process with a thread per core. Each hash needs 19 MiB, and
on the default executor (up to cores + 4 threads, shared with everything else) a burst of
token requests ran six at once: no faster on two cores, and the memory stayed with the
process afterwards (peak API RSS 250-340 MB in the bench's token scenario).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

T = TypeVar("T")

_POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="argon2")


class Argon2Hasher:
    def __init__(
        self, *, time_cost: int = 2, memory_cost: int = 19_456, parallelism: int = 1
    ) -> None:
        # OWASP's argon2id minimum (19 MiB, t=2, p=1): slow for attackers, bearable for a
        # token endpoint that sees each client once per token lifetime.
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(_POOL, work)

    async def hash(self, secret: str) -> str:
        return await self._run(lambda: self._hasher.hash(secret))

    def needs_rehash(self, hashed: str) -> bool:
        try:
            return bool(self._hasher.check_needs_rehash(hashed))
        except InvalidHashError:
            return False

    async def verify(self, hashed: str, secret: str) -> bool:
        def check() -> bool:
            try:
                return bool(self._hasher.verify(hashed, secret))
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await self._run(check)
