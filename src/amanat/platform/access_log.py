"""Who looked at what: every console page view, search, reveal and action, and every
operator API request.

The console's route class writes it after each handler runs and before the page is sent,
so no page leaves the server unlogged (if the write fails the operator gets an error page
instead of the data); the operator API's session check writes it before the handler runs
(a failed write answers 503). Searches by a personal identifier are logged with its
kind and a masked form (``phone ***4567``), never the value. Compliance, admins and
auditors browse the log (``access_log.read``); reveals of personal data are in the audit
chain too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.kernel.clock import Clock
from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime
from amanat.platform.unit_of_work.sql import SqlTransactions

# Every page an operator views and every search they make: identity, time, address and
# what was viewed. Searches by a personal identifier record its kind and a masked form,
# never the value. High volume, so kept apart from the audit chain; reveals of personal
# data go to the audit chain as well.
console_access_log = sa.Table(
    "console_access_log",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("operator_id", sa.String(40), nullable=False),
    sa.Column("operator_email", sa.String(254), nullable=False),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(200), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("action", sa.String(24), nullable=False),  # view | search | reveal | action
    sa.Column("screen", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(200), nullable=True),
    sa.Column("detail", sa.String(500), nullable=True),
)
sa.Index("ix_console_access_log_at", console_access_log.c.at)
sa.Index(
    "ix_console_access_log_operator_at", console_access_log.c.operator_id, console_access_log.c.at
)
sa.Index("ix_console_access_log_subject", console_access_log.c.subject)


ACTIONS = ("view", "search", "reveal", "action", "denied")


@dataclass(frozen=True, slots=True)
class AccessEntry:
    operator_id: str
    operator_email: str
    action: str
    screen: str
    subject: str | None = None
    detail: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AccessRecord:
    id: int
    at: datetime
    operator_id: str
    operator_email: str
    action: str
    screen: str
    subject: str | None
    detail: str | None
    ip: str | None
    user_agent: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class AccessFilter:
    operator: str | None = None
    """An operator id or email."""
    action: str | None = None
    subject: str | None = None
    before_id: int | None = None


def _clip(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


class SqlAccessLogRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, entry: AccessEntry, at: datetime) -> None:
        await self._conn.execute(
            console_access_log.insert().values(
                at=at,
                operator_id=entry.operator_id[:40],
                operator_email=entry.operator_email[:254],
                action=entry.action[:24],
                screen=entry.screen[:40],
                subject=_clip(entry.subject, 200),
                detail=_clip(entry.detail, 500),
                ip=_clip(entry.ip, 64),
                user_agent=_clip(entry.user_agent, 200),
                request_id=_clip(entry.request_id, 64),
            )
        )

    async def browse(self, where: AccessFilter, limit: int) -> list[AccessRecord]:
        t = console_access_log
        query = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        if where.operator:
            query = query.where(
                sa.or_(t.c.operator_id == where.operator, t.c.operator_email == where.operator)
            )
        if where.action:
            query = query.where(t.c.action == where.action)
        if where.subject:
            query = query.where(t.c.subject == where.subject)
        if where.before_id is not None:
            query = query.where(t.c.id < where.before_id)
        rows = (await self._conn.execute(query)).mappings().all()
        return [AccessRecord(**dict(row)) for row in rows]


class AccessLog:
    def __init__(self, transactions: SqlTransactions, clock: Clock) -> None:
        self._tx = transactions
        self._clock = clock

    async def record(self, entry: AccessEntry) -> None:
        async with self._tx.write() as tx:
            await tx.access_log.add(entry, self._clock.now())

    async def browse(self, where: AccessFilter, limit: int = 50) -> tuple[list[AccessRecord], bool]:
        """Newest first; the flag says whether older entries remain."""
        async with self._tx.read() as tx:
            rows = await tx.access_log.browse(where, limit + 1)
        return rows[:limit], len(rows) > limit


class AccessLogRows:
    """Retention class ``console_access_log``: entries past their keep time."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def due(self, cutoff: datetime, fetch: int) -> list[str]:
        t = console_access_log
        rows = (
            await self._conn.execute(sa.select(t.c.id).where(t.c.at < cutoff).limit(fetch))
        ).all()
        return [str(r[0]) for r in rows]

    async def delete(self, ids: list[str]) -> int:
        t = console_access_log
        result = await self._conn.execute(t.delete().where(t.c.id.in_([int(i) for i in ids])))
        return int(result.rowcount or 0)
