"""Announce a change from inside the transaction that makes it.

PostgreSQL's NOTIFY is transactional: listeners hear it when (and only if) the
transaction commits, in commit order. The process making the change does not wait for
its own notification to come back: its feed hears of the change at once (before the
commit; forgetting too early is harmless), so its very next request sees the change.
SQLite has no listeners; nothing is sent.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.invalidation.ports import CHANNEL

_NOTIFY = sa.text("SELECT pg_notify(:channel, :payload)")
# The feed of each engine in this process (tests run several "processes" in one).
_local: weakref.WeakKeyDictionary[Any, Callable[[str, str], None]] = weakref.WeakKeyDictionary()


def hear_locally(engine: sa.Engine, heard: Callable[[str, str], None]) -> None:
    """Have ``heard(topic, key)`` called for every change announced on ``engine``."""
    _local[engine] = heard


async def announce(conn: AsyncConnection, topic: str, key: str = "") -> None:
    if conn.dialect.name != "postgresql":
        return
    await conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": f"{topic}:{key}"[:7999]})
    heard = _local.get(conn.engine.sync_engine)
    if heard is not None:
        heard(topic, key)
