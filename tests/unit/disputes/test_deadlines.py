"""Deadlines in Pakistan business days (Asia/Karachi): weekends and holidays skipped, a
deadline a whole day long, and how pressing a dispute is."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from amanat.disputes.domain.deadlines import (
    DeadlinePolicy,
    deadlines,
    is_overdue,
    urgency,
    warn_from,
)
from amanat.disputes.domain.disputes import DisputeStatus
from amanat.kernel.alerts import Severity
from amanat.kernel.business_days import BusinessCalendar

EID = date(2027, 3, 10)  # a Wednesday, closed by configuration
CALENDAR = BusinessCalendar.of(time(17, 0), [EID])
POLICY = DeadlinePolicy(respond_within=7, decide_within=30, warn_days=2)
S = DisputeStatus


def utc(day: str, hour: int = 8) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def test_business_days_skip_weekends_and_holidays() -> None:
    # Thursday 4 March 2027: Fri 5, Mon 8, Tue 9, (Wed 10 closed), Thu 11, Fri 12, Mon 15,
    # Tue 16 are the seven business days.
    respond_by, decide_by = deadlines(CALENDAR, POLICY, utc("2027-03-04"))
    assert respond_by == date(2027, 3, 16)
    assert decide_by == CALENDAR.add_business_days(date(2027, 3, 4), 30)
    assert decide_by > respond_by


def test_the_date_is_karachis() -> None:
    # 20:30 UTC on Thursday 4 March is 01:30 on Friday 5 March in Karachi: the seven
    # business days count from Friday, one later than from Thursday.
    late = datetime(2027, 3, 4, 20, 30, tzinfo=UTC)
    assert deadlines(CALENDAR, POLICY, late)[0] == date(2027, 3, 17)


def test_a_deadline_lasts_the_whole_day_in_karachi() -> None:
    respond_by = date(2027, 3, 16)
    assert not is_overdue(respond_by, datetime(2027, 3, 16, 18, 59, tzinfo=UTC))  # 23:59 PKT
    assert is_overdue(respond_by, datetime(2027, 3, 16, 19, 0, tzinfo=UTC))  # 00:00 PKT


@pytest.mark.parametrize(
    ("status", "now", "severity", "overdue"),
    [
        (S.NEEDS_RESPONSE, "2027-03-09", None, False),
        (S.NEEDS_RESPONSE, "2027-03-11", None, False),  # Thu: Fri 12 and Mon 15 are before
        (S.NEEDS_RESPONSE, "2027-03-12", Severity.WARNING, False),  # Fri: Mon 15, Tue 16
        (S.NEEDS_RESPONSE, "2027-03-16", Severity.WARNING, False),
        (S.NEEDS_RESPONSE, "2027-03-17", Severity.CRITICAL, True),
        (S.UNDER_REVIEW, "2027-03-17", None, False),  # the decision is due much later
        (S.UNDER_REVIEW, "2027-05-01", Severity.CRITICAL, True),
        (S.WON, "2027-05-01", None, False),
    ],
)
def test_urgency(status: DisputeStatus, now: str, severity: Severity | None, overdue: bool) -> None:
    respond_by, decide_by = date(2027, 3, 16), date(2027, 4, 15)
    found = urgency(CALENDAR, POLICY, status, respond_by, decide_by, utc(now))
    if severity is None:
        assert found is None
    else:
        assert found is not None
        assert (found.severity, found.overdue) == (severity, overdue)


def test_the_warning_window_counts_business_days() -> None:
    # Friday 12 March: two business days on is Tuesday 16 (the weekend skipped).
    assert warn_from(CALENDAR, POLICY, utc("2027-03-12")) == date(2027, 3, 16)
    # Tuesday 9 March: Wednesday 10 is closed, so Thursday 11 and Friday 12.
    assert warn_from(CALENDAR, POLICY, utc("2027-03-09")) == date(2027, 3, 12)


def test_the_policy_refuses_a_decision_before_the_response() -> None:
    with pytest.raises(ValueError):
        DeadlinePolicy(respond_within=10, decide_within=5)
