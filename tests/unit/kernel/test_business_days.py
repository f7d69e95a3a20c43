"""Pakistan business days and settlement cycle windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from amanat.kernel.business_days import BusinessCalendar

CALENDAR = BusinessCalendar(cutoff=time(17, 0), holidays=frozenset({date(2026, 3, 20)}))


def test_weekends_and_holidays_are_closed() -> None:
    assert CALENDAR.is_business_day(date(2026, 11, 24))  # Tuesday
    assert not CALENDAR.is_business_day(date(2026, 11, 28))  # Saturday
    assert not CALENDAR.is_business_day(date(2026, 11, 29))  # Sunday
    assert not CALENDAR.is_business_day(date(2026, 8, 14))  # Independence Day
    assert not CALENDAR.is_business_day(date(2027, 7, 1))  # bank holiday
    assert not CALENDAR.is_business_day(date(2026, 3, 20))  # configured (Eid)
    assert CALENDAR.next_business_day(date(2026, 11, 27)) == date(2026, 11, 30)
    assert CALENDAR.previous_business_day(date(2026, 11, 30)) == date(2026, 11, 27)
    assert CALENDAR.add_business_days(date(2026, 11, 26), 3) == date(2026, 12, 1)


def test_the_cut_off_splits_cycles_in_karachi_time() -> None:
    # 17:00 in Karachi is 12:00 UTC.
    assert CALENDAR.cycle_of(datetime(2026, 11, 24, 12, 0, tzinfo=UTC)) == date(2026, 11, 24)
    assert CALENDAR.cycle_of(datetime(2026, 11, 24, 12, 0, 1, tzinfo=UTC)) == date(2026, 11, 25)
    # Friday after the cut-off and the whole weekend belong to Monday.
    assert CALENDAR.cycle_of(datetime(2026, 11, 27, 13, 0, tzinfo=UTC)) == date(2026, 11, 30)
    assert CALENDAR.cycle_of(datetime(2026, 11, 29, 8, 0, tzinfo=UTC)) == date(2026, 11, 30)
    start, end = CALENDAR.window(date(2026, 11, 30))
    assert start == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert CALENDAR.last_closed(datetime(2026, 11, 30, 11, 0, tzinfo=UTC)) == date(2026, 11, 27)
    assert CALENDAR.last_closed(datetime(2026, 11, 30, 12, 1, tzinfo=UTC)) == date(2026, 11, 30)


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)))
def test_every_instant_falls_in_exactly_the_window_of_its_cycle(naive: datetime) -> None:
    moment = naive.replace(tzinfo=UTC)
    day = CALENDAR.cycle_of(moment)
    assert CALENDAR.is_business_day(day)
    start, end = CALENDAR.window(day)
    assert start < moment <= end
    # The windows tile time: the next cycle starts where this one ends.
    following = CALENDAR.next_business_day(day)
    assert CALENDAR.window(following)[0] == end
    assert end - start >= timedelta(hours=24)
