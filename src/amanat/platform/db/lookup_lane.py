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
- A connection is handed on only if the pool itself would hand it out: not older than
  ``recycle_seconds`` (the pool's ``pool_recycle``), and not opened before the pool's
  last invalidation, which SQLAlchemy (and the raw paths) set on any lost connection,
  whoever met it. A lost connection in a lookup also empties the lane at once.
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
        self._idle: list[AsyncConnection] = []
        self._stale: list[AsyncConnection] = []
        self._closed = False
        self.waiting = 0
        """Tasks about to take a connection from the pool or waiting for one now
        (``Database.about_to_connect`` counts them). A connection checked in wakes a
        waiting task, which takes it only when it next runs: until then the pool looks
        less than full while that task and any other still wait. A task opening a new
        connection is counted here and in the pool's checked-out count at once, which
        only makes the lane keep less for that moment."""

    def take(self) -> AsyncConnection | None:
        """The most recently used idle connection that is still usable, or None (open
        one on :attr:`engine`). One the pool would not hand out again (older than the
        recycle age, or opened before the pool was invalidated by a lost connection on
        any path) is set aside for :meth:`stale`, for the caller to close."""
        while self._idle:
            conn = self._idle.pop()
            if self._usable(conn):
                return conn
            self._stale.append(conn)
        return None

    def keep(self, conn: AsyncConnection) -> bool:
        """Take ``conn`` back after a clean lookup; False (close it) when the lane is full
        or closed, or the pool has no connection left for anyone else (counting those
        already promised to a waiting task): a writer waiting for one then gets this one,
        and the lane fills again once the pressure is off."""
        if self._closed or len(self._idle) >= self.size or not self._usable(conn):
            return False
        if self._shortfall() >= 0:
            return False
        self._idle.append(conn)
        return True

    def give_back(self) -> list[AsyncConnection]:
        """One idle connection, for the caller to close into the pool, when the pool has
        none left for every task in :attr:`waiting` (the caller among them): a writer
        (or a lookup) about to wait for one gets it instead."""
        if not self._idle or self._shortfall() <= 0:
            return []
        return [self._idle.pop(0)]  # the least recently used

    def set_aside(self, conn: AsyncConnection) -> None:
        """A connection taken but not used (its lookup was cancelled) that :meth:`keep`
        refused: closed with the stale ones, by the next lookup or :meth:`drain`."""
        self._stale.append(conn)

    def drain(self, *, close: bool = False) -> list[AsyncConnection]:
        """Every idle connection and every stale one, for the caller to close; with
        ``close`` the lane keeps nothing from now on (the pool is being disposed)."""
        self._closed = self._closed or close
        drained = self._idle + self.stale()
        self._idle = []
        return drained

    def stale(self) -> list[AsyncConnection]:
        stale, self._stale = self._stale, []
        return stale

    def _shortfall(self) -> int:
        """Connections checked out or wanted (:attr:`waiting`) beyond the pool's size:
        0, the pool is exactly spoken for; below 0, it has some to spare. A pool of
        another kind (tests) always has."""
        pool = self.engine.sync_engine.pool
        if not isinstance(pool, QueuePool):
            return -1
        return pool.checkedout() + self.waiting - pool.size()

    @property
    def idle(self) -> int:
        return len(self._idle)

    def _usable(self, conn: AsyncConnection) -> bool:
        # The pool's own test at checkout (pool_recycle, and every connection opened
        # before its last invalidation), which a connection kept here never goes through.
        if conn.closed or conn.invalidated:
            return False
        sync = conn.sync_connection
        record = getattr(sync.connection, "_connection_record", None) if sync else None
        if record is None:
            return False
        pool = self.engine.sync_engine.pool
        started = float(record.starttime)
        return started > pool._invalidate_time and time.time() - started < self._recycle
