"""limits' in-process counter storage, with its clean-up run at most once a second.

:class:`limits.aio.storage.MemoryStorage` starts a sweep over *every* key it holds (a
``time.time()`` call per key, and a thread hop per moving-window key) whenever no sweep is
running, that is on nearly every hit under load: O(keys) per request. With a thousand
partners' counters that was the largest single cost of an authenticated GET, about a
tenth of it. Whether a counter has expired is also checked on each read of that key
(``get``), so the sweep only frees memory; running it once per ``SWEEP_SECONDS`` changes
no decision, and a key's counter still ends with its window.

The override hooks limits' name-mangled ``__schedule_expiry`` (pinned in the lock file);
tests/unit/platform/ratelimit/test_memory_storage.py fails if that hook stops being
called, so an upgrade that renames it cannot silently bring the O(keys) sweep back.
"""

from __future__ import annotations

import time

from limits.aio.storage import MemoryStorage

SWEEP_SECONDS = 1.0


class SweptMemoryStorage(MemoryStorage):
    def __init__(
        self, *, sweep_seconds: float = SWEEP_SECONDS, wrap_exceptions: bool = False
    ) -> None:
        super().__init__(wrap_exceptions=wrap_exceptions)
        self.sweep_seconds = sweep_seconds
        self.sweeps_started = 0
        self._next_sweep = 0.0

    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_seconds
        self.sweeps_started += 1
        await MemoryStorage._MemoryStorage__schedule_expiry(self)  # type: ignore[attr-defined]
