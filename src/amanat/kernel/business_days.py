"""Pakistan business days, in ``Asia/Karachi``: settlement cycles and dispute deadlines.

Banks in Pakistan close on Saturdays and Sundays and on public holidays. The fixed-date
holidays are known years ahead and are built in; the Islamic holidays (the two Eids,
Ashura, Eid Milad-un-Nabi) move with the moon and are announced shortly before, so an
operator lists them, with any other closure, in ``AMANAT_SETTLEMENT__HOLIDAYS``. 1 July
is a bank holiday (banks close their books; the public is not served).

A cycle of business date ``D`` runs from the cut-off of the business day before ``D``
(exclusive) to the cut-off of ``D`` (inclusive): money that moves after the cut-off, or
on a day banks are closed, belongs to the next business day's cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from amanat.kernel.clock import KARACHI

# (month, day): Kashmir Day, Pakistan Day, Labour Day, Youm-e-Takbeer, the bank holiday
# of 1 July, Independence Day, Iqbal Day, Quaid-e-Azam Day.
FIXED_HOLIDAYS: tuple[tuple[int, int], ...] = (
    (2, 5),
    (3, 23),
    (5, 1),
    (5, 28),
    (7, 1),
    (8, 14),
    (11, 9),
    (12, 25),
)

WEEKEND = frozenset({5, 6})  # date.weekday(): Saturday, Sunday


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Which dates banks are open, and when each day's settlement cycle closes."""

    cutoff: time = time(17, 0)
    holidays: frozenset[date] = field(default_factory=frozenset)
    weekend: frozenset[int] = WEEKEND

    @classmethod
    def of(
        cls, cutoff: time, holidays: Iterable[date], weekend: Iterable[int] = WEEKEND
    ) -> BusinessCalendar:
        days = frozenset(weekend)
        if len(days) > 6 or not days <= frozenset(range(7)):
            raise ValueError("weekend days are 0 (Monday) to 6 (Sunday), not all seven")
        return cls(cutoff=cutoff, holidays=frozenset(holidays), weekend=days)

    def is_business_day(self, day: date) -> bool:
        if day.weekday() in self.weekend or day in self.holidays:
            return False
        return (day.month, day.day) not in FIXED_HOLIDAYS

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after ``day``."""
        day += timedelta(days=1)
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def previous_business_day(self, day: date) -> date:
        """The last business day strictly before ``day``."""
        day -= timedelta(days=1)
        while not self.is_business_day(day):
            day -= timedelta(days=1)
        return day

    def add_business_days(self, day: date, count: int) -> date:
        """``count`` business days after ``day`` (a deadline: 10 business days to answer)."""
        for _ in range(count):
            day = self.next_business_day(day)
        return day

    def cutoff_at(self, day: date) -> datetime:
        """The instant, in UTC, at which ``day``'s cycle closes."""
        return datetime.combine(day, self.cutoff, tzinfo=KARACHI).astimezone(UTC)

    def cycle_of(self, moment: datetime) -> date:
        """The business date whose cycle an instant belongs to."""
        local = moment.astimezone(KARACHI)
        day = local.date()
        if self.is_business_day(day) and moment <= self.cutoff_at(day):
            return day
        return self.next_business_day(day)

    def window(self, day: date) -> tuple[datetime, datetime]:
        """``(start, end]`` of business date ``day``'s cycle, in UTC."""
        if not self.is_business_day(day):
            raise ValueError(f"{day.isoformat()} is not a business day")
        return self.cutoff_at(self.previous_business_day(day)), self.cutoff_at(day)

    def last_closed(self, now: datetime) -> date:
        """The latest business date whose cut-off has passed at ``now``."""
        day = now.astimezone(KARACHI).date()
        if self.is_business_day(day) and now > self.cutoff_at(day):
            return day
        return self.previous_business_day(day)
