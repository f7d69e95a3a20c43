"""The matching engine (reconciliation/domain/matching.py), rule by rule and outcome by
outcome, on small hand-made cases: what matches, what breaks, what each break says, and
what is carried open to the next run. Generated ledgers: test_matching_properties.py."""

from __future__ import annotations

import gc
import random
from datetime import date, timedelta

import pytest

from amanat.reconciliation.domain import matching
from amanat.reconciliation.domain.matching import match
from amanat.reconciliation.domain.records import (
    BREAK_KINDS,
    BatchMember,
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

DAY = date(2026, 3, 2)  # a Monday
CREDIT, DEBIT = Direction.CREDIT, Direction.DEBIT
STRICT = MatchRules()
PARTIAL = MatchRules(allow_partial=True)


def pay(
    payment_id: str,
    amount: int,
    *,
    direction: Direction = CREDIT,
    currency: str = "PKR",
    settled_on: date = DAY,
    reference: str | None = None,
    matched: int = 0,
) -> InternalItem:
    return InternalItem(
        payment_id, "prt_1", direction, amount, currency, settled_on, reference, matched
    )


def row(
    external_id: str,
    amount: int,
    *,
    e2e: str | None = None,
    direction: Direction = CREDIT,
    currency: str = "PKR",
    value_date: date | None = DAY,
    reference: str | None = None,
    members: tuple[str, ...] = (),
    fees: int = 0,
) -> ExternalRecord:
    return ExternalRecord(
        external_id,
        direction,
        amount,
        currency,
        value_date=value_date,
        end_to_end_id=e2e,
        reference=reference,
        members=tuple(BatchMember(m) for m in members),
        fees=fees,
    )


def run(
    items: list[InternalItem],
    records: list[ExternalRecord],
    rules: MatchRules = STRICT,
    as_of: date = DAY,
) -> MatchResult:
    return match(items, records, rules, as_of=as_of)


def only_break(result: MatchResult, kind: Outcome) -> Break:
    found = [b for b in result.breaks if b.kind == kind]
    assert len(found) == 1, result.breaks
    return found[0]


def kinds(result: MatchResult) -> list[Outcome]:
    return [b.kind for b in result.breaks]


def open_ids(result: MatchResult) -> tuple[list[str], list[str]]:
    return (
        [i.payment_id for i in result.open_internal],
        [r.external_id for r in result.open_external],
    )


# -- rule 1: end-to-end id ---------------------------------------------------------------


def test_an_exact_record_matches_its_payment_by_end_to_end_id() -> None:
    result = run([pay("p1", 150_000)], [row("x1", 150_000, e2e="p1")])

    assert result.matches == (
        Match("end_to_end_id", Outcome.MATCHED, ("x1",), (("p1", 150_000),), 150_000),
    )
    assert result.breaks == ()
    assert open_ids(result) == ([], [])


def test_an_amount_within_the_tolerance_matches_and_allocates_the_whole_payment() -> None:
    result = run(
        [pay("p1", 150_000)],
        [row("x1", 149_990, e2e="p1")],
        MatchRules(amount_tolerance=10),
    )

    assert result.matches[0].outcome is Outcome.MATCHED
    assert result.matches[0].allocations == (("p1", 150_000),)
    assert result.matches[0].amount == 149_990
    assert result.breaks == ()


def test_an_amount_beyond_the_tolerance_is_a_mismatch_and_both_stay_open() -> None:
    result = run(
        [pay("p1", 150_000)],
        [row("x1", 149_900, e2e="p1")],
        MatchRules(amount_tolerance=10),
    )

    assert result.matches == ()
    mismatch = only_break(result, Outcome.AMOUNT_MISMATCH)
    assert (mismatch.internal_id, mismatch.external_id) == ("p1", "x1")
    assert mismatch.differences == (Difference("amount", "150000", "149900"),)
    assert "PKR 1.00 as fees" in mismatch.suggested_cause
    assert "does not allow partial settlement" in mismatch.suggested_cause
    # Both stay open for an operator, and the payment is not also reported as unmatched.
    assert kinds(result) == [Outcome.AMOUNT_MISMATCH]
    assert open_ids(result) == (["p1"], ["x1"])


def test_more_than_the_payment_is_a_mismatch_even_when_partials_are_allowed() -> None:
    result = run([pay("p1", 100_000)], [row("x1", 120_000, e2e="p1")], PARTIAL)

    mismatch = only_break(result, Outcome.AMOUNT_MISMATCH)
    assert mismatch.differences == (Difference("amount", "100000", "120000"),)
    assert "PKR 200.00 more" in mismatch.suggested_cause
    assert open_ids(result) == (["p1"], ["x1"])


def test_another_direction_or_currency_is_a_mismatch_naming_those_fields() -> None:
    result = run(
        [pay("p1", 100_000), pay("p2", 100_000)],
        [
            row("x1", 100_000, e2e="p1", direction=DEBIT),
            row("x2", 90_000, e2e="p2", currency="USD"),
        ],
    )

    by_payment = {b.internal_id: b for b in result.breaks}
    assert kinds(result) == [Outcome.AMOUNT_MISMATCH] * 2
    assert by_payment["p1"].differences == (Difference("direction", "credit", "debit"),)
    assert "a return or a reversal" in by_payment["p1"].suggested_cause
    assert by_payment["p2"].differences == (
        Difference("amount", "100000", "90000"),
        Difference("currency", "PKR", "USD"),
    )
    assert "in USD where amanat paid PKR" in by_payment["p2"].suggested_cause


def test_fees_on_a_single_record_count_toward_the_payment() -> None:
    result = run([pay("p1", 100_000)], [row("x1", 99_000, e2e="p1", fees=1_000)])

    assert result.matches == (
        Match("end_to_end_id", Outcome.MATCHED, ("x1",), (("p1", 100_000),), 99_000, 1_000),
    )


# -- partial settlement ------------------------------------------------------------------


def test_a_part_is_partially_matched_and_the_rest_stays_open_with_a_cause() -> None:
    result = run([pay("p1", 150_000)], [row("x1", 60_000, e2e="p1")], PARTIAL)

    assert result.matches == (
        Match("end_to_end_id", Outcome.PARTIALLY_MATCHED, ("x1",), (("p1", 60_000),), 60_000),
    )
    assert result.open_internal == (pay("p1", 150_000, matched=60_000),)
    assert result.open_external == ()
    rest = only_break(result, Outcome.UNMATCHED_INTERNAL)
    assert rest.amount == 90_000
    assert rest.suggested_cause.startswith("settled in part: PKR 600.00 of PKR 1,500.00")


def test_a_part_completed_in_a_later_run_makes_the_payment_matched() -> None:
    first = run([pay("p1", 150_000)], [row("x1", 60_000, e2e="p1")], PARTIAL)

    second = run(
        list(first.open_internal),
        [*first.open_external, row("x2", 90_000, e2e="p1")],
        PARTIAL,
        as_of=DAY + timedelta(days=1),
    )

    assert second.matches == (
        Match("end_to_end_id", Outcome.MATCHED, ("x2",), (("p1", 90_000),), 90_000),
    )
    assert second.breaks == ()
    assert open_ids(second) == ([], [])


def test_two_parts_in_one_run_match_in_full() -> None:
    result = run(
        [pay("p1", 150_000)],
        [row("x1", 60_000, e2e="p1"), row("x2", 90_000, e2e="p1")],
        PARTIAL,
    )

    assert [(m.outcome, m.allocations) for m in result.matches] == [
        (Outcome.PARTIALLY_MATCHED, (("p1", 60_000),)),
        (Outcome.MATCHED, (("p1", 90_000),)),
    ]
    assert result.breaks == ()


def test_a_part_without_allow_partial_is_a_mismatch() -> None:
    result = run([pay("p1", 150_000)], [row("x1", 60_000, e2e="p1")])

    assert kinds(result) == [Outcome.AMOUNT_MISMATCH]


# -- duplicates --------------------------------------------------------------------------


def test_two_records_with_one_end_to_end_id_are_a_match_and_a_duplicate() -> None:
    result = run(
        [pay("p1", 100_000)],
        [row("x1", 100_000, e2e="p1"), row("x2", 100_000, e2e="p1")],
    )

    assert [m.external_ids for m in result.matches] == [("x1",)]
    duplicate = only_break(result, Outcome.DUPLICATE)
    assert (duplicate.internal_id, duplicate.external_id) == ("p1", "x2")
    assert duplicate.suggested_cause.startswith("the bank reported this payment twice")
    # The duplicate waits for an operator: carried, and never consumed.
    assert open_ids(result) == ([], ["x2"])


def test_a_record_for_a_payment_matched_in_an_earlier_run_is_a_duplicate() -> None:
    done = pay("p1", 100_000, matched=100_000)

    result = run([done], [row("x9", 100_000, e2e="p1")])

    assert result.matches == ()
    duplicate = only_break(result, Outcome.DUPLICATE)
    assert "p1 (PKR 1,000.00) is already fully matched" in duplicate.suggested_cause
    assert result.open_internal == ()  # never matched again, never reported unmatched


def test_a_repeated_part_after_the_payment_completes_is_a_duplicate_not_a_mismatch() -> None:
    # x2 repeats x1's part; x3 completes the payment. Sorted, x2 comes before x3 and does
    # not fit then (60,000 against 40,000 open): judged at the end, it is a duplicate.
    result = run(
        [pay("p1", 100_000)],
        [
            row("x1", 60_000, e2e="p1"),
            row("x2", 60_000, e2e="p1"),
            row("x3", 40_000, e2e="p1"),
        ],
        PARTIAL,
    )

    assert [m.external_ids for m in result.matches] == [("x1",), ("x3",)]
    assert kinds(result) == [Outcome.DUPLICATE]
    assert result.breaks[0].differences == (Difference("amount", "100000", "60000"),)


def test_the_same_record_given_twice_counts_once_and_two_different_ones_are_refused() -> None:
    record = row("x1", 100_000, e2e="p1")

    assert run([pay("p1", 100_000)], [record, record]).breaks == ()
    with pytest.raises(ValueError, match="x1"):
        run([pay("p1", 100_000)], [record, row("x1", 5, e2e="p1")])
    with pytest.raises(ValueError, match="p1"):
        run([pay("p1", 100_000), pay("p1", 5)], [record])


# -- rule 2: reference -------------------------------------------------------------------


def test_a_reference_carried_by_one_payment_matches_within_the_date_tolerance() -> None:
    items = [pay("p1", 50_000, reference="INV-7", settled_on=DAY - timedelta(days=1))]
    records = [row("x1", 50_000, reference="INV-7")]

    assert run(items, records).matches == ()  # a day apart, no date tolerance
    result = run(items, records, MatchRules(date_tolerance_days=1))

    assert result.matches == (
        Match("reference", Outcome.MATCHED, ("x1",), (("p1", 50_000),), 50_000),
    )
    assert result.breaks == ()


def test_a_reference_with_another_amount_stays_unmatched_and_says_what_differs() -> None:
    result = run([pay("p1", 50_000, reference="INV-7")], [row("x1", 45_000, reference="INV-7")])

    unmatched = only_break(result, Outcome.UNMATCHED_EXTERNAL)
    assert unmatched.differences == (Difference("amount", "50000", "45000"),)
    assert "p1 carries this reference but its amount differ" in unmatched.suggested_cause
    assert Outcome.UNMATCHED_INTERNAL in kinds(result)


def test_a_reference_several_payments_carry_is_left_for_an_operator() -> None:
    items = [pay("p1", 50_000, reference="R"), pay("p2", 50_000, reference="R")]

    result = run(items, [row("x1", 50_000, reference="R")])

    assert result.matches == ()
    unmatched = only_break(result, Outcome.UNMATCHED_EXTERNAL)
    assert "several payments carry this reference (p1, p2)" in unmatched.suggested_cause
    assert sorted(b.internal_id for b in result.breaks if b.internal_id) == ["p1", "p2"]


def test_a_reference_becomes_unambiguous_when_another_record_takes_one_payment() -> None:
    # x1 sees p1 and p2 (same reference, amount and day); x2 can only be p2 (its date, with
    # no tolerance). Once x2 takes p2, x1 is p1: the rules run again over what is left.
    items = [
        pay("p1", 50_000, reference="R"),
        pay("p2", 50_000, reference="R", settled_on=DAY + timedelta(days=1)),
    ]
    records = [
        row("x1", 50_000, reference="R"),
        row("x2", 50_000, reference="R", value_date=DAY + timedelta(days=1)),
    ]

    result = run(items, records, MatchRules(date_tolerance_days=1), as_of=DAY + timedelta(1))

    assert sorted((m.external_ids, m.allocations) for m in result.matches) == [
        (("x1",), (("p1", 50_000),)),
        (("x2",), (("p2", 50_000),)),
    ]


def test_a_payment_named_by_end_to_end_id_is_not_taken_by_reference() -> None:
    items = [pay("p1", 50_000, reference="R")]
    records = [row("x1", 40_000, e2e="p1"), row("x2", 50_000, reference="R")]

    result = run(items, records)

    assert result.matches == ()
    assert sorted(kinds(result)) == sorted([Outcome.AMOUNT_MISMATCH, Outcome.UNMATCHED_EXTERNAL])


# -- rule 3: batches ---------------------------------------------------------------------


def test_a_batch_net_of_fees_matches_its_members() -> None:
    items = [pay("p1", 70_000), pay("p2", 80_000)]
    batch = row("b1", 149_000, members=("p1", "p2"), fees=1_000)

    result = run(items, [batch])

    assert result.matches == (
        Match(
            "batch",
            Outcome.MATCHED,
            ("b1",),
            (("p1", 70_000), ("p2", 80_000)),
            149_000,
            1_000,
        ),
    )
    assert result.breaks == ()
    assert open_ids(result) == ([], [])


def test_a_batch_with_a_member_amanat_does_not_know_is_a_mismatch_naming_it() -> None:
    items = [pay("p1", 70_000), pay("p2", 80_000)]
    batch = row("b1", 179_000, members=("p1", "p2", "p404"), fees=1_000)

    result = run(items, [batch])

    mismatch = only_break(result, Outcome.AMOUNT_MISMATCH)
    assert mismatch.external_id == "b1"
    # Ours: the members amanat knows; theirs: what was booked plus the fees.
    assert mismatch.differences == (Difference("amount", "150000", "180000"),)
    assert "1 of its 3 members are payments amanat has no record of (p404)" in (
        mismatch.suggested_cause
    )
    # The known members are not consumed, and not reported as unmatched either.
    assert kinds(result) == [Outcome.AMOUNT_MISMATCH]
    assert open_ids(result) == (["p1", "p2"], ["b1"])


def test_a_batch_with_a_member_already_matched_is_a_mismatch_naming_it() -> None:
    items = [pay("p1", 70_000), pay("p2", 80_000, matched=80_000)]

    result = run(items, [row("b1", 150_000, members=("p1", "p2"))])

    mismatch = only_break(result, Outcome.AMOUNT_MISMATCH)
    assert "1 of its members are already matched (p2)" in mismatch.suggested_cause
    assert mismatch.differences == (Difference("amount", "70000", "150000"),)


def test_a_batch_booked_short_without_fees_says_what_the_bank_kept() -> None:
    items = [pay("p1", 70_000), pay("p2", 80_000)]

    result = run(items, [row("b1", 148_500, members=("p1", "p2"))])

    mismatch = only_break(result, Outcome.AMOUNT_MISMATCH)
    assert "the bank kept PKR 15.00 as fees" in mismatch.suggested_cause


def test_a_batch_listing_a_payment_twice_is_a_mismatch_naming_it() -> None:
    items = [pay("p1", 70_000), pay("p2", 80_000)]

    result = run(items, [row("b1", 150_000, members=("p1", "p2", "p1"))])

    assert result.matches == ()
    mismatch = only_break(result, Outcome.AMOUNT_MISMATCH)
    assert "it lists p1 more than once" in mismatch.suggested_cause


def test_a_batch_reported_twice_is_a_duplicate() -> None:
    items = [pay("p1", 70_000), pay("p2", 80_000)]
    batches = [
        row("b1", 150_000, members=("p1", "p2")),
        row("b2", 150_000, members=("p1", "p2")),
    ]

    result = run(items, batches)

    assert [m.external_ids for m in result.matches] == [("b1",)]
    duplicate = only_break(result, Outcome.DUPLICATE)
    assert duplicate.external_id == "b2"
    assert "reported this batch twice" in duplicate.suggested_cause


def test_a_payment_of_the_batch_day_missing_from_the_batch_simply_stays_open() -> None:
    items = [pay("p1", 70_000), pay("p2", 80_000), pay("p3", 5_000)]

    result = run(items, [row("b1", 150_000, members=("p1", "p2"))])

    assert result.matches[0].rule == "batch"
    assert [b.internal_id for b in result.breaks] == ["p3"]
    assert kinds(result) == [Outcome.UNMATCHED_INTERNAL]


# -- rule 4: value-date groups -----------------------------------------------------------


def test_a_record_without_ids_matches_all_open_payments_of_its_value_date() -> None:
    items = [
        pay("p1", 20_000, direction=DEBIT),
        pay("p2", 30_000, direction=DEBIT),
        pay("p3", 99_000),  # a credit: another group
        pay("p4", 7_000, direction=DEBIT, settled_on=DAY - timedelta(days=1)),
    ]

    # Money out: the bank took the payments and its 500 of fees.
    result = run(items, [row("x1", 50_500, direction=DEBIT, fees=500)])

    assert result.matches == (
        Match(
            "value_date_group",
            Outcome.MATCHED,
            ("x1",),
            (("p1", 20_000), ("p2", 30_000)),
            50_500,
            500,
        ),
    )
    assert sorted(b.internal_id or "" for b in result.breaks) == ["p3", "p4"]


def test_a_group_that_does_not_add_up_is_not_searched_for_a_subset() -> None:
    items = [pay("p1", 20_000), pay("p2", 30_000), pay("p3", 50_000)]

    # 50,000 is p3 alone, or p1 and p2: only the whole day (100,000) would match.
    result = run(items, [row("x1", 50_000)])

    assert result.matches == ()
    unmatched = only_break(result, Outcome.UNMATCHED_EXTERNAL)
    assert unmatched.differences == (Difference("amount", "100000", "50000"),)
    assert "the 3 open credits amanat settled on 2026-03-02 total PKR 1,000.00" in (
        unmatched.suggested_cause
    )


def test_a_neighbouring_day_matches_only_when_it_is_the_only_one() -> None:
    rules = MatchRules(date_tolerance_days=1)
    before, after = DAY - timedelta(days=1), DAY + timedelta(days=1)

    one = run([pay("p1", 30_000, settled_on=before)], [row("x1", 30_000)], rules, as_of=after)
    assert [m.rule for m in one.matches] == ["value_date_group"]

    two = run(
        [pay("p1", 30_000, settled_on=before), pay("p2", 30_000, settled_on=after)],
        [row("x1", 30_000)],
        rules,
        as_of=after,
    )
    assert two.matches == ()
    assert "several days (2026-03-01, 2026-03-03)" in two.breaks[-1].suggested_cause


# -- what is left ------------------------------------------------------------------------


def test_a_payment_not_yet_due_is_carried_without_a_break() -> None:
    later = pay("p1", 10_000, settled_on=DAY + timedelta(days=1))

    result = run([later], [])

    assert result.breaks == ()
    assert result.open_internal == (later,)


def test_unmatched_breaks_say_what_happened_in_plain_words() -> None:
    result = run(
        [pay("p1", 10_000)],
        [row("x1", 5_000, e2e="p404"), row("x2", 7_000, direction=DEBIT)],
    )

    missing = only_break(result, Outcome.UNMATCHED_INTERNAL)
    assert missing.amount == 10_000
    assert missing.differences == (Difference("amount", "10000", None),)
    assert "the bank has not reported this payment" in missing.suggested_cause
    assert "may settle in a later cycle" in missing.suggested_cause
    extra = {b.external_id: b for b in result.breaks if b.kind is Outcome.UNMATCHED_EXTERNAL}
    assert "no amanat payment has the end-to-end id p404" in extra["x1"].suggested_cause
    assert extra["x2"].suggested_cause == "money moved that amanat has no record of"
    assert extra["x2"].differences == (Difference("amount", None, "7000"),)


def test_every_break_names_a_cause_and_the_ids_it_is_about() -> None:
    items = [pay("p1", 100_000), pay("p2", 100_000), pay("p3", 5_000), pay("p4", 1)]
    records = [
        row("x1", 90_000, e2e="p1"),
        row("x2", 100_000, e2e="p2"),
        row("x3", 100_000, e2e="p2"),
        row("x4", 1, e2e="nobody"),
        row("b1", 10, members=("p3", "p9")),
    ]

    result = run(items, records)

    assert {b.kind for b in result.breaks} == BREAK_KINDS
    for found in result.breaks:
        assert found.suggested_cause
        assert "DATA MISMATCH" not in found.suggested_cause.upper()
        assert found.internal_id or found.external_id
        assert found.currency == "PKR"


def test_the_order_of_the_input_changes_nothing() -> None:
    items = [pay(f"p{n}", 1_000 + n, reference=f"R{n % 3}") for n in range(30)]
    records = [row(f"x{n}", 1_000 + n, e2e=f"p{n}") for n in range(0, 30, 2)]
    records += [row("x-dup", 1_002, e2e="p2"), row("x-ref", 1_001, reference="R1")]
    records += [row("b1", 2_000 + 7 + 9, members=("p7", "p9"))]
    expected = run(items, records)

    shuffler = random.Random(7)
    for _ in range(5):
        shuffler.shuffle(items)
        shuffler.shuffle(records)
        assert run(items, records) == expected


def test_running_again_with_nothing_new_changes_nothing() -> None:
    items = [
        pay("p1", 100_000),
        pay("p2", 100_000),
        pay("p3", 50_000, reference="R"),
        pay("p4", 50_000, reference="R"),
        pay("p5", 30_000, settled_on=DAY + timedelta(days=3)),
    ]
    records = [
        row("x1", 60_000, e2e="p1"),
        row("x2", 120_000, e2e="p2"),
        row("x3", 50_000, reference="R"),
        row("x4", 1_000),
    ]
    first = run(items, records, PARTIAL)
    done = [pay("p1", 100_000, matched=60_000)]  # carried, as the caller would

    second = run([*first.open_internal], list(first.open_external), PARTIAL)

    assert done[0] in second.open_internal
    assert second.matches == ()
    assert second.breaks == first.breaks
    assert second.open_internal == first.open_internal
    assert second.open_external == first.open_external


def test_matches_made_slot_by_slot_equal_those_made_by_their_constructor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [pay("p1", 100_000), pay("p2", 100_000)]
    records = [row("x1", 100_000, e2e="p1"), row("x2", 40_000, e2e="p2")]
    fast = run(items, records, PARTIAL)

    monkeypatch.setattr(matching, "_MATCH_SLOTS_SETTABLE", False)

    slow = run(items, records, PARTIAL)
    assert slow == fast
    assert [hash(m) for m in slow.matches] == [hash(m) for m in fast.matches]


def test_the_garbage_collector_is_left_as_it_was() -> None:
    assert gc.isenabled()
    run([pay("p1", 1)], [row("x1", 1, e2e="p1")])
    assert gc.isenabled()
    gc.disable()
    try:
        run([pay("p1", 1)], [row("x1", 1, e2e="p1")])
        assert not gc.isenabled()
    finally:
        gc.enable()
