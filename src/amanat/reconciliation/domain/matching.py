"""The matching engine: which of the other side's records account for which of amanat's
payments, and what is left over for an operator.

Reconciliation compares amanat's settled payments (``InternalItem``) with what the bank or
the rail reports (``ExternalRecord``). Most records name the payment exactly, by its
end-to-end id; the rest need weaker evidence, so the rules run from the strongest to the
weakest, and a record is used by at most one of them, once, ever:

1. **end_to_end_id**: the record's end-to-end id is the payment's id. Same direction and
   currency, amount within the tolerance: matched. Less than what remains, when the source
   allows partial settlement: a part, the rest stays open for later parts. Anything else
   is an amount mismatch (both stay open for an operator), or a duplicate when the payment
   is already wholly accounted for.
2. **reference**: the record's reference is carried by exactly one open payment that
   agrees in direction, currency, amount and date (within the tolerances).
3. **batch**: the record lists its members by end-to-end id; their open amounts, less the
   fees the bank kept, make the booked amount. Otherwise an amount mismatch naming the
   members that do not fit.
4. **value_date_group**: a record with no id at all equals, with its fees, the total of
   every open payment of its direction and currency settled on its value date.

Rules 1 and 3 act on payments a record names by end-to-end id; rules 2 and 4 only on
payments no record names and no earlier part touched (a payment named by its id belongs
to that record, even when they disagree, and a partly settled payment's other parts come
by its id). So the two families never compete for a payment, and rules 2 and 4 repeat
until they find nothing more: running again on what is left finds nothing new.

Whatever is left becomes a break, each with the differing fields and a plain-English
cause: records nobody claims (unmatched external), and due payments the other side has
not reported (unmatched internal). Payments settled after ``as_of`` are carried open
without a break. The result does not depend on the order of the input: records are taken
in ``external_id`` order, contested payments go to the first record in that order, and
every output is sorted.

Pure: no I/O, no clock. Fast enough for a million payments against a million records in
a few seconds in pure Python: dict indexes, one pass over the records for rule 1 (where
nearly all of them end), and rules 2 to 4 index only what their records could want.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from itertools import repeat
from operator import attrgetter
from types import MemberDescriptorType

from amanat.kernel.money import CURRENCY_EXPONENTS
from amanat.reconciliation.domain.collector import collector_paused
from amanat.reconciliation.domain.records import (
    Break,
    Difference,
    Direction,
    ExternalRecord,
    InternalItem,
    Match,
    MatchResult,
    MatchRules,
    Outcome,
)

RULE_END_TO_END_ID = "end_to_end_id"
RULE_REFERENCE = "reference"
RULE_BATCH = "batch"
RULE_VALUE_DATE_GROUP = "value_date_group"

# How many ids a suggested cause names before it says "and N more".
_NAMED_IDS = 5

_external_id = attrgetter("external_id")
_payment_id = attrgetter("payment_id")
_BREAK_ORDER = {kind: n for n, kind in enumerate(Outcome)}

# Rule 4's groups: direction, currency, settlement date.
_Day = tuple[Direction, str, date]


def match(
    internal: Iterable[InternalItem],
    external: Iterable[ExternalRecord],
    rules: MatchRules,
    *,
    as_of: date,
) -> MatchResult:
    """Match ``external`` records against ``internal`` payments under ``rules``.

    ``internal``: the open payments (remaining > 0), plus fully matched ones so that a
    record repeating one is recognised as a duplicate. ``external``: records not yet
    consumed, new and carried. Payment ids, and external ids, must be unique (a record
    given twice, identical, counts once). ``as_of`` is the business date of the run:
    payments settled after it are not yet due.
    """
    records = sorted(external, key=_external_id)
    # A run makes a few small objects per record and no reference cycle: the collector
    # would only walk the million live inputs again and again.
    with collector_paused():
        run = _Run(list(internal), rules)
        unfit, batches, others = run.by_end_to_end_id(records)
        run.by_batch(batches)
        run.by_reference_and_value_date(others)
        # Only now: a batch may have taken a payment an unfit record named, which makes
        # that record a duplicate rather than a mismatch.
        for record, i in unfit:
            run.unfit_break(record, i)
        return run.result(as_of)


def _gross(record: ExternalRecord) -> int:
    """What the payments behind a record add up to: the booked amount with the bank's
    fees put back (money in: it kept them) or taken out (money out: it took them too)."""
    if record.direction is Direction.CREDIT:
        return record.amount + record.fees
    return record.amount - record.fees


@dataclass(slots=True)
class _Note:
    """Why a record that rules 2 to 4 tried did not match, for its break."""

    cause: str
    differences: tuple[Difference, ...] = ()


class _Run:
    """One run's state: the payments by position, what each still has open, the matches.

    ``remaining[i]`` is payment ``i``'s open amount, updated as records consume it; the
    input items are replaced only at the end, for the few that changed and stay open.
    """

    def __init__(self, items: list[InternalItem], rules: MatchRules) -> None:
        self.items = items
        self.rules = rules
        self.position = _positions(items)
        self.remaining = [item.amount - item.matched for item in items]
        self.matches: list[Match] = []
        self.breaks: list[Break] = []
        # Payments named by a record by end-to-end id (rules 1 and 3), even when that
        # record does not match: rules 2 and 4 leave them alone.
        self.named: set[int] = set()
        # Payments an operator must look at through an amount mismatch: not also
        # reported as unmatched.
        self.disputed: set[int] = set()
        self.open_records: list[ExternalRecord] = []

    # -- rule 1 ------------------------------------------------------------------------

    def by_end_to_end_id(
        self, records: list[ExternalRecord]
    ) -> tuple[list[tuple[ExternalRecord, int]], list[ExternalRecord], list[ExternalRecord]]:
        """Rule 1, over ``records`` sorted by external id. The hot loop: nearly every record
        ends here, so it does as little as it can. Returns the records that named a payment
        and did not fit it (judged at the end, against what the payment has left then), the
        batches, and the records for rules 2 and 4."""
        position = self.position
        remaining = self.remaining
        items = self.items
        tolerance = self.rules.amount_tolerance
        allow_partial = self.rules.allow_partial
        # The matches' fields, a column each, made into Match objects at the end (see
        # _matches).
        outcomes: list[Outcome] = []
        external_ids: list[tuple[str]] = []
        allocations: list[tuple[tuple[str, int]]] = []
        amounts: list[int] = []
        fees: list[int] = []
        matched, partially_matched = Outcome.MATCHED, Outcome.PARTIALLY_MATCHED
        # A later part may complete the payment an unfit record named, which makes that
        # record a duplicate rather than a mismatch: hence judged at the end.
        unfit: list[tuple[ExternalRecord, int]] = []
        batches: list[ExternalRecord] = []
        others: list[ExternalRecord] = []
        previous: ExternalRecord | None = None
        previous_id = None
        for record in records:
            external_id = record.external_id
            if external_id == previous_id:
                if record == previous:
                    continue  # the same record given twice: once is enough
                raise ValueError(f"two different records have the id {external_id!r}")
            previous, previous_id = record, external_id
            if record.members:
                batches.append(record)
                continue
            i = position.get(record.end_to_end_id)  # None for no id: no payment has None
            if i is None:
                others.append(record)
                continue
            left = remaining[i]
            item = items[i]
            if left > 0 and record.direction == item.direction and record.currency == item.currency:
                gross = _gross(record)
                excess = gross - left
                if -tolerance <= excess <= tolerance:
                    remaining[i] = 0
                    outcomes.append(matched)
                    allocations.append(((item.payment_id, left),))
                elif excess < 0 and allow_partial and gross > 0:
                    remaining[i] = left - gross
                    outcomes.append(partially_matched)
                    allocations.append(((item.payment_id, gross),))
                else:
                    unfit.append((record, i))
                    continue
                external_ids.append((external_id,))
                amounts.append(record.amount)
                fees.append(record.fees)
                continue
            unfit.append((record, i))
        self.matches += _matches(
            RULE_END_TO_END_ID, outcomes, external_ids, allocations, amounts, fees
        )
        self.named.update(i for _, i in unfit)
        return unfit, batches, others

    def unfit_break(self, record: ExternalRecord, i: int) -> None:
        item = self.items[i]
        left = self.remaining[i]
        gross = _gross(record)
        same_way = record.direction == item.direction and record.currency == item.currency
        self.open_records.append(record)
        if same_way and left == 0:
            self.breaks.append(
                Break(
                    Outcome.DUPLICATE,
                    record.amount,
                    record.currency,
                    internal_id=item.payment_id,
                    external_id=record.external_id,
                    differences=_amount_difference(item.amount, gross),
                    suggested_cause=(
                        f"the bank reported this payment twice: {item.payment_id} "
                        f"({_money(item.amount, item.currency)}) is already fully matched"
                    ),
                )
            )
            return
        self.disputed.add(i)
        differences = list(_amount_difference(left, gross))
        causes = []
        if record.direction != item.direction:
            differences.append(Difference("direction", item.direction, record.direction))
            causes.append(
                f"the bank reports this payment as a {record.direction} where amanat has a "
                f"{item.direction}: a return or a reversal may have been booked against it"
            )
        if record.currency != item.currency:
            differences.append(Difference("currency", item.currency, record.currency))
            causes.append(
                f"the bank reports it in {record.currency} where amanat paid {item.currency}"
            )
        if same_way:
            causes.append(self._amount_cause(item, left, record))
        self.breaks.append(
            Break(
                Outcome.AMOUNT_MISMATCH,
                record.amount,
                record.currency,
                internal_id=item.payment_id,
                external_id=record.external_id,
                differences=tuple(differences),
                suggested_cause="; ".join(causes),
            )
        )

    def _amount_cause(self, item: InternalItem, left: int, record: ExternalRecord) -> str:
        gross = _gross(record)
        currency = item.currency
        booked = _money(record.amount, currency)
        if record.fees:
            booked += f" plus {_money(record.fees, currency)} of fees"
        earlier = (
            f" ({_money(item.amount - left, currency)} of {_money(item.amount, currency)} "
            "was already matched)"
            if left < item.amount
            else ""
        )
        if gross > left:
            repeat = ": it may repeat an earlier part" if left < item.amount else ""
            return (
                f"the bank booked {booked} against {_money(left, currency)} open on "
                f"{item.payment_id}{earlier}, {_money(gross - left, currency)} more{repeat}"
            )
        if gross <= 0:
            return f"the bank booked {booked} against {_money(left, currency)}: nothing moved"
        return (
            f"the bank booked {booked} against {_money(left, currency)} open on "
            f"{item.payment_id}{earlier}: the bank may have kept "
            f"{_money(left - gross, currency)} as fees, or settled it in part (this source "
            "does not allow partial settlement)"
        )

    # -- rule 3 ------------------------------------------------------------------------

    def by_batch(self, batches: list[ExternalRecord]) -> None:
        tolerance = self.rules.amount_tolerance
        failed: list[ExternalRecord] = []
        for record in batches:
            members = self._members(record)
            self.named.update(members.known)
            self.named.update(members.settled)
            self.named.update(members.other_way)
            if members.fit(record, tolerance):
                allocations = []
                for i in members.known:
                    allocations.append((self.items[i].payment_id, self.remaining[i]))
                    self.remaining[i] = 0
                self.matches.append(
                    Match(
                        RULE_BATCH,
                        Outcome.MATCHED,
                        (record.external_id,),
                        tuple(allocations),
                        record.amount,
                        record.fees,
                    )
                )
            else:
                failed.append(record)
        # Judged once every batch has taken its members: a failed batch never succeeds
        # later (its members only get fewer), but why it failed reads from the final state.
        for record in failed:
            self._batch_break(record, self._members(record))

    def _members(self, record: ExternalRecord) -> _Members:
        members = _Members()
        seen: set[int] = set()
        for member in record.members:
            e2e = member.end_to_end_id
            i = self.position.get(e2e) if e2e is not None else None
            if i is None:
                members.unknown.append(e2e or member.reference or "a member without an id")
                continue
            if i in seen:
                members.repeated.append(self.items[i].payment_id)
                continue
            seen.add(i)
            item = self.items[i]
            if item.direction != record.direction or item.currency != record.currency:
                members.other_way.append(i)
            elif self.remaining[i] == 0:
                members.settled.append(i)
            else:
                members.known.append(i)
                members.total += self.remaining[i]
        return members

    def _batch_break(self, record: ExternalRecord, members: _Members) -> None:
        self.open_records.append(record)
        gross = _gross(record)
        currency = record.currency
        ids = self.ids
        if members.settled and not (members.known or members.unknown or members.other_way):
            self.breaks.append(
                Break(
                    Outcome.DUPLICATE,
                    record.amount,
                    currency,
                    internal_id=self.items[members.settled[0]].payment_id
                    if len(members.settled) == 1
                    else None,
                    external_id=record.external_id,
                    suggested_cause=(
                        f"the bank reported this batch twice: all {len(members.settled)} of "
                        f"its payments are already matched ({ids(members.settled)})"
                    ),
                )
            )
            return
        self.disputed.update(members.known)
        causes = []
        if members.unknown:
            causes.append(
                f"{len(members.unknown)} of its {len(record.members)} members are payments "
                f"amanat has no record of ({_names(sorted(members.unknown))})"
            )
        if members.settled:
            causes.append(
                f"{len(members.settled)} of its members are already matched "
                f"({ids(members.settled)})"
            )
        if members.other_way:
            causes.append(
                f"{len(members.other_way)} of its members moved another way or in another "
                f"currency ({ids(members.other_way)})"
            )
        if members.repeated:
            causes.append(f"it lists {_names(sorted(members.repeated))} more than once")
        booked = _money(record.amount, currency)
        if record.fees:
            booked += f" plus {_money(record.fees, currency)} of fees"
        summary = (
            f"the bank booked {booked} for the batch; the {len(members.known)} open "
            f"payments amanat knows in it total {_money(members.total, currency)}"
        )
        if not causes and members.total > gross:
            kept = members.total - record.amount
            summary += f": the bank kept {_money(kept, currency)} as fees"
            if record.fees:
                summary += f", not the {_money(record.fees, currency)} it reports"
        elif not causes:
            summary += f": {_money(gross - members.total, currency)} more than they account for"
        causes.append(summary)
        self.breaks.append(
            Break(
                Outcome.AMOUNT_MISMATCH,
                record.amount,
                currency,
                internal_id=self.items[members.known[0]].payment_id
                if len(members.known) == 1
                else None,
                external_id=record.external_id,
                differences=(Difference("amount", str(members.total), str(gross)),),
                suggested_cause="; ".join(causes),
            )
        )

    def ids(self, positions: Sequence[int]) -> str:
        return _names(sorted(self.items[i].payment_id for i in positions))

    # -- rules 2 and 4 -----------------------------------------------------------------

    def by_reference_and_value_date(self, records: list[ExternalRecord]) -> None:
        """Records that named no known payment: by reference, then by value date.

        Both take only payments nobody names, so one record matching may leave another
        unambiguous: both rules run again over what is left until a round matches
        nothing, and the notes of that last round explain the breaks.
        """
        notes: dict[str, _Note] = {}
        pending = records
        if records:
            index = _Candidates(self, records)
            while True:
                notes = {}
                index.progressed = False
                pending = [r for r in pending if not index.by_reference(r, notes)]
                pending = [r for r in pending if not index.by_value_date(r, notes)]
                if not index.progressed:
                    break
        for record in pending:
            note = notes.get(record.external_id) or _Note(_unknown_cause(record))
            self.open_records.append(record)
            self.breaks.append(
                Break(
                    Outcome.UNMATCHED_EXTERNAL,
                    record.amount,
                    record.currency,
                    external_id=record.external_id,
                    differences=note.differences
                    or (Difference("amount", None, str(_gross(record))),),
                    suggested_cause=note.cause,
                )
            )

    # -- the end -----------------------------------------------------------------------

    def result(self, as_of: date) -> MatchResult:
        items = self.items
        remaining = self.remaining
        still_open: list[InternalItem] = []
        for i, left in enumerate(remaining):
            if not left:
                continue
            item = items[i]
            if left != item.amount - item.matched:
                item = InternalItem(
                    item.payment_id,
                    item.partner_id,
                    item.direction,
                    item.amount,
                    item.currency,
                    item.settled_on,
                    item.reference,
                    item.amount - left,
                )
            still_open.append(item)
            if item.settled_on <= as_of and i not in self.disputed:
                self.breaks.append(_unmatched_internal(item))
        still_open.sort(key=_payment_id)
        self.open_records.sort(key=_external_id)
        self.breaks.sort(
            key=lambda b: (_BREAK_ORDER[b.kind], b.external_id or "", b.internal_id or "")
        )
        return MatchResult(
            matches=tuple(self.matches),
            breaks=tuple(self.breaks),
            open_internal=tuple(still_open),
            open_external=tuple(self.open_records),
        )


@dataclass(slots=True)
class _Members:
    """A batch's members, sorted by what amanat knows of them (positions in the run)."""

    known: list[int] = field(default_factory=list)  # open: ``total`` is their remaining
    settled: list[int] = field(default_factory=list)  # already wholly matched
    other_way: list[int] = field(default_factory=list)  # another direction or currency
    unknown: list[str] = field(default_factory=list)  # ids amanat has no payment for
    repeated: list[str] = field(default_factory=list)  # listed twice in the batch
    total: int = 0

    def fit(self, record: ExternalRecord, tolerance: int) -> bool:
        """Every member is an open payment of amanat's, listed once, and their open
        amounts less the fees make what was booked."""
        return (
            bool(self.known)
            and not (self.unknown or self.settled or self.other_way or self.repeated)
            and abs(self.total - _gross(record)) <= tolerance
        )


class _Candidates:
    """Indexes of the payments rules 2 and 4 may take, built for the records that want
    them: by reference, and by (direction, currency, settlement date).

    A payment is a candidate while untouched: open in full, never partly matched, and
    named by no record by end-to-end id.
    """

    def __init__(self, run: _Run, records: list[ExternalRecord]) -> None:
        self.run = run
        self.progressed = False
        rules = run.rules
        references = {r.reference for r in records if r.reference is not None}
        span = rules.date_tolerance_days
        days = [timedelta(days=k) for k in range(-span, span + 1)]
        keys: set[_Day] = set()
        for record in records:
            when = _record_date(record)
            if _groupable(record) and when is not None:
                keys.update((record.direction, record.currency, when + d) for d in days)
        self.by_ref: dict[str, list[int]] = {}
        self.by_day: dict[_Day, list[int]] = {}
        if not references and not keys:
            return
        remaining = run.remaining
        named = run.named
        for i, item in enumerate(run.items):
            if remaining[i] != item.amount or item.matched or i in named:
                continue
            if item.reference is not None and item.reference in references:
                self.by_ref.setdefault(item.reference, []).append(i)
            key = (item.direction, item.currency, item.settled_on)
            if key in keys:
                self.by_day.setdefault(key, []).append(i)
        # Allocations and ambiguity lists in payment-id order, whatever the input order.
        items = run.items
        for positions in (*self.by_ref.values(), *self.by_day.values()):
            positions.sort(key=lambda i: items[i].payment_id)

    def _take(self, record: ExternalRecord, rule: str, positions: Sequence[int]) -> None:
        run = self.run
        allocations = []
        for i in positions:
            allocations.append((run.items[i].payment_id, run.remaining[i]))
            run.remaining[i] = 0
        run.matches.append(
            Match(
                rule,
                Outcome.MATCHED,
                (record.external_id,),
                tuple(allocations),
                record.amount,
                record.fees,
            )
        )
        self.progressed = True

    def by_reference(self, record: ExternalRecord, notes: dict[str, _Note]) -> bool:
        """Rule 2. True when the record matched."""
        if record.reference is None:
            return False
        run = self.run
        remaining = run.remaining
        candidates = [i for i in self.by_ref.get(record.reference, ()) if remaining[i]]
        if not candidates:
            return False
        tolerance = run.rules.amount_tolerance
        span = run.rules.date_tolerance_days
        gross = _gross(record)
        when = _record_date(record)
        fitting = []
        for i in candidates:
            item = run.items[i]
            if (
                item.direction == record.direction
                and item.currency == record.currency
                and abs(gross - remaining[i]) <= tolerance
                and when is not None
                and abs((item.settled_on - when).days) <= span
            ):
                fitting.append(i)
        if len(fitting) == 1:
            self._take(record, RULE_REFERENCE, fitting)
            return True
        if fitting:
            notes[record.external_id] = _Note(
                f"several payments carry this reference ({run.ids(fitting)}) and agree with "
                "it: match it by hand"
            )
        else:
            notes[record.external_id] = self._reference_near_miss(record, candidates, when)
        return False

    def _reference_near_miss(
        self, record: ExternalRecord, candidates: list[int], when: date | None
    ) -> _Note:
        run = self.run
        if len(candidates) > 1:
            return _Note(
                f"several payments carry this reference ({run.ids(candidates)}), none with "
                "its amount, direction, currency and date: money moved that amanat has no "
                "record of, or a payment was settled differently"
            )
        i = candidates[0]
        item = run.items[i]
        left = run.remaining[i]
        differences = list(_amount_difference(left, _gross(record)))
        for name, ours, theirs in (
            ("direction", item.direction, record.direction),
            ("currency", item.currency, record.currency),
        ):
            if ours != theirs:
                differences.append(Difference(name, ours, theirs))
        if when is None:
            differences.append(Difference("date", item.settled_on.isoformat(), None))
        elif abs((item.settled_on - when).days) > run.rules.date_tolerance_days:
            differences.append(Difference("date", item.settled_on.isoformat(), when.isoformat()))
        fields = ", ".join(d.field for d in differences)
        return _Note(
            f"payment {item.payment_id} carries this reference but its {fields} differ: "
            "the same payment booked differently, or another payment with a reused reference",
            tuple(differences),
        )

    def by_value_date(self, record: ExternalRecord, notes: dict[str, _Note]) -> bool:
        """Rule 4. True when the record matched.

        No search for a subset of the day's payments that happens to add up: the number
        of subsets grows as 2^n, and a subset found that way is a coincidence nobody can
        justify to an auditor. Only the whole day counts, or the case stays open.
        """
        when = _record_date(record)
        if not _groupable(record) or when is None:
            return False
        run = self.run
        tolerance = run.rules.amount_tolerance
        gross = _gross(record)
        key = (record.direction, record.currency, when)
        day = self._open(key)
        if day and abs(self._total(day) - gross) <= tolerance:
            self._take(record, RULE_VALUE_DATE_GROUP, day)
            return True
        span = run.rules.date_tolerance_days
        near = []
        for k in range(1, span + 1):
            for shifted in (when - timedelta(days=k), when + timedelta(days=k)):
                other = self._open((record.direction, record.currency, shifted))
                if other and abs(self._total(other) - gross) <= tolerance:
                    near.append((shifted, other))
        if len(near) == 1:
            self._take(record, RULE_VALUE_DATE_GROUP, near[0][1])
            return True
        if near:
            dates = ", ".join(sorted(d.isoformat() for d, _ in near))
            notes[record.external_id] = _Note(
                f"the payments of several days ({dates}) each add up to this amount: match "
                "it by hand"
            )
        elif day and record.external_id not in notes:
            total = self._total(day)
            notes[record.external_id] = _Note(
                f"the {len(day)} open {record.direction}s amanat settled on {when} total "
                f"{_money(total, record.currency)}, the bank booked "
                f"{_money(gross, record.currency)}: a payment is missing on one side, or "
                "the bank booked the day in several parts",
                (Difference("amount", str(total), str(gross)),),
            )
        return False

    def _open(self, key: _Day) -> list[int]:
        remaining = self.run.remaining
        return [i for i in self.by_day.get(key, ()) if remaining[i]]

    def _total(self, positions: list[int]) -> int:
        remaining = self.run.remaining
        return sum(remaining[i] for i in positions)


# -- helpers ------------------------------------------------------------------------------


def _positions(items: list[InternalItem]) -> dict[str | None, int]:
    """Payment id -> position. The same item given twice counts once; two different
    items with one id are the caller's error, refused rather than guessed between."""
    # Keyed by ``str | None`` so that a record without an end-to-end id looks itself up
    # like any other and finds nothing, without a test in the hot loop.
    position: dict[str | None, int] = dict(
        zip(map(_payment_id, items), range(len(items)), strict=True)
    )
    if len(position) == len(items):
        return position
    kept: dict[str, InternalItem] = {}
    for item in items:
        other = kept.setdefault(item.payment_id, item)
        if other != item:
            raise ValueError(f"two different payments have the id {item.payment_id!r}")
    items[:] = sorted(kept.values(), key=_payment_id)
    return {item.payment_id: i for i, item in enumerate(items)}


# Setting a frozen dataclass's slots directly, a column at a time, makes a million matches
# in a third of the time Match(...) takes (its __init__ calls object.__setattr__ per
# field): a second of a million-record run. Sound only while Match checks nothing on
# construction and keeps its fields in slots, as records.py has it; otherwise matches are
# made the ordinary way. csv_import.py makes its records the same way.
_MATCH_FIELDS = tuple(f.name for f in fields(Match))
_MATCH_SLOTS_SETTABLE = not hasattr(Match, "__post_init__") and all(
    isinstance(getattr(Match, name, None), MemberDescriptorType) for name in _MATCH_FIELDS
)


def _matches(
    rule: str,
    outcomes: list[Outcome],
    external_ids: list[tuple[str]],
    allocations: list[tuple[tuple[str, int]]],
    amounts: list[int],
    fees: list[int],
) -> list[Match]:
    """Matches of one rule from their fields' columns (all of one length)."""
    count = len(outcomes)
    columns: dict[str, Iterable[object]] = {
        "rule": repeat(rule, count),
        "outcome": outcomes,
        "external_ids": external_ids,
        "allocations": allocations,
        "amount": amounts,
        "fees": fees,
    }
    if not _MATCH_SLOTS_SETTABLE:
        return [
            Match(rule, *row)
            for row in zip(outcomes, external_ids, allocations, amounts, fees, strict=True)
        ]
    made = [object.__new__(Match) for _ in range(count)]
    for name in _MATCH_FIELDS:
        deque(map(getattr(Match, name).__set__, made, columns[name]), maxlen=0)
    return made


def _record_date(record: ExternalRecord) -> date | None:
    return record.value_date or record.booking_date


def _groupable(record: ExternalRecord) -> bool:
    return record.end_to_end_id is None and not record.members


def _unknown_cause(record: ExternalRecord) -> str:
    if record.end_to_end_id is not None:
        return (
            f"no amanat payment has the end-to-end id {record.end_to_end_id}: money moved "
            "that amanat has no record of"
        )
    return "money moved that amanat has no record of"


def _unmatched_internal(item: InternalItem) -> Break:
    left = item.amount - item.matched
    if item.matched:
        cause = (
            f"settled in part: {_money(item.matched, item.currency)} of "
            f"{_money(item.amount, item.currency)}; the bank has not reported the other "
            f"{_money(left, item.currency)} yet"
        )
        differences = (Difference("amount", str(item.amount), str(item.matched)),)
    else:
        cause = (
            f"the bank has not reported this payment (settled {item.settled_on}) yet: it "
            "may settle in a later cycle"
        )
        differences = (Difference("amount", str(left), None),)
    return Break(
        Outcome.UNMATCHED_INTERNAL,
        left,
        item.currency,
        internal_id=item.payment_id,
        differences=differences,
        suggested_cause=cause,
    )


def _amount_difference(ours: int, theirs: int) -> tuple[Difference, ...]:
    return () if ours == theirs else (Difference("amount", str(ours), str(theirs)),)


def _names(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_NAMED_IDS])
    return shown if len(ids) <= _NAMED_IDS else f"{shown} and {len(ids) - _NAMED_IDS} more"


def _money(amount: int, currency: str) -> str:
    """An amount for a sentence: "PKR 1,500.00" (the differences keep minor units)."""
    exponent = CURRENCY_EXPONENTS.get(currency)
    if exponent is None:
        return f"{amount} {currency} minor units"
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**exponent)
    fraction = f".{part:0{exponent}d}" if exponent else ""
    return f"{currency} {sign}{whole:,}{fraction}"
