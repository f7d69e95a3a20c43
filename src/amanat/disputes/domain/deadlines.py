"""A dispute's deadlines in Pakistan business days, and how close to them it is.

Both deadlines count business days (weekends and bank holidays skipped, in
``Asia/Karachi``) from the Karachi date the dispute opened: ``respond_by`` for the
merchant's answer, ``decide_by`` for the decision. A deadline is a whole day: the merchant
may answer until the end of ``respond_by`` (midnight, Karachi); from the next day the
dispute is overdue and the expiry job closes it ``lost``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from amanat.disputes.domain.disputes import DisputeStatus
from amanat.kernel.alerts import Severity
from amanat.kernel.business_days import BusinessCalendar
from amanat.kernel.clock import karachi_date


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    respond_within: int = 7
    decide_within: int = 30
    warn_days: int = 2

    def __post_init__(self) -> None:
        if self.respond_within < 1 or self.decide_within < self.respond_within:
            raise ValueError("a dispute is decided no sooner than it is answered")
        if self.warn_days < 0:
            raise ValueError("warn_days is not negative")


def deadlines(
    calendar: BusinessCalendar, policy: DeadlinePolicy, opened_at: datetime
) -> tuple[date, date]:
    """``(respond_by, decide_by)`` of a dispute opened at ``opened_at``."""
    opened_on = karachi_date(opened_at)
    return (
        calendar.add_business_days(opened_on, policy.respond_within),
        calendar.add_business_days(opened_on, policy.decide_within),
    )


def is_overdue(respond_by: date, now: datetime) -> bool:
    """Past the end of ``respond_by`` in Karachi."""
    return karachi_date(now) > respond_by


@dataclass(frozen=True, slots=True)
class Urgency:
    severity: Severity
    deadline: date
    overdue: bool
    why: str


def urgency(
    calendar: BusinessCalendar,
    policy: DeadlinePolicy,
    status: DisputeStatus,
    respond_by: date,
    decide_by: date,
    now: datetime,
) -> Urgency | None:
    """How pressing a dispute is at ``now``, or None while nothing is near.

    Awaiting the merchant, within ``warn_days`` business days of ``respond_by``: a
    warning; past it (the expiry job has not closed it yet): critical. Under review past
    ``decide_by``: critical; within ``warn_days`` of it: a warning."""
    today = karachi_date(now)
    horizon = calendar.add_business_days(today, policy.warn_days)
    if status is DisputeStatus.NEEDS_RESPONSE:
        deadline, what = respond_by, "the merchant's response"
    elif status is DisputeStatus.UNDER_REVIEW:
        deadline, what = decide_by, "the decision"
    else:
        return None
    if today > deadline:
        return Urgency(Severity.CRITICAL, deadline, True, f"{what} is overdue")
    if deadline <= horizon:
        return Urgency(Severity.WARNING, deadline, False, f"{what} is due soon")
    return None


def warn_from(calendar: BusinessCalendar, policy: DeadlinePolicy, now: datetime) -> date:
    """Deadlines on or before this date are within the warning window at ``now``."""
    return calendar.add_business_days(karachi_date(now), policy.warn_days)
