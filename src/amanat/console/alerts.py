"""The alert inbox: what needs an operator now, from every capability's alert source,
and who has taken each in hand.

Alerts are computed from the current state each time (:mod:`amanat.kernel.alerts`); only
acknowledgements are stored (``alert_acknowledgements``, one row per alert key). An
acknowledgement belongs to one occurrence: one made before the alert's ``since`` is of an
earlier occurrence of the same key (the condition cleared and came back), so the alert
shows as not acknowledged again and a new acknowledgement replaces the old one. The first
acknowledgement of an occurrence stands; a second is refused.

Acknowledging is audited (``alert.acknowledged``, with the note's length and the alert's
kind, never the note) in the same transaction that stores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.console.tables import alert_acknowledgements
from amanat.kernel.alerts import Alert, AlertSource, Severity
from amanat.kernel.clock import Clock, format_timestamp
from amanat.kernel.errors import Conflict, InvalidInput, NotFound
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.dialect import insert_if_absent
from amanat.platform.unit_of_work.sql import SqlTransactions

logger = structlog.get_logger("amanat.console")

MAX_NOTE = 1000
AUDIT_TARGET_WIDTH = 64  # a longer key is cut in target_id; the payload keeps it whole
SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1}


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    alert_key: str
    operator_id: str
    operator_name: str
    note: str
    at: datetime


@dataclass(frozen=True, slots=True)
class InboxItem:
    alert: Alert
    source: str
    acknowledgement: Acknowledgement | None = None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledgement is not None


@dataclass(frozen=True, slots=True)
class Inbox:
    at: datetime
    items: list[InboxItem]
    unavailable: list[str] = field(default_factory=list)
    """Sources that could not answer (their alerts are missing from the list)."""

    @property
    def open(self) -> list[InboxItem]:
        return [i for i in self.items if not i.acknowledged]


class AlreadyAcknowledged(Conflict):
    """409 (``conflict``): this occurrence has its acknowledgement already."""

    def __init__(self, existing: Acknowledgement) -> None:
        super().__init__(
            f"{existing.operator_name} acknowledged this alert at "
            f"{format_timestamp(existing.at)}; the first acknowledgement stands."
        )
        self.existing = existing


class AlertGone(NotFound):
    """404 (``not_found``): no source raises this alert now."""


class SqlAlertAckRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get_many(self, keys: Sequence[str]) -> dict[str, Acknowledgement]:
        if not keys:
            return {}
        t = alert_acknowledgements
        found: dict[str, Acknowledgement] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), 500):
            rows = await self._conn.execute(
                t.select().where(t.c.alert_key.in_(unique[start : start + 500]))
            )
            for row in rows.all():
                found[row.alert_key] = Acknowledgement(**row._mapping)
        return found

    async def add(self, ack: Acknowledgement) -> bool:
        """Store it unless the key has one already; whether it was stored."""
        result = await self._conn.execute(
            insert_if_absent(self._conn, alert_acknowledgements),
            {
                "alert_key": ack.alert_key,
                "operator_id": ack.operator_id,
                "operator_name": ack.operator_name[:200],
                "note": ack.note,
                "at": ack.at,
            },
        )
        return bool(result.rowcount)

    async def replace(self, ack: Acknowledgement, previous_at: datetime) -> bool:
        """Replace the acknowledgement of an earlier occurrence (made at ``previous_at``);
        False when another operator replaced it first."""
        t = alert_acknowledgements
        result = await self._conn.execute(
            t.update()
            .where(t.c.alert_key == ack.alert_key, t.c.at == previous_at)
            .values(
                operator_id=ack.operator_id,
                operator_name=ack.operator_name[:200],
                note=ack.note,
                at=ack.at,
            )
        )
        return bool(result.rowcount)


def _current(ack: Acknowledgement | None, alert: Alert) -> Acknowledgement | None:
    """The acknowledgement if it is of this occurrence of the alert."""
    return ack if ack is not None and ack.at >= alert.since else None


def check_note(note: str) -> str:
    cleaned = note.strip()
    if not cleaned:
        raise InvalidInput("Say what you are doing about it: the note is required.")
    if len(cleaned) > MAX_NOTE:
        raise InvalidInput(f"The note is {len(cleaned)} characters; at most {MAX_NOTE}.")
    return cleaned


class AlertInbox:
    def __init__(
        self, sources: Sequence[AlertSource], transactions: SqlTransactions, clock: Clock
    ) -> None:
        self._sources = tuple(sources)
        self._tx = transactions
        self._clock = clock

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(source.name for source in self._sources)

    async def _alerts(self, now: datetime) -> tuple[list[tuple[Alert, str]], list[str]]:
        found: list[tuple[Alert, str]] = []
        unavailable: list[str] = []
        for source in self._sources:
            try:
                found.extend((alert, source.name) for alert in await source.alerts(now))
            except Exception:
                # One broken source must not hide every other alert.
                logger.exception("console.alert_source_failed", source=source.name)
                unavailable.append(source.name)
        return found, unavailable

    async def inbox(self) -> Inbox:
        """Not yet acknowledged first; then critical before warning, newest first."""
        now = self._clock.now()
        found, unavailable = await self._alerts(now)
        async with self._tx.read() as tx:
            acks = await tx.alert_acks.get_many([alert.key for alert, _ in found])
        items = [
            InboxItem(alert, source, _current(acks.get(alert.key), alert))
            for alert, source in found
        ]
        items.sort(
            key=lambda i: (
                i.acknowledged,
                SEVERITY_ORDER.get(i.alert.severity, 9),
                -i.alert.since.timestamp(),
                i.alert.key,
            )
        )
        return Inbox(at=now, items=items, unavailable=unavailable)

    async def acknowledge(
        self, actor: Actor, operator_name: str, key: str, note: str
    ) -> Acknowledgement:
        """Take the alert ``key`` in hand with ``note``; refused when the alert no longer
        stands (:class:`AlertGone`) or this occurrence is acknowledged already
        (:class:`AlreadyAcknowledged`)."""
        cleaned = check_note(note)
        now = self._clock.now()
        found, unavailable = await self._alerts(now)
        alert = next((a for a, _ in found if a.key == key), None)
        if alert is None:
            raise AlertGone(
                "This alert no longer stands (its condition has cleared), so there is "
                "nothing to acknowledge."
                + (
                    f" (Could not read {', '.join(unavailable)} just now: if it was theirs, "
                    "try again in a moment.)"
                    if unavailable
                    else ""
                )
            )
        ack = Acknowledgement(
            alert_key=key,
            operator_id=actor.id,
            operator_name=operator_name,
            note=cleaned,
            at=now,
        )
        async with self._tx.write() as tx:
            existing = (await tx.alert_acks.get_many([key])).get(key)
            current = _current(existing, alert)
            if current is not None:
                raise AlreadyAcknowledged(current)
            if existing is None:
                stored = await tx.alert_acks.add(ack)
            else:
                stored = await tx.alert_acks.replace(ack, existing.at)
            if not stored:  # another operator got there in between
                winner = (await tx.alert_acks.get_many([key])).get(key)
                raise AlreadyAcknowledged(winner or ack)
            await audit.record(
                tx,
                self._clock,
                actor,
                "alert.acknowledged",
                target_type="alert",
                target_id=key,
                payload={"note_length": len(cleaned), "kind": alert.kind}
                | ({"key": key} if len(key) > AUDIT_TARGET_WIDTH else {}),
            )
        return ack
