"""Counting the connections lookups take, for tests of reads that should take none."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.db.database import Database


class LookupSpy:
    """Counts the connections lookups take (``Database.lookup()`` entered) and how each
    ended: None, or the type of the error it ended with. ``before`` runs before each is
    taken (a pause, an error), as the pool might."""

    def __init__(
        self,
        db: Database,
        monkeypatch: pytest.MonkeyPatch,
        *,
        before: Callable[[], AbstractAsyncContextManager[None]] | None = None,
    ) -> None:
        self.entered = 0
        self.ended: list[type[BaseException] | None] = []
        real = db.lookup

        @asynccontextmanager
        async def counted() -> AsyncIterator[AsyncConnection]:
            self.entered += 1
            if before is not None:
                async with before():
                    pass
            try:
                async with real() as conn:
                    yield conn
            except BaseException as exc:
                self.ended.append(type(exc))
                raise
            self.ended.append(None)

        monkeypatch.setattr(db, "lookup", counted)


@asynccontextmanager
async def a_pause() -> AsyncIterator[None]:
    """As a pool that makes the caller wait a moment for its connection."""
    await asyncio.sleep(0.01)
    yield
