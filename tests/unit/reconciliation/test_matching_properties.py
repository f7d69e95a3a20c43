"""The matching engine's invariants, on generated ledgers run cycle after cycle.

A true ledger (payments settled over a few cycles, both directions) yields the other
side's settlement files: one record per payment, or parts of it (out of order, across
cycles), batches net of fees, day totals of USD payments without ids, late records,
duplicates, records for amounts larger than the payment, records for payments amanat
never made, and payments that never appear. Each cycle's file is matched with what the
previous run carried open, as the service does. Invariants: every record is used at most
once, money is conserved on both sides, the order of a file changes nothing, running
again with nothing new changes nothing, and a payment completes in the run its last part
arrives. Examples per rule: test_matching.py."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from amanat.reconciliation.domain.matching import match
from amanat.reconciliation.domain.records import (
    BatchMember,
    Direction,
    ExternalRecord,
    InternalItem,
    MatchResult,
    MatchRules,
    Outcome,
)

START = date(2026, 3, 2)
RULES = MatchRules(allow_partial=True)
PLANS = ("single", "split", "batch", "group", "missing")


def day(cycle: int) -> date:
    return START + timedelta(days=cycle)


@dataclass
class Scenario:
    payments: list[InternalItem]
    cycles: int
    arrivals: dict[int, list[ExternalRecord]] = field(default_factory=lambda: defaultdict(list))
    # What the generator knows: the payments a duplicate record could be taken for a part
    # of, the records for payments nobody made, and the records for more than the payment.
    tangled: set[str] = field(default_factory=set)
    ghosts: set[str] = field(default_factory=set)
    over: set[str] = field(default_factory=set)
    # Per payment, (arrival cycle, amount) of each record of it, for its progress.
    parts: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))

    def cycle_of(self, item: InternalItem) -> int:
        return (item.settled_on - START).days


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    cycles = draw(st.integers(1, 4))
    count = draw(st.integers(0, 24))
    payments, plans = [], {}
    for n in range(count):
        plan = draw(st.sampled_from(PLANS))
        item = InternalItem(
            payment_id=f"pay_{n:03d}",
            partner_id="prt_1",
            direction=draw(st.sampled_from(Direction)),
            amount=draw(st.integers(3 if plan == "split" else 1, 500_000)),
            # Day totals without ids are in USD only, so no other plan's payment is in them.
            currency="USD" if plan == "group" else "PKR",
            settled_on=day(draw(st.integers(0, cycles - 1))),
        )
        payments.append(item)
        plans[item.payment_id] = plan
    scenario = Scenario(payments, cycles)
    records: list[tuple[int, ExternalRecord]] = []
    # External ids in an order unrelated to anything else (a seed shrinks well).
    numbers = iter(random.Random(draw(st.integers(0, 2**32))).sample(range(10_000), 1_000))

    def external_id() -> str:
        return f"tr_{next(numbers):04d}"

    def lag() -> int:
        return draw(st.integers(0, 2))

    batched: dict[tuple[int, Direction], list[InternalItem]] = defaultdict(list)
    grouped: dict[tuple[int, Direction], list[InternalItem]] = defaultdict(list)
    for item in payments:
        plan, cycle = plans[item.payment_id], scenario.cycle_of(item)
        if plan == "single":
            amounts = [item.amount]
        elif plan == "split":
            cuts = sorted(draw(st.sets(st.integers(1, item.amount - 1), min_size=1, max_size=2)))
            amounts = [b - a for a, b in zip([0, *cuts], [*cuts, item.amount], strict=True)]
        else:
            target = batched if plan == "batch" else grouped
            if plan != "missing":
                target[cycle, item.direction].append(item)
            continue
        for amount in amounts:  # each part arrives on its own, in any order
            arrival = cycle + lag()
            records.append((arrival, _record(external_id(), item, amount)))
            scenario.parts[item.payment_id].append((arrival, amount))
        if draw(st.integers(0, 9)) == 0:  # the bank booked more than was paid
            extra = draw(st.integers(1, 10_000))
            over = _record(external_id(), item, item.amount + extra)
            scenario.over.add(over.external_id)
            records.append((cycle + lag(), over))
    for (cycle, direction), members in sorted(batched.items()):
        total = sum(m.amount for m in members)
        fees = draw(st.integers(0, min(total - 1, 5_000)))
        batch = ExternalRecord(
            external_id(),
            direction,
            _booked(direction, total, fees),
            "PKR",
            value_date=day(cycle),
            batch_reference=f"B{cycle}{direction}",
            members=tuple(BatchMember(m.payment_id, amount=m.amount) for m in members),
            fees=fees,
        )
        arrival = cycle + lag()
        records.append((arrival, batch))
        for m in members:
            scenario.parts[m.payment_id].append((arrival, m.amount))
    for (cycle, direction), members in sorted(grouped.items()):
        total = sum(m.amount for m in members)
        fees = draw(st.integers(0, min(total - 1, 500)))
        total_record = ExternalRecord(
            external_id(),
            direction,
            _booked(direction, total, fees),
            "USD",
            value_date=day(cycle),
            fees=fees,
        )
        arrival = cycle + lag()
        records.append((arrival, total_record))
        for m in members:
            scenario.parts[m.payment_id].append((arrival, m.amount))
    for n in range(draw(st.integers(0, 3))):  # payments amanat never made
        ghost = ExternalRecord(
            external_id(),
            draw(st.sampled_from(Direction)),
            draw(st.integers(1, 100_000)),
            "PKR",
            value_date=day(0),
            end_to_end_id=f"ghost_{n}",
        )
        scenario.ghosts.add(ghost.external_id)
        records.append((draw(st.integers(0, cycles - 1)), ghost))
    for arrival, record in list(records):  # the bank reports some twice, maybe later
        if draw(st.integers(0, 7)) == 0:
            records.append((arrival + lag(), replace(record, external_id=external_id())))
            scenario.tangled.update(_payments_of(record))
            if record.external_id in scenario.ghosts:
                scenario.ghosts.add(records[-1][1].external_id)
            if record.external_id in scenario.over:
                scenario.over.add(records[-1][1].external_id)
    for arrival, record in records:
        scenario.arrivals[arrival].append(record)
    return scenario


def _record(external_id: str, item: InternalItem, amount: int) -> ExternalRecord:
    return ExternalRecord(
        external_id,
        item.direction,
        amount,
        item.currency,
        value_date=item.settled_on,
        end_to_end_id=item.payment_id,
    )


def _payments_of(record: ExternalRecord) -> list[str]:
    if record.end_to_end_id:
        return [record.end_to_end_id]
    return [m.end_to_end_id for m in record.members if m.end_to_end_id]


def _shuffled(values: list[object] | tuple[object, ...], seed: int) -> list[object]:
    copy = list(values)
    random.Random(seed).shuffle(copy)
    return copy


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_cycle_after_cycle_the_engine_keeps_its_invariants(scenario: Scenario) -> None:
    state = {p.payment_id: p for p in scenario.payments}
    allocated: dict[str, int] = defaultdict(int)
    used: set[str] = set()  # external ids consumed, over all runs
    delivered: set[str] = set()
    consumed_money = allocated_money = 0
    carried: list[ExternalRecord] = []
    last_cycle = scenario.cycles + 2  # the latest record arrives two cycles late
    for cycle in range(last_cycle + 1):
        as_of = day(cycle)
        # amanat knows the payments settled so far, and tomorrow's (not yet due).
        internal = [p for p in state.values() if p.settled_on <= as_of + timedelta(days=1)]
        new = scenario.arrivals.get(cycle, [])
        delivered.update(r.external_id for r in new)
        external = [*carried, *new]
        result = match(internal, external, RULES, as_of=as_of)

        # The order of the input changes nothing (and the output's order is fixed).
        again = match(
            _shuffled(internal, cycle), _shuffled(external, cycle + 1), RULES, as_of=as_of
        )
        assert again == result
        assert set(again.breaks) == set(result.breaks)

        # Each record is used at most once, ever; whatever is not used is carried.
        given_ids = {r.external_id for r in external}
        consumed = [x for m in result.matches for x in m.external_ids]
        assert len(consumed) == len(set(consumed))
        assert not used & set(consumed)
        assert set(consumed) <= given_ids
        used.update(consumed)
        carried_ids = {r.external_id for r in result.open_external}
        assert carried_ids | set(consumed) == given_ids
        assert not carried_ids & set(consumed)

        # Money: each match's records (booked, with the bank's fees put back: kept from
        # money in, taken with money out) are what it allocates.
        by_id = {r.external_id: r for r in external}
        for m in result.matches:
            booked = sum(_gross(by_id[x]) for x in m.external_ids)
            assert booked == sum(a for _, a in m.allocations)
            consumed_money += booked
            allocated_money += booked
            for payment_id, amount in m.allocations:
                assert amount > 0
                allocated[payment_id] += amount
        for payment_id, item in state.items():
            assert 0 <= allocated[payment_id] <= item.amount
        open_now = {p.payment_id: p for p in result.open_internal}
        for item in internal:
            left = open_now.get(item.payment_id)
            if left is None:
                assert allocated[item.payment_id] == item.amount
            else:
                assert left.matched == allocated[item.payment_id] < item.amount
            state[item.payment_id] = replace(item, matched=allocated[item.payment_id])

        _check_breaks(scenario, result, as_of)

        # Running again with nothing new changes nothing.
        rerun = match(
            [p for p in state.values() if p.settled_on <= as_of + timedelta(days=1)],
            list(result.open_external),
            RULES,
            as_of=as_of,
        )
        assert rerun.matches == ()
        assert rerun.breaks == result.breaks
        assert rerun.open_internal == result.open_internal
        assert rerun.open_external == result.open_external

        # A payment whose records are all its own has matched what has arrived of it:
        # an item open after one cycle completes in the cycle its other half arrives.
        for payment_id, parts in scenario.parts.items():
            if payment_id in scenario.tangled:
                continue
            arrived = sum(amount for when, amount in parts if when <= cycle)
            assert allocated[payment_id] == arrived, (payment_id, parts, cycle)

        carried = list(result.open_external)

    # Totals on both sides: matched plus open is everything.
    assert sum(allocated.values()) == allocated_money == consumed_money
    assert sum(p.matched for p in state.values()) == allocated_money
    assert sum(p.amount - p.matched for p in state.values()) + allocated_money == sum(
        p.amount for p in scenario.payments
    )
    assert used | {r.external_id for r in carried} == delivered
    assert not used & {r.external_id for r in carried}


def _check_breaks(scenario: Scenario, result: MatchResult, as_of: date) -> None:
    """Every carried record has exactly one break, of the kind its making implies; due open
    payments are reported unless disputed; nothing consumed is reported."""
    by_record: dict[str, list[Outcome]] = defaultdict(list)
    for found in result.breaks:
        assert found.suggested_cause
        if found.kind is not Outcome.UNMATCHED_INTERNAL:
            assert found.external_id is not None
            by_record[found.external_id].append(found.kind)
    assert set(by_record) == {r.external_id for r in result.open_external}
    assert all(len(kinds) == 1 for kinds in by_record.values())
    for external_id in scenario.ghosts & set(by_record):
        assert by_record[external_id] == [Outcome.UNMATCHED_EXTERNAL]
    for external_id in scenario.over & set(by_record):
        assert by_record[external_id][0] in {Outcome.AMOUNT_MISMATCH, Outcome.DUPLICATE}
    disputed = {
        b.internal_id for b in result.breaks if b.kind is Outcome.AMOUNT_MISMATCH and b.internal_id
    }
    reported = [b.internal_id for b in result.breaks if b.kind is Outcome.UNMATCHED_INTERNAL]
    assert len(reported) == len(set(reported))
    due = {p.payment_id for p in result.open_internal if p.settled_on <= as_of}
    assert set(reported) <= due
    assert due - set(reported) <= disputed | _batch_members_in_dispute(result)


def _batch_members_in_dispute(result: MatchResult) -> set[str]:
    """Open members of batches that broke: an operator resolves them with the batch."""
    broken = {b.external_id for b in result.breaks if b.kind is Outcome.AMOUNT_MISMATCH}
    return {
        m.end_to_end_id
        for r in result.open_external
        if r.external_id in broken
        for m in r.members
        if m.end_to_end_id
    }


def _booked(direction: Direction, gross: int, fees: int) -> int:
    """What the bank books for payments of ``gross``: less its fees on money in, more on
    money out."""
    return gross - fees if direction is Direction.CREDIT else gross + fees


def _gross(record: ExternalRecord) -> int:
    if record.direction is Direction.CREDIT:
        return record.amount + record.fees
    return record.amount - record.fees
