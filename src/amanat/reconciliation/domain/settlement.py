"""A merchant's settlement for one cycle: what moved its balance, the fees, the net.

amanat holds each merchant's settlement balance in its ledger. At a cycle's close every
journal that moved that balance in the cycle's window becomes a line (collections in;
refunds, payouts and dispute holds out; reversals and adjustments either way), each line
bears its fee, and the fees are charged as one journal. The net is what the cycle changed
the balance by, fees included, so ``opening + net = closing`` ties the report to the
ledger. A fee the balance cannot cover is carried to the next cycle, never taken below
zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class LineKind(StrEnum):
    COLLECTION = "collection"
    REFUND = "refund"
    PAYOUT = "payout"
    DISPUTE_HOLD = "dispute_hold"
    DISPUTE_REVERSAL = "dispute_reversal"
    ADJUSTMENT = "adjustment"
    TOP_UP = "top_up"
    CUSTOMER_FUNDING = "customer_funding"
    CUSTOMER_RETURN = "customer_return"
    FEES_CARRIED_IN = "fees_carried_in"
    FEES_CARRIED_FORWARD = "fees_carried_forward"
    OTHER = "other"


# The ledger's journal kinds, as a settlement names them. Fee journals are not lines:
# each line carries its fee, and the cycle's fee journal charges their sum.
JOURNAL_LINE_KINDS: dict[str, LineKind] = {
    "collection": LineKind.COLLECTION,
    "refund": LineKind.REFUND,
    "payout": LineKind.PAYOUT,
    "dispute_hold": LineKind.DISPUTE_HOLD,
    "dispute_reversal": LineKind.DISPUTE_REVERSAL,
    "dispute_release": LineKind.DISPUTE_REVERSAL,
    "recon_adjustment": LineKind.ADJUSTMENT,
    "top_up": LineKind.TOP_UP,
    "customer_funding": LineKind.CUSTOMER_FUNDING,
    "customer_return": LineKind.CUSTOMER_RETURN,
}
FEE_JOURNAL_KIND = "settlement_fee"


class SettlementStatus(StrEnum):
    PAID = "paid"  # closed: lines final, fees charged, net applied to the balance


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    collection_bps: int = 0  # basis points of each settled collection
    per_payout: int = 0  # minor units per settled payout or refund

    def fee_for(self, kind: LineKind, amount: int) -> int:
        if kind is LineKind.COLLECTION and self.collection_bps:
            # Half up, in minor units: 1.5 paisa is 2.
            return (abs(amount) * self.collection_bps + 5_000) // 10_000
        if kind in (LineKind.PAYOUT, LineKind.REFUND):
            return self.per_payout
        return 0


@dataclass(frozen=True, slots=True)
class Movement:
    """A journal's effect on the merchant's balance (+ added to it)."""

    journal_id: str
    journal_kind: str
    reference: str
    amount: int
    currency: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SettlementLine:
    seq: int
    kind: LineKind
    reference: str  # the payment, refund or other object the journal is about
    journal_id: str | None
    amount: int  # + into the balance, - out of it
    fee: int  # charged by this cycle for this line (a carried-forward fee is negative)
    currency: str
    at: datetime

    @property
    def net(self) -> int:
        return self.amount - self.fee


@dataclass(frozen=True, slots=True)
class Totals:
    gross_collections: int
    refunds: int
    payouts: int
    fees: int
    dispute_holds: int
    dispute_reversals: int
    adjustments: int
    other: int
    net: int
    line_count: int


def settlement_lines(
    movements: Iterable[Movement],
    fees: FeeSchedule,
    *,
    carried_in: int,
    closed_at: datetime,
    currency: str,
) -> list[SettlementLine]:
    """The cycle's lines, oldest first: one per journal (fee journals excluded), and one
    for a fee an earlier cycle could not charge."""
    lines: list[SettlementLine] = []
    for movement in movements:
        if movement.journal_kind == FEE_JOURNAL_KIND or movement.currency != currency:
            continue
        kind = JOURNAL_LINE_KINDS.get(movement.journal_kind, LineKind.OTHER)
        lines.append(
            SettlementLine(
                seq=len(lines) + 1,
                kind=kind,
                reference=movement.reference,
                journal_id=movement.journal_id,
                amount=movement.amount,
                fee=fees.fee_for(kind, movement.amount),
                currency=currency,
                at=movement.at,
            )
        )
    if carried_in:
        lines.append(
            SettlementLine(
                len(lines) + 1,
                LineKind.FEES_CARRIED_IN,
                "",
                None,
                0,
                carried_in,
                currency,
                closed_at,
            )
        )
    return lines


def carry_forward(
    lines: list[SettlementLine], uncharged: int, closed_at: datetime, currency: str
) -> list[SettlementLine]:
    """The lines with a last one giving back the fee the balance could not cover (it is
    due in the next cycle), so the fee column sums to what was charged."""
    if uncharged <= 0:
        return lines
    return [
        *lines,
        SettlementLine(
            len(lines) + 1,
            LineKind.FEES_CARRIED_FORWARD,
            "",
            None,
            0,
            -uncharged,
            currency,
            closed_at,
        ),
    ]


def fees_due(lines: Sequence[SettlementLine]) -> int:
    return sum(line.fee for line in lines)


def totals(lines: Sequence[SettlementLine]) -> Totals:
    def of(*kinds: LineKind) -> int:
        return sum(line.amount for line in lines if line.kind in kinds)

    known = {
        LineKind.COLLECTION,
        LineKind.REFUND,
        LineKind.PAYOUT,
        LineKind.DISPUTE_HOLD,
        LineKind.DISPUTE_REVERSAL,
        LineKind.ADJUSTMENT,
    }
    return Totals(
        gross_collections=of(LineKind.COLLECTION),
        refunds=-of(LineKind.REFUND),
        payouts=-of(LineKind.PAYOUT),
        fees=fees_due(lines),
        dispute_holds=-of(LineKind.DISPUTE_HOLD),
        dispute_reversals=of(LineKind.DISPUTE_REVERSAL),
        adjustments=of(LineKind.ADJUSTMENT),
        other=sum(line.amount for line in lines if line.kind not in known),
        net=sum(line.net for line in lines),
        line_count=len(lines),
    )
