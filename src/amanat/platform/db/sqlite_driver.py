"""SQLite's driver connection: aiosqlite's, made to run a write transaction inline and to
wait for the write lock without blocking.

aiosqlite runs every call on the connection's own thread and hands the result back to
the event loop: a cursor, an execute and a fetch are three trips per statement, and each
trip waits for the loop's next turn. Inside SQLite's one write lock those waits add up: a
batch of eight payouts took 37 ms under load, nearly all of it waiting for turns, while
the lock kept every other writer out. So a connection in a write transaction
(:attr:`HybridConnection.inline`, set by ``Database.write()``) runs its statements on the
loop's thread at once; they are short, indexed statements and the loop could only have
waited for them. COMMIT still goes to the connection's thread: its fsync is the one slow
call, and the loop serves other requests meanwhile.

A statement run on the loop's thread must never sleep in SQLite's busy handler, so the
connections have no busy timeout; a statement refused with ``SQLITE_BUSY`` (``BEGIN
IMMEDIATE`` while another process writes, a read during its WAL recovery) is retried
here with short asynchronous sleeps until ``busy_timeout`` has passed, then the refusal
stands (the caller's 503). A stale snapshot (``SQLITE_BUSY_SNAPSHOT``) is never retried:
waiting cannot help it. The short sleeps also make waiting processes fair: SQLite's own
handler sleeps up to 100 ms between tries, and a process that re-takes the lock at once
after each commit could keep another out for seconds.

Inline means a write transaction's statements block the loop while they run. They are
short, and the Python work around them blocks it the same way; a long one (a retention
sweep's deletes) holds the loop for what it would otherwise have held the write lock.

No library offers this: aiosqlite has no inline mode, and sqlite3 has no asynchronous
busy handler.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")

SQLITE_BUSY = 5
SQLITE_BUSY_SNAPSHOT = 517  # a stale read snapshot: waiting can never help
# Sleeps between tries for the write lock: short, since a commit takes a millisecond or two.
FIRST_RETRY_SECONDS = 0.0005
LONGEST_RETRY_SECONDS = 0.005
# The connection's calls that stay on its thread even inline: COMMIT's fsync, and closing.
_THREADED = frozenset({"commit", "close"})


def _waiting_may_help(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for a busy database in a way its busy handler would have
    waited out (the extended codes too, such as another process's WAL recovery)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == SQLITE_BUSY and code != SQLITE_BUSY_SNAPSHOT


class HybridConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs calls inline while :attr:`inline` is set, and
    waits for a busy database with asynchronous sleeps (see the module docstring)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], *, busy_timeout: float) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._thread.daemon = True  # as SQLAlchemy's dialect makes aiosqlite's
        self.busy_timeout = busy_timeout
        self.inline = False
        # Calls handed to the connection's thread, and those it has finished; each counter
        # is written by one thread only. An inline call waits its turn behind them (a task
        # canceled while its call was queued must not overlap it on the loop's thread).
        self._handed = 0
        self._finished = 0

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._run(fn, args, kwargs, direct=False)

    async def run_direct(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` given the sqlite3 connection, on the loop's thread whether or not a write
        transaction is open (behind any call still on the connection's thread, then there),
        a busy database waited out as for every call. For short indexed statements whose
        thread trip costs more than the statement (platform/db/sqlite_direct.py)."""

        def call() -> T:
            connection = self._connection
            assert connection is not None  # _ensure_open checked it
            return fn(connection)

        result: T = await self._run(call, (), {}, direct=True)
        return result

    async def _run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        direct: bool,
    ) -> Any:
        deadline: float | None = None
        pause = FIRST_RETRY_SECONDS
        while True:
            try:
                if self._handed == self._finished if direct else self._runs_inline(fn):
                    self._ensure_open()
                    return fn(*args, **kwargs)
                return await self._on_thread(fn, *args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not _waiting_may_help(exc):
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.busy_timeout
                if now >= deadline:
                    raise
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, LONGEST_RETRY_SECONDS)

    async def rollback(self) -> None:
        # The pool rolls back every connection it takes back; with no transaction open
        # (a committed write, a lookup) there is nothing to undo, and no trip to make.
        if self._idle_outside_a_transaction():
            return
        await super().rollback()

    def _idle_outside_a_transaction(self) -> bool:
        connection = self._connection
        return (
            connection is not None
            and self._handed == self._finished
            and not connection.in_transaction
        )

    def _ensure_open(self) -> None:
        """aiosqlite's own refusal of a closed connection, before anything is counted."""
        if not self._running or not self._connection:
            raise ValueError("Connection closed")

    def _runs_inline(self, fn: Callable[..., Any]) -> bool:
        if not self.inline or self._handed != self._finished:
            return False
        own = getattr(fn, "__self__", None) is self._connection
        return not (own and getattr(fn, "__name__", "") in _THREADED)

    async def _on_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def call() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                self._finished += 1

        self._ensure_open()
        self._handed += 1  # queued by the call below before it first awaits
        return await super()._execute(call)  # type: ignore[no-untyped-call]


def hybrid_creator(
    database: str, connect_kwargs: Mapping[str, Any], *, busy_timeout: float
) -> Callable[[], Awaitable[HybridConnection]]:
    """SQLAlchemy's ``async_creator``: a new :class:`HybridConnection` to ``database``.
    The sqlite3 connection is used from the loop's thread and the connection's own, one
    at a time, hence ``check_same_thread=False``."""
    kwargs = {**connect_kwargs, "check_same_thread": False}

    def connector() -> sqlite3.Connection:
        opened: sqlite3.Connection = sqlite3.connect(database, **kwargs)
        return opened

    async def create() -> HybridConnection:
        connection = HybridConnection(connector, busy_timeout=busy_timeout)
        await connection  # starts its thread and opens the database there
        return connection

    return create
