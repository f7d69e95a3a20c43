"""Reconciliation as operations see it: open breaks by age, measured in settlement cycles.

A break is *aged* once ``cycles`` settlement cycles have closed after the cycle it opened
in and it is still open: a break opened on Monday before the cut-off (Monday's cycle) is
aged after Tuesday's cut-off. The cycles follow the business calendar
(``AMANAT_SETTLEMENT__CUTOFF``, holidays and weekend), so a break opened on Friday
evening is not aged before Tuesday's cut-off. The SQL lives in
:mod:`amanat.reconciliation.operations_store` (``tx.recon_operations``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from amanat.kernel.business_days import BusinessCalendar
from amanat.platform.db.ports import TransactionFactory


def aged_before(now: datetime, calendar: BusinessCalendar, cycles: int = 1) -> datetime:
    """The instant at or before which a break must have opened to be aged at ``now``.

    Aged: the cycle after its own (``cycles`` of them) has closed, that is its own cycle is
    at or before ``cycles`` business days before the latest closed one."""
    day = calendar.last_closed(now)
    for _ in range(cycles):
        day = calendar.previous_business_day(day)
    return calendar.cutoff_at(day)


@dataclass(frozen=True, slots=True)
class OldestBreak:
    id: str
    kind: str
    source: str
    amount: int
    currency: str
    payment_id: str | None
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class OpenBreaks:
    open: int
    open_amount: int
    aged: int
    aged_before: datetime
    oldest: OldestBreak | None


class ReconOperationsRows(Protocol):
    async def open_breaks(self, aged_before: datetime) -> OpenBreaks: ...


class ReconOperationsTx(Protocol):
    @property
    def recon_operations(self) -> ReconOperationsRows: ...


class ReconciliationOperationsQueries:
    def __init__(
        self,
        transactions: TransactionFactory[ReconOperationsTx],
        calendar: BusinessCalendar,
        *,
        cycles: int = 1,
    ) -> None:
        self._tx = transactions
        self.calendar = calendar
        self.cycles = cycles

    def aged_before(self, now: datetime) -> datetime:
        return aged_before(now, self.calendar, self.cycles)

    async def open_breaks(self, now: datetime) -> OpenBreaks:
        """Every open break: how many, how much, how many aged, and the oldest."""
        async with self._tx.read() as tx:
            return await tx.recon_operations.open_breaks(self.aged_before(now))
