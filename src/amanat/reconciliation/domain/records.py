"""The two sides reconciliation compares, and what comparing them produces.

*Internal* items are amanat's own settled payments (one per payment; its id is the rail's
end-to-end id). *External* records are what the other side reports: a statement entry, a
notification's transaction, a row of a settlement CSV. Amounts are integer minor units,
always positive; the direction says which way the money moved, seen from the platform's
account at the bank or the rail (collections come in as credits, payouts and refunds go
out as debits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class Direction(StrEnum):
    CREDIT = "credit"  # money into the platform's account (collections)
    DEBIT = "debit"  # money out of it (payouts, refunds)


class Outcome(StrEnum):
    """Every result of matching is one of these, explicitly; the last four are breaks."""

    MATCHED = "matched"
    PARTIALLY_MATCHED = "partially_matched"
    UNMATCHED_INTERNAL = "unmatched_internal"
    UNMATCHED_EXTERNAL = "unmatched_external"
    AMOUNT_MISMATCH = "amount_mismatch"
    DUPLICATE = "duplicate"


BREAK_KINDS = frozenset(
    {
        Outcome.UNMATCHED_INTERNAL,
        Outcome.UNMATCHED_EXTERNAL,
        Outcome.AMOUNT_MISMATCH,
        Outcome.DUPLICATE,
    }
)


@dataclass(frozen=True, slots=True)
class BatchMember:
    """One transaction inside a batch entry, as far as the other side described it."""

    end_to_end_id: str | None
    reference: str | None = None
    amount: int | None = None  # gross, minor units, when the report gives it


@dataclass(frozen=True, slots=True)
class ExternalRecord:
    """One record of the other side's report, normalised.

    ``external_id`` is stable and unique within its source (the bank's entry or
    transaction reference, or a digest of the record's fields when the report has none):
    re-importing a file or an overlapping one finds the record by it and adds nothing.
    ``amount`` is what was booked: for a batch, the net of ``fees``. ``location`` says
    where in the file it came from ("line 12", "Stmt[1]/Ntry[3]").
    """

    external_id: str
    direction: Direction
    amount: int
    currency: str
    value_date: date | None = None
    booking_date: date | None = None
    end_to_end_id: str | None = None
    reference: str | None = None
    batch_reference: str | None = None
    members: tuple[BatchMember, ...] = ()
    fees: int = 0
    uetr: str | None = None
    location: str = ""


@dataclass(frozen=True, slots=True)
class InternalItem:
    """A payment amanat settled, with how much of it the other side has accounted for."""

    payment_id: str  # also the end-to-end id the rail carries
    partner_id: str
    direction: Direction
    amount: int
    currency: str
    settled_on: date  # the Asia/Karachi business date it settled
    reference: str | None = None
    matched: int = 0  # minor units already matched (partial settlements), 0..amount

    @property
    def remaining(self) -> int:
        return self.amount - self.matched


@dataclass(frozen=True, slots=True)
class MatchRules:
    """A source's tolerances: how far an amount or a date may differ and still match."""

    amount_tolerance: int = 0  # minor units
    date_tolerance_days: int = 0
    allow_partial: bool = False  # an underpayment by end-to-end id is a part, not a mismatch


@dataclass(frozen=True, slots=True)
class Difference:
    """One field that differs between the two sides, with both values as text."""

    field: str
    ours: str | None
    theirs: str | None


@dataclass(frozen=True, slots=True)
class Match:
    """External records accounted for by internal items: one-to-one, one-to-many (a
    batch), or a part of one payment. ``allocations`` names how much of each payment this
    match covers; ``fees`` is what the other side kept (gross minus booked)."""

    rule: str
    outcome: Outcome  # MATCHED or PARTIALLY_MATCHED
    external_ids: tuple[str, ...]
    allocations: tuple[tuple[str, int], ...]
    amount: int
    fees: int = 0


@dataclass(frozen=True, slots=True)
class Break:
    """A non-match, with what an operator needs to resolve it."""

    kind: Outcome
    amount: int
    currency: str
    internal_id: str | None = None
    external_id: str | None = None
    differences: tuple[Difference, ...] = ()
    suggested_cause: str = ""


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: tuple[Match, ...] = ()
    breaks: tuple[Break, ...] = ()
    # Items still open after this run, carried to the next: their other half may come.
    open_internal: tuple[InternalItem, ...] = ()
    open_external: tuple[ExternalRecord, ...] = field(default=())
