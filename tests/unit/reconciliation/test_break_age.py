"""When a reconciliation break counts as aged: after the next settlement cycle closed,
on the business calendar (weekends and holidays are not cycles)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from amanat.kernel.business_days import BusinessCalendar
from amanat.kernel.clock import KARACHI
from amanat.reconciliation.operations import aged_before

CALENDAR = BusinessCalendar.of(time(17, 0), [date(2026, 11, 26)])  # a Thursday holiday


def karachi(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=KARACHI).astimezone(UTC)


MONDAY = date(2026, 11, 23)
TUESDAY = MONDAY + timedelta(days=1)
WEDNESDAY = MONDAY + timedelta(days=2)
FRIDAY = MONDAY + timedelta(days=4)
NEXT_MONDAY = MONDAY + timedelta(days=7)
NEXT_TUESDAY = MONDAY + timedelta(days=8)


def is_aged(opened: datetime, now: datetime, cycles: int = 1) -> bool:
    return opened <= aged_before(now, CALENDAR, cycles)


def test_a_break_opened_monday_morning_is_aged_after_tuesdays_cutoff() -> None:
    opened = karachi(MONDAY, 10)
    assert not is_aged(opened, karachi(MONDAY, 18))  # Monday's cycle closed: its own
    assert not is_aged(opened, karachi(TUESDAY, 16, 59))
    assert is_aged(opened, karachi(TUESDAY, 17, 1))


def test_after_the_cutoff_it_belongs_to_the_next_cycle() -> None:
    opened = karachi(MONDAY, 17, 30)  # Tuesday's cycle
    assert not is_aged(opened, karachi(TUESDAY, 18))
    assert is_aged(opened, karachi(WEDNESDAY, 17, 1))


def test_weekends_and_holidays_are_no_cycles() -> None:
    opened = karachi(FRIDAY, 18)  # Monday's cycle
    assert not is_aged(opened, karachi(NEXT_MONDAY, 18))
    assert is_aged(opened, karachi(NEXT_TUESDAY, 17, 1))
    wednesday_break = karachi(WEDNESDAY, 10)  # Thursday is a holiday: Friday is next
    assert not is_aged(wednesday_break, karachi(date(2026, 11, 26), 18))
    assert is_aged(wednesday_break, karachi(FRIDAY, 17, 1))


def test_more_cycles_wait_longer() -> None:
    opened = karachi(MONDAY, 10)
    assert not is_aged(opened, karachi(TUESDAY, 18), cycles=2)
    assert is_aged(opened, karachi(WEDNESDAY, 17, 1), cycles=2)
