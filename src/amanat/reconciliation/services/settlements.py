"""Settlement cycles: closing a business day's cycle into one settlement per merchant,
and what merchants read of them.

A cycle closes once, for every merchant at once, in one unit of work: the lines, the fee
journal, the settlement rows, the ``settlement.paid`` events and the audit record commit
together or not at all, so a crash mid-close leaves the cycle open for the next try.
Before anything is written, the settlement is tied to the ledger: the opening balance plus
the net of its lines must equal the closing balance, both read from the ledger's entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from amanat.kernel.business_days import BusinessCalendar
from amanat.kernel.clock import Clock, format_timestamp, karachi_date
from amanat.kernel.errors import Conflict, DomainError, NotFound
from amanat.kernel.ids import new_id
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.ports import UnitOfWork
from amanat.reconciliation.domain.events import PartnerNotice
from amanat.reconciliation.domain.settlement import (
    FeeSchedule,
    Movement,
    SettlementLine,
    SettlementStatus,
    carry_forward,
    fees_due,
    settlement_lines,
    totals,
)
from amanat.reconciliation.ports import CycleRow, Ledger, ReconciliationTx, SettlementRow

RAIL = "raast"
CURRENCY = "PKR"
# A transaction that stamped its entries just before the cut-off has committed within
# this (statements time out after 15 s, idle transactions after 30 s).
SETTLED_IN = timedelta(minutes=1)
FIRST_CYCLE_WITHIN = timedelta(days=31)


class CycleNotOver(Conflict):
    code = "cycle_not_over"


class CycleAlreadyClosed(Conflict):
    code = "cycle_already_closed"


class CycleOutOfOrder(Conflict):
    code = "cycle_out_of_order"


class NotABusinessDay(Conflict):
    code = "not_a_business_day"


class LedgerDisagrees(DomainError):
    """The lines of a settlement do not explain the ledger's balances: a bug or a journal
    written into a closed window. The close stops; nothing is written."""

    code = "settlement_ledger_mismatch"


@dataclass(frozen=True, slots=True)
class ClosedCycle:
    rail: str
    business_date: date
    window_start: datetime
    window_end: datetime
    settlements: tuple[SettlementRow, ...]


def settlement_view(row: SettlementRow) -> dict[str, Any]:
    """A settlement as partners see it (the API and the ``settlement.paid`` event)."""
    return {
        "id": row.id,
        "object": "settlement",
        "status": row.status,
        "rail": row.rail,
        "business_date": row.business_date.isoformat(),
        "currency": row.currency,
        "period_start": format_timestamp(row.window_start),
        "period_end": format_timestamp(row.window_end),
        "opening_balance": row.opening_balance,
        "closing_balance": row.closing_balance,
        "gross_collections": row.gross_collections,
        "refunds": row.refunds,
        "payouts": row.payouts,
        "fees": row.fees,
        "fees_charged": row.fees_charged,
        "fees_carried_forward": row.fees_carried_forward,
        "dispute_holds": row.dispute_holds,
        "dispute_reversals": row.dispute_reversals,
        "adjustments": row.adjustments,
        "other": row.other,
        "net": row.net,
        "line_count": row.line_count,
        "fee_journal_id": row.fee_journal_id,
        "created_at": format_timestamp(row.created_at),
    }


class SettlementService:
    def __init__(
        self,
        transactions: UnitOfWork[ReconciliationTx],
        clock: Clock,
        ledger: Ledger,
        calendar: BusinessCalendar,
        fees: FeeSchedule,
        *,
        close_after: timedelta,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._ledger = ledger
        self.calendar = calendar
        self._fees = fees
        self._close_after = close_after

    # -- closing ------------------------------------------------------------------------

    def due_cycles(self, last_closed: date | None, now: datetime) -> list[date]:
        """The business dates the worker should close now, oldest first: those after the
        last one closed whose cut-off passed ``close_after`` ago (on a fresh install, only
        the latest: history before amanat ran is not a cycle)."""
        target = self.calendar.last_closed(now - max(self._close_after, SETTLED_IN))
        if last_closed is None:
            return [target]
        due: list[date] = []
        day = self.calendar.next_business_day(last_closed)
        while day <= target:
            due.append(day)
            day = self.calendar.next_business_day(day)
        return due

    async def close_due(self, actor: Actor) -> list[ClosedCycle]:
        async with self._tx.read() as tx:
            last = await tx.settlements.last_cycle(RAIL)
        closed: list[ClosedCycle] = []
        for day in self.due_cycles(last, self._clock.now()):
            try:
                closed.append(await self.close(actor, day))
            except CycleAlreadyClosed:
                continue  # another worker closed it a moment ago
        return closed

    async def close(self, actor: Actor, business_date: date) -> ClosedCycle:
        """Close ``business_date``'s cycle: one settlement per merchant whose balance moved."""
        if not self.calendar.is_business_day(business_date):
            raise NotABusinessDay(
                f"{business_date.isoformat()} is not a Pakistan business day; its payments "
                "belong to the next business day's cycle."
            )
        now = self._clock.now()
        today = karachi_date(now)
        if business_date > today:
            raise CycleNotOver(f"The cycle of {business_date.isoformat()} has not begun.")
        start, end = self.calendar.window(business_date)
        if now <= end + SETTLED_IN:
            raise CycleNotOver(
                f"The cycle of {business_date.isoformat()} runs until its cut-off at "
                f"{format_timestamp(end)}; close it a minute after that."
            )
        async with self._tx.atomic() as tx:
            # One close at a time, across machines: two closes of one cycle never race.
            await tx.settlements.lock(f"settlement:{RAIL}")
            if await tx.settlements.lock_cycle(RAIL, business_date) is not None:
                raise CycleAlreadyClosed(f"The cycle of {business_date.isoformat()} is closed.")
            last = await tx.settlements.last_cycle(RAIL)
            if last is None and business_date < today - FIRST_CYCLE_WITHIN:
                raise CycleOutOfOrder(
                    "The first cycle amanat closes is a recent one: at most "
                    f"{FIRST_CYCLE_WITHIN.days} days ago."
                )
            if last is not None:
                if self.calendar.next_business_day(last) != business_date:
                    # Cycles close in order: a day skipped would never be settled.
                    expected = self.calendar.next_business_day(last)
                    raise CycleOutOfOrder(
                        f"Cycles close in order: the next to close is {expected.isoformat()}."
                    )
                previous = await tx.settlements.lock_cycle(RAIL, last)
                # Each cycle starts where the last one ended, even if the cut-off or the
                # holidays changed since: no money falls between two cycles, or in both.
                if previous is not None:
                    start = previous.window_end
            rows: list[SettlementRow] = []
            for partner_id in await self._ledger.partners_with_movements(start, end):
                row = await self._settle(tx, actor, partner_id, business_date, start, end, now)
                if row is not None:
                    rows.append(row)
            cycle = CycleRow(RAIL, business_date, start, end, len(rows), actor.id, now)
            if not await tx.settlements.add_cycle(cycle):
                raise CycleAlreadyClosed(f"The cycle of {business_date.isoformat()} is closed.")
            await audit.record(
                tx,
                self._clock,
                actor,
                "settlement.cycle_closed",
                target_type="settlement_cycle",
                target_id=f"{RAIL}:{business_date.isoformat()}",
                payload={
                    "settlements": [r.id for r in rows],
                    "net": sum(r.net for r in rows),
                    "fees_charged": sum(r.fees_charged for r in rows),
                },
            )
        return ClosedCycle(RAIL, business_date, start, end, tuple(rows))

    async def _settle(
        self,
        tx: ReconciliationTx,
        actor: Actor,
        partner_id: str,
        business_date: date,
        start: datetime,
        end: datetime,
        now: datetime,
    ) -> SettlementRow | None:
        movements = [
            Movement(m.journal_id, m.kind, m.reference, m.amount, m.currency, m.at)
            for m in await self._ledger.ledger_movements(partner_id, start, end)
        ]
        previous = await tx.settlements.previous(partner_id, RAIL, CURRENCY, business_date)
        carried_in = previous.fees_carried_forward if previous else 0
        lines = settlement_lines(
            movements, self._fees, carried_in=carried_in, closed_at=now, currency=CURRENCY
        )
        if not lines:
            return None  # only earlier cycles' fee journals moved: nothing to settle
        settlement_id = new_id("settlement")
        due = fees_due(lines)
        at_cutoff = await self._ledger.balance_as_of(
            partner_id, end
        ) - await tx.settlements.fees_charged_after(partner_id, end)
        # The fee comes out of what the cycle left, never out of money that arrived after
        # its cut-off: the settlement never closes below zero.
        chargeable = max(0, min(due, at_cutoff))
        charged, fee_journal_id = (
            await self._ledger.charge_fee(actor, partner_id, chargeable, CURRENCY, settlement_id)
            if chargeable > 0
            else (0, None)
        )
        lines = carry_forward(lines, due - charged, now, CURRENCY)
        summary = totals(lines)
        opening = await self._ledger.balance_as_of(
            partner_id, start
        ) - await tx.settlements.fees_charged_after(partner_id, start)
        closing = at_cutoff - charged
        if opening + summary.net != closing:
            raise LedgerDisagrees(
                f"Settlement of {partner_id} for {business_date.isoformat()}: opening "
                f"{opening} + net {summary.net} != closing {closing}."
            )
        row = SettlementRow(
            id=settlement_id,
            partner_id=partner_id,
            rail=RAIL,
            business_date=business_date,
            currency=CURRENCY,
            status=SettlementStatus.PAID.value,
            window_start=start,
            window_end=end,
            opening_balance=opening,
            closing_balance=closing,
            gross_collections=summary.gross_collections,
            refunds=summary.refunds,
            payouts=summary.payouts,
            fees=due,
            fees_charged=charged,
            fees_carried_forward=due - charged,
            dispute_holds=summary.dispute_holds,
            dispute_reversals=summary.dispute_reversals,
            adjustments=summary.adjustments,
            other=summary.other,
            net=summary.net,
            line_count=summary.line_count,
            fee_journal_id=fee_journal_id,
            created_at=now,
        )
        await tx.settlements.add(row, lines)
        tx.publish(PartnerNotice(partner_id, "settlement.paid", row.id, settlement_view(row)))
        return row

    # -- reading ------------------------------------------------------------------------

    async def get(self, partner_id: str | None, settlement_id: str) -> SettlementRow:
        async with self._tx.read() as tx:
            row = await tx.settlements.get(settlement_id)
        if row is None or (partner_id is not None and row.partner_id != partner_id):
            raise NotFound("No such settlement.")
        return row

    async def page(
        self,
        partner_id: str | None,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        business_date: date | None = None,
    ) -> tuple[list[SettlementRow], bool]:
        async with self._tx.read() as tx:
            rows = await tx.settlements.page(
                partner_id, limit=limit + 1, before=before, business_date=business_date
            )
        return rows[:limit], len(rows) > limit

    async def lines(
        self, partner_id: str | None, settlement_id: str, *, after_seq: int, limit: int | None
    ) -> tuple[SettlementRow, list[SettlementLine]]:
        async with self._tx.read() as tx:
            row = await tx.settlements.get(settlement_id)
            if row is None or (partner_id is not None and row.partner_id != partner_id):
                raise NotFound("No such settlement.")
            lines = await tx.settlements.lines(settlement_id, after_seq=after_seq, limit=limit)
        return row, lines
