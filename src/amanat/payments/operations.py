"""Payments as operations see them: what failed, where, who it touches, what is stuck and
how recovery goes.

The console's operations dashboard and the payments alert source read through
:class:`PaymentOperationsQueries`; the SQL lives in :mod:`amanat.payments.operations_store`
(offered to a transaction as ``tx.payment_operations``). Everything here is counts and
sums: no name, IBAN or phone, only the number of distinct counterparties.

Definitions the dashboard states on its page:

- a payment *finished* in a window when it reached ``succeeded`` or ``failed`` in it (an
  expired collection was never approved by its payer and a cancelled one was withdrawn by
  the partner: neither counts). The *failure rate* of a group is its failed payments out
  of its finished ones.
- a payment is *stuck* when a payout or refund has been ``pending`` or ``processing``, or
  a collection ``pending``, for longer than the threshold since its last change; or when a
  collection still awaits approval that long after it should have expired.
- the *backlog* at an instant is the payouts and refunds in flight then (created, not yet
  final): derived from creation and final-change times, so it can be drawn for the past.
- a payment *recovered* when it succeeded in the window after being in flight for longer
  than the stuck threshold; the time to recover is its creation-to-success time.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from amanat.kernel.clock import Clock
from amanat.platform.db.ports import TransactionFactory

JOURNEYS = ("payout", "collection", "refund")


@dataclass(frozen=True, slots=True)
class Outcomes:
    """How many payments of one group finished in a window, and how many of them failed."""

    key: str
    finished: int = 0
    failed: int = 0
    failed_amount: int = 0

    @property
    def rate(self) -> float:
        """Failed out of finished, 0 to 1 (0 when nothing finished)."""
        return self.failed / self.finished if self.finished else 0.0


@dataclass(frozen=True, slots=True)
class FinishedGroup:
    """One row of the store's grouping: payments that finished in the window alike."""

    type: str
    status: str
    failure_code: str | None
    bank_code: str | None
    partner_id: str
    count: int
    amount: int


@dataclass(frozen=True, slots=True)
class Failures:
    since: datetime
    until: datetime
    total: Outcomes
    by_code: list[Outcomes]
    """Failed payments by failure code, most first (``finished`` is the window's total)."""
    by_journey: list[Outcomes]
    by_bank: list[Outcomes]
    by_partner: list[Outcomes]

    def journey(self, name: str) -> Outcomes:
        return next((o for o in self.by_journey if o.key == name), Outcomes(name))


def summarise(since: datetime, until: datetime, groups: Sequence[FinishedGroup]) -> Failures:
    """Fold the store's groups into outcomes by code, journey, bank and partner."""
    finished = sum(g.count for g in groups)
    failed = [g for g in groups if g.status == "failed"]

    def by(key_of: str, rows: Sequence[FinishedGroup]) -> list[Outcomes]:
        totals: dict[str, list[int]] = {}
        for g in rows:
            key = getattr(g, key_of) or "unknown"
            entry = totals.setdefault(key, [0, 0, 0])
            entry[0] += g.count
            if g.status == "failed":
                entry[1] += g.count
                entry[2] += g.amount
        out = [Outcomes(k, f, x, a) for k, (f, x, a) in totals.items()]
        return sorted(out, key=lambda o: (-o.failed, -o.rate, o.key))

    codes: dict[str, list[int]] = {}
    for g in failed:
        entry = codes.setdefault(g.failure_code or "unknown", [0, 0])
        entry[0] += g.count
        entry[1] += g.amount
    by_code = sorted(
        (Outcomes(code, finished, n, amount) for code, (n, amount) in codes.items()),
        key=lambda o: (-o.failed, o.key),
    )
    journeys = {o.key: o for o in by("type", groups)}
    return Failures(
        since=since,
        until=until,
        total=Outcomes(
            "all", finished, sum(g.count for g in failed), sum(g.amount for g in failed)
        ),
        by_code=by_code,
        by_journey=[journeys.get(j, Outcomes(j)) for j in JOURNEYS],
        by_bank=by("bank_code", groups),
        by_partner=by("partner_id", groups),
    )


@dataclass(frozen=True, slots=True)
class StuckPayment:
    id: str
    partner_id: str
    type: str
    status: str
    amount: int
    currency: str
    bank_code: str | None
    since: datetime
    """Its last change (or, for a collection past its expiry, the expiry)."""


@dataclass(frozen=True, slots=True)
class Stuck:
    count: int
    amount: int
    oldest: list[StuckPayment] = field(default_factory=list)
    """Oldest first, at most the limit asked for."""


@dataclass(frozen=True, slots=True)
class Impact:
    """Who the window's failures and today's stuck payments touch: counts only."""

    partners: int
    customers: int
    """Distinct counterparties (data subjects), never who they are."""
    failed_amount: int
    stuck_amount: int

    @property
    def at_stake(self) -> int:
        return self.failed_amount + self.stuck_amount


@dataclass(frozen=True, slots=True)
class Recovery:
    recovered: int
    median_seconds: float | None
    worst_seconds: float | None


def buckets(since: datetime, until: datetime, count: int) -> list[datetime]:
    """``count + 1`` evenly spaced instants from ``since`` to ``until`` inclusive."""
    if count < 1 or until <= since:
        return [until]
    step = (until - since) / count
    return [since + step * i for i in range(count)] + [until]


class PaymentOperationsRows(Protocol):
    """What the queries need of the database (operations_store.py)."""

    async def finished(self, since: datetime, until: datetime) -> list[FinishedGroup]: ...
    async def stuck(self, before: datetime, now: datetime, limit: int) -> Stuck: ...
    async def impact(
        self, since: datetime, until: datetime, stuck_before: datetime, now: datetime
    ) -> Impact: ...
    async def in_flight_at(self, points: Sequence[datetime]) -> list[int]: ...
    async def recovered_durations(
        self, since: datetime, until: datetime, longer_than_seconds: float
    ) -> list[float]: ...


class PaymentOperationsTx(Protocol):
    @property
    def payment_operations(self) -> PaymentOperationsRows: ...


class PaymentOperationsQueries:
    def __init__(self, transactions: TransactionFactory[PaymentOperationsTx], clock: Clock) -> None:
        self._tx = transactions
        self._clock = clock

    def now(self) -> datetime:
        return self._clock.now()

    async def failures(self, since: datetime, until: datetime) -> Failures:
        async with self._tx.read() as tx:
            groups = await tx.payment_operations.finished(since, until)
        return summarise(since, until, groups)

    async def stuck(self, now: datetime, older_than: timedelta, limit: int = 20) -> Stuck:
        async with self._tx.read() as tx:
            return await tx.payment_operations.stuck(now - older_than, now, limit)

    async def impact(
        self, since: datetime, until: datetime, now: datetime, stuck_after: timedelta
    ) -> Impact:
        async with self._tx.read() as tx:
            return await tx.payment_operations.impact(since, until, now - stuck_after, now)

    async def backlog_series(
        self, since: datetime, until: datetime, count: int
    ) -> list[tuple[datetime, int]]:
        """Payouts and refunds in flight at each of ``count + 1`` instants."""
        points = buckets(since, until, count)
        async with self._tx.read() as tx:
            values = await tx.payment_operations.in_flight_at(points)
        return list(zip(points, values, strict=True))

    async def recovery(self, since: datetime, until: datetime, stuck_after: timedelta) -> Recovery:
        async with self._tx.read() as tx:
            durations = await tx.payment_operations.recovered_durations(
                since, until, stuck_after.total_seconds()
            )
        if not durations:
            return Recovery(0, None, None)
        return Recovery(len(durations), statistics.median(durations), max(durations))
