"""The PostgreSQL change feed: one LISTEN connection per process, reconnecting.

The connection is its own (not from the pool) and lives in a background task started by
the first cache that wants it. While it is down the feed is not :attr:`live`, and every
subscriber is told everything may have changed, so caches empty themselves and read from
the database until it is back; each (re)connection bumps every epoch as well, because a
change committed while nobody listened was never heard.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from amanat.platform.invalidation.notify import hear_locally
from amanat.platform.invalidation.ports import CHANNEL

log = structlog.get_logger("amanat.invalidation")

APPLICATION_NAME = "amanat-change-feed"
# A silent network loss (or a feed that stopped hearing) is noticed by a notification
# round trip this often, and a failed connection retried after at most the longest backoff.
PING_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 10.0
BACKOFF_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
BARRIER = "barrier"


class PostgresChangeFeed:
    def __init__(self, engine: AsyncEngine) -> None:
        # asyncpg's own connect takes the engine's URL without the driver name.
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        hear_locally(engine.sync_engine, self._heard)
        self._live = False
        self._connection_epoch = 0
        self._epochs: dict[str, int] = defaultdict(int)
        self._handlers: dict[str, list[Callable[[str], None]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._barriers: dict[str, asyncio.Future[None]] = {}
        self._conn: Any = None
        self._connected = asyncio.Event()
        self._closing = False
        self._sending = asyncio.Lock()

    @property
    def live(self) -> bool:
        return self._live

    def epoch(self, topic: str) -> int:
        return self._connection_epoch + self._epochs[topic]

    def subscribe(self, topic: str, handler: Callable[[str], None]) -> None:
        self._handlers[topic].append(handler)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._closing = False  # a feed closed and started again listens again
            # A fresh context: the feed outlives the request that started it, whose ids
            # (bound for logging) must not follow it.
            self._task = asyncio.get_running_loop().create_task(
                self._run(), context=contextvars.Context()
            )

    async def wait_live(self) -> None:
        """Until the feed is listening (tests and tools; requests never wait for it)."""
        self.start()
        await self._connected.wait()

    async def barrier(self) -> None:
        """Return once every change committed before this call has been heard.

        Notifications arrive in commit order, so a notification of our own, sent now,
        comes back after all of them. For tests, which must not sleep and hope.
        """
        await self.wait_live()
        async with asyncio.timeout(PING_SECONDS):
            await self._round_trip(self._conn)

    async def _round_trip(self, conn: Any) -> None:
        token = uuid.uuid4().hex
        arrived = asyncio.get_running_loop().create_future()
        self._barriers[token] = arrived
        try:
            async with self._sending:  # one statement at a time on the connection
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{BARRIER}:{token}")
            await arrived
        finally:
            self._barriers.pop(token, None)

    async def close(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        # Canceled until it has ended: a cancellation that lands as an await completes
        # can be lost (asyncio.wait_for on Python 3.11 swallowed one, and the feed went on
        # pinging while its container's close waited forever); ``_closing`` stops the
        # loops as well.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.warning("change_feed_close_failed", error=type(task.exception()).__name__)
        self._down()

    # -- the background task -------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            try:
                await self._listen()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                log.warning("change_feed_down", error=type(exc).__name__)
            finally:
                self._down()
            await asyncio.sleep(BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)])
            failures += 1

    async def _listen(self) -> None:
        conn = await asyncpg.connect(
            self._dsn,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={"application_name": APPLICATION_NAME},
        )
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(CHANNEL, self._on_notification)
            # Live only once a notification of our own has come back: a connection that
            # cannot hear (a transaction-mode pooler in between) never turns caching on.
            async with asyncio.timeout(PING_SECONDS):
                await self._round_trip(conn)
            self._conn = conn
            # LISTEN is in effect: from here on every commit is heard. What was committed
            # while nobody listened was not: every cached value is suspect.
            self._everything_changed()
            self._live = True
            self._connected.set()
            log.info("change_feed_live")
            while not lost.is_set() and not self._closing:
                try:
                    async with asyncio.timeout(PING_SECONDS):
                        await lost.wait()
                except TimeoutError:
                    # Still hearing? A silent network loss fails this, and we reconnect.
                    async with asyncio.timeout(PING_SECONDS):
                        await self._round_trip(conn)
        finally:
            self._down()
            if not conn.is_closed():
                conn.terminate()

    def _down(self) -> None:
        if self._live and not self._closing:
            log.warning("change_feed_lost")
        was_live, self._live = self._live, False
        self._connected.clear()
        self._conn = None
        if was_live:
            self._everything_changed()

    def _everything_changed(self) -> None:
        self._connection_epoch += 1
        for handlers in self._handlers.values():
            for handler in handlers:
                handler("")

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        topic, _, key = payload.partition(":")
        if topic == BARRIER:
            arrived = self._barriers.get(key)
            if arrived is not None and not arrived.done():
                arrived.set_result(None)
            return
        self._heard(topic, key)

    def _heard(self, topic: str, key: str) -> None:
        self._epochs[topic] += 1
        for handler in self._handlers.get(topic, ()):
            handler(key)
