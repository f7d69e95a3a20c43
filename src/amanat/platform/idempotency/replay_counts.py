"""How often a key's stored answer was given again, counted in memory and written a
moment later, many keys per transaction.

A replay is a read: answering one must not cost a commit. Counting each replay with an
UPDATE of its own made every replay a durable write (a WAL flush on PostgreSQL), which
halved the replays a server could answer. Here a replay only adds to a dictionary; a
flush, scheduled ``delay`` seconds after the first count it finds waiting, writes every
waiting count in key order, so two processes' flushes never deadlock, in transactions of
at most ``CHUNK`` keys, so a request that needs one of those rows (a retry claiming its
key) waits at most for one short transaction; on PostgreSQL a row another transaction
holds is skipped rather than waited for. The flush runs in a context of its own, not in
that of the request whose replay started it.

The count is best effort, as the timeline that shows it says: counts waiting in a process
that is killed are lost (at most ``delay`` seconds of them), a transaction that fails is
logged and its counts dropped, rows another transaction holds are skipped, and at most
``max_waiting`` keys wait at once (further replays of new keys go uncounted until the next
flush). A replay's answer never waits for any of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from datetime import datetime

import structlog

from amanat.kernel.clock import Clock
from amanat.platform.db.ports import UnitOfWork
from amanat.platform.idempotency.ports import IdempotencyTx

log = structlog.get_logger("amanat.idempotency")

FLUSH_DELAY_SECONDS = 0.25
MAX_WAITING = 50_000
CHUNK = 200


class ReplayCounts:
    def __init__(
        self,
        transactions: UnitOfWork[IdempotencyTx],
        clock: Clock,
        *,
        delay: float = FLUSH_DELAY_SECONDS,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._delay = delay
        self._max_waiting = max_waiting
        # (client_id, key) -> (replays not yet written, time of the last one)
        self._waiting: dict[tuple[str, str], tuple[int, datetime]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[int] | None = None
        self._closed = False

    @property
    def waiting(self) -> int:
        """Keys with replays counted but not yet written."""
        return len(self._waiting)

    def add(self, client_id: str, key: str) -> bool:
        """Count one replay of the key; whether it was taken (False: too many waiting)."""
        if self._closed:
            return False
        slot = (client_id, key)
        earlier = self._waiting.get(slot)
        if earlier is None and len(self._waiting) >= self._max_waiting:
            return False
        self._waiting[slot] = ((earlier[0] if earlier else 0) + 1, self._clock.now())
        if self._timer is None and self._flushing is None:
            with contextlib.suppress(RuntimeError):  # no running loop: the next flush() writes it
                self._schedule(asyncio.get_running_loop())
        return True

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_later(self._delay, self._start_flush, context=contextvars.Context())

    def _start_flush(self) -> None:
        self._timer = None
        self._flushing = asyncio.get_running_loop().create_task(self._flush_then_reschedule())

    async def _flush_then_reschedule(self) -> int:
        try:
            return await self._write_waiting()
        finally:
            self._flushing = None
            if self._waiting and self._timer is None and not self._closed:
                self._schedule(asyncio.get_running_loop())

    async def flush(self) -> int:
        """Write every count waiting now (and wait for a flush already running); how many
        keys this call wrote."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flushing)
        return await self._write_waiting()

    async def close(self) -> None:
        """At shutdown: write what waits; later replays go uncounted."""
        self._closed = True
        await self.flush()

    async def _write_waiting(self) -> int:
        if not self._waiting:
            return 0
        batch, self._waiting = self._waiting, {}
        rows = [(client_id, key, n, at) for (client_id, key), (n, at) in sorted(batch.items())]
        written = 0
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            try:
                async with self._tx.write() as tx:
                    await tx.idempotency.count_replays(chunk)
            except Exception:
                log.warning("idempotency_replays_not_counted", keys=len(chunk), exc_info=True)
                continue
            written += len(chunk)
        return written
