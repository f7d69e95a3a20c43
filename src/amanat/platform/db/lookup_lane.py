"""A few pooled PostgreSQL connections kept open in autocommit for ``Database.lookup()``.

Most requests read one row outside any transaction (a payment by id, a stored idempotent
answer). Through ``engine.connect()`` each of them built SQLAlchemy's connection objects,
checked a connection out of the pool, set and then reset its isolation level and checked
it back in: about 100 us of CPU per request, more than the read itself (measured in
process: 159-187 us for a lookup and one raw read, 61-75 us for the same read on the
pool's connection directly). The lane keeps up to ``size`` of those AsyncConnections
checked out and already in autocommit, and hands them from one lookup to the next.

What keeps it safe:

- Only a connection whose lookup ended cleanly comes back; one whose block raised (an
  error, a cancellation) is closed through SQLAlchemy, so nothing half-done is reused.
- A SQLAlchemy statement on it begins SQLAlchemy's own bookkeeping transaction (nothing
  on the server in autocommit); it is ended before the connection comes back.
- A lost connection empties the lane: its other connections were opened before the loss
  and go back to the pool, which replaces them (SQLAlchemy's pool invalidation).
- A connection older than ``recycle_seconds`` goes back to the pool instead, as the
  pool's own ``pool_recycle`` would have it.
- The lane's connections count against ``POOL_SIZE``, and it may keep all of them: a
  saturated process holds a lookup's connection until its task runs again, so many
  lookups are in flight at once. It keeps none while the pool has no connection left for
  anyone else, and whoever is about to wait for the pool takes one of the lane's idle
  connections instead (``Database`` closes it into the pool first), so a writer never
  waits on connections sitting idle here.

No library offers this: SQLAlchemy's pool hands out DB-API connections, and the cost is
in building the AsyncConnection around one each time.
"""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool


class LookupLane:
    def __init__(self, engine: AsyncEngine, *, size: int, recycle_seconds: float) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.size = size
        self._recycle = recycle_seconds
        self._idle: list[tuple[AsyncConnection, float]] = []  # (connection, opened at)
        self._stale: list[AsyncConnection] = []

    def take(self) -> tuple[AsyncConnection, float] | None:
        """The most recently used idle connection that is still usable, or None (open
        one on :attr:`engine`). One too old or no longer valid is dropped: it was never
        in a transaction and its close only hands it back to the pool, so the caller
        closes what :meth:`stale` gives."""
        now = time.monotonic()
        while self._idle:
            conn, opened = self._idle.pop()
            if conn.closed or conn.invalidated or now - opened >= self._recycle:
                self._stale.append(conn)
                continue
            return conn, opened
        return None

    def keep(self, conn: AsyncConnection, opened: float) -> bool:
        """Take ``conn`` back after a clean lookup; False (close it) when the lane is full
        or the pool has no connection left for anyone else: a writer waiting for one
        then gets this one, and the lane fills again once the pressure is off."""
        if len(self._idle) >= self.size or conn.closed or conn.invalidated:
            return False
        pool = self.engine.sync_engine.pool
        if isinstance(pool, QueuePool) and pool.checkedout() >= pool.size():
            return False
        self._idle.append((conn, opened))
        return True

    def give_back(self) -> list[AsyncConnection]:
        """One idle connection, for the caller to close into the pool, when the pool has
        none left: a writer (or a lookup) about to wait for one gets it instead."""
        pool = self.engine.sync_engine.pool
        if not self._idle or not isinstance(pool, QueuePool):
            return []
        if pool.checkedout() < pool.size():
            return []
        conn, _ = self._idle.pop(0)  # the least recently used
        return [conn]

    def drain(self) -> list[AsyncConnection]:
        """Every idle connection and every stale one, for the caller to close."""
        drained = [conn for conn, _ in self._idle] + self.stale()
        self._idle.clear()
        return drained

    def stale(self) -> list[AsyncConnection]:
        stale, self._stale = self._stale, []
        return stale

    @property
    def idle(self) -> int:
        return len(self._idle)
