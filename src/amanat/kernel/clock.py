"""Time, injected: services ask a Clock, so tests can travel in time.

Timestamps on the wire are RFC 3339 in UTC with a ``Z`` and millisecond precision.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

KARACHI = ZoneInfo("Asia/Karachi")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 24, 8, 15, 30, 123000, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        self._now += timedelta(seconds=seconds, **kwargs)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment


def format_timestamp(moment: datetime) -> str:
    """``2026-11-24T08:15:30.123Z``; naive datetimes are taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_timestamp(text: str) -> datetime:
    """Parse RFC 3339; the result is always timezone-aware UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp must carry a timezone offset")
    return moment.astimezone(UTC)


def karachi_date(moment: datetime) -> date:
    """The business date in Pakistan for an instant (settlement cycles, deadlines)."""
    return moment.astimezone(KARACHI).date()
