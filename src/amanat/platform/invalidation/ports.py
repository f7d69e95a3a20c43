"""What a cache needs from the change feed: whether it is live, and what changed since."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# One channel for every topic; the payload is ``<topic>:<key>``.
CHANNEL = "amanat_changes"


class ChangeFeed(Protocol):
    """Notifications of committed changes, in commit order, while :attr:`live`.

    A cache may serve a value only while the feed is live and no change of the value's
    topic arrived since the value was read (compare :meth:`epoch` before and after), so a
    notification lost while the feed was down can never leave a stale value behind.
    """

    @property
    def live(self) -> bool:
        """Listening now: every change committed from here on will be heard."""
        ...

    def epoch(self, topic: str) -> int:
        """A number that changes whenever a change of ``topic`` arrives, and whenever the
        feed connects or disconnects."""
        ...

    def subscribe(self, topic: str, handler: Callable[[str], None]) -> None:
        """Call ``handler(key)`` for each change of ``topic`` (and ``handler("")`` when
        the feed connects or disconnects: everything may have changed)."""
        ...

    def start(self) -> None:
        """Begin listening in the background (idempotent; a no-op where there is no feed)."""
        ...


class NoChangeFeed:
    """SQLite (one server process): never live, so caches that need a feed stay off."""

    live = False

    def epoch(self, topic: str) -> int:
        return 0

    def subscribe(self, topic: str, handler: Callable[[str], None]) -> None:
        return None

    def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
