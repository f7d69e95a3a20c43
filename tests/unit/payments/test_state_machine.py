"""The payment state machine (payments/domain/payments.py), directly: every allowed and
every forbidden transition, version bumps, and rail events that are stale, repeated, late
or out of order. (Which partner event each state raises: tests/unit/webhooks/test_events.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.kernel.money import Money
from amanat.payments.domain.payments import (
    TERMINAL,
    TRANSITIONS,
    Failure,
    IllegalTransition,
    Party,
    Payment,
    PaymentStatus,
    PaymentType,
    apply_rail_status,
)

S = PaymentStatus
T = PaymentType
CREATED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LATER = CREATED + timedelta(minutes=1)


def payment(
    kind: PaymentType = T.PAYOUT, status: PaymentStatus = S.PENDING, **kw: object
) -> Payment:
    fields: dict[str, object] = {
        "id": "payment_1",
        "partner_id": "partner_1",
        "type": kind,
        "status": status,
        "amount": Money(5_000, "PKR"),
        "counterparty": Party("data_subject_1", "SCBL", "6702", "iban"),
        "reference": None,
        "description": None,
        "metadata": {},
        "version": 1,
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    fields.update(kw)
    return Payment(**fields)  # type: ignore[arg-type]


ALLOWED = [
    (kind, source, target)
    for kind, table in TRANSITIONS.items()
    for source, targets in table.items()
    for target in sorted(targets)
]
FORBIDDEN = [
    (kind, source, target)
    for kind in T
    for source in S
    for target in S
    if target not in TRANSITIONS[kind].get(source, frozenset())
]


def test_the_table_is_what_the_documentation_says() -> None:
    assert TRANSITIONS[T.PAYOUT] == {
        S.PENDING: {S.PROCESSING, S.FAILED, S.CANCELED},
        S.PROCESSING: {S.SUCCEEDED, S.FAILED},
    }
    assert TRANSITIONS[T.COLLECTION] == {
        S.PENDING: {S.AWAITING_APPROVAL, S.FAILED, S.CANCELED},
        S.AWAITING_APPROVAL: {S.SUCCEEDED, S.FAILED, S.EXPIRED},
    }
    assert TRANSITIONS[T.REFUND] == {  # never canceled: sent as soon as it is made
        S.PENDING: {S.PROCESSING, S.FAILED},
        S.PROCESSING: {S.SUCCEEDED, S.FAILED},
    }
    assert all(not (set(table) & TERMINAL) for table in TRANSITIONS.values())


@pytest.mark.parametrize(("kind", "source", "target"), ALLOWED)
def test_every_allowed_transition_bumps_the_version_once(
    kind: PaymentType, source: PaymentStatus, target: PaymentStatus
) -> None:
    before = payment(kind, source, version=4, rail_sequence=3, rail_reference="RAAST1")
    failure = Failure("rail_ac01", "invalid account")
    after = before.to(target, at=LATER, failure=failure)
    assert (after.status, after.version, after.updated_at) == (target, 5, LATER)
    assert after.failure == (failure if target is S.FAILED else None)
    assert (after.rail_sequence, after.rail_reference) == (3, "RAAST1")  # kept
    assert (after.id, after.amount, after.created_at) == (before.id, before.amount, CREATED)
    assert after.is_terminal is (target in TERMINAL)


@pytest.mark.parametrize(("kind", "source", "target"), FORBIDDEN)
def test_every_other_transition_is_illegal(
    kind: PaymentType, source: PaymentStatus, target: PaymentStatus
) -> None:
    before = payment(kind, source)
    assert not before.can_become(target)
    with pytest.raises(IllegalTransition):
        before.to(target, at=LATER)


def test_the_rail_sequence_never_goes_back() -> None:
    processing = payment(status=S.PROCESSING, rail_sequence=7)
    assert processing.to(S.SUCCEEDED, at=LATER, rail_sequence=3).rail_sequence == 7
    assert processing.to(S.SUCCEEDED, at=LATER, rail_sequence=9).rail_sequence == 9


def test_only_a_succeeded_collection_is_refundable() -> None:
    assert payment(T.COLLECTION, S.SUCCEEDED, refunded_amount=1_200).refundable == 3_800
    assert payment(T.COLLECTION, S.AWAITING_APPROVAL).refundable == 0
    assert payment(T.PAYOUT, S.SUCCEEDED).refundable == 0


# -- rail statuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "source", "status", "path"),
    [
        (T.PAYOUT, S.PENDING, "accepted", [S.PROCESSING]),
        (T.PAYOUT, S.PROCESSING, "settled", [S.SUCCEEDED]),
        (T.PAYOUT, S.PROCESSING, "rejected", [S.FAILED]),
        (T.PAYOUT, S.PENDING, "rejected", [S.FAILED]),  # allowed directly: no detour
        (T.PAYOUT, S.PENDING, "settled", [S.PROCESSING, S.SUCCEEDED]),
        (T.REFUND, S.PENDING, "settled", [S.PROCESSING, S.SUCCEEDED]),
        (T.COLLECTION, S.PENDING, "accepted", [S.AWAITING_APPROVAL]),
        (T.COLLECTION, S.AWAITING_APPROVAL, "approved", [S.SUCCEEDED]),
        (T.COLLECTION, S.AWAITING_APPROVAL, "settled", [S.SUCCEEDED]),
        (T.COLLECTION, S.AWAITING_APPROVAL, "declined", [S.FAILED]),
        (T.COLLECTION, S.PENDING, "approved", [S.AWAITING_APPROVAL, S.SUCCEEDED]),
        (T.COLLECTION, S.PENDING, "expired", [S.AWAITING_APPROVAL, S.EXPIRED]),
    ],
)
def test_a_rail_status_moves_through_every_state_in_order(
    kind: PaymentType, source: PaymentStatus, status: str, path: list[PaymentStatus]
) -> None:
    before = payment(kind, source, version=2, rail_sequence=1)
    decision = apply_rail_status(before, status, sequence=5, at=LATER)
    assert decision.ignored is None
    assert [p.status for p in decision.steps] == path
    assert [p.version for p in decision.steps] == list(range(3, 3 + len(path)))
    assert decision.payment is decision.steps[-1]
    assert decision.steps[-1].rail_sequence == 5


@pytest.mark.parametrize(
    ("before", "status", "sequence", "why"),
    [
        (payment(status=S.PROCESSING, rail_sequence=4), "settled", 4, "stale"),
        (payment(status=S.PROCESSING, rail_sequence=4), "settled", 3, "stale"),
        (payment(status=S.PROCESSING, rail_sequence=4), "accepted", 5, "duplicate"),
        (payment(status=S.SUCCEEDED, rail_sequence=4), "rejected", 5, "already final"),
        (payment(status=S.CANCELED), "accepted", 1, "already final"),
        (payment(status=S.PROCESSING), "approved", 2, "unknown rail status approved"),
        (payment(T.COLLECTION), "teleported", 2, "unknown rail status teleported"),
    ],
)
def test_stale_repeated_late_or_unknown_statuses_are_ignored(
    before: Payment, status: str, sequence: int, why: str
) -> None:
    decision = apply_rail_status(before, status, sequence=sequence, at=LATER)
    assert (decision.steps, decision.ignored, decision.payment) == ((), why, None)


def test_sequence_zero_is_never_stale() -> None:
    """The submission's own acceptance carries no rail sequence."""
    before = payment(rail_sequence=3)
    decision = apply_rail_status(before, "accepted", sequence=0, at=LATER)
    assert [p.status for p in decision.steps] == [S.PROCESSING]
    assert decision.steps[0].rail_sequence == 3


def test_a_failure_carries_the_rail_reason() -> None:
    [failed] = apply_rail_status(
        payment(status=S.PROCESSING), "rejected", sequence=2, at=LATER, reason_code="AC06"
    ).steps
    assert failed.failure == Failure("rail_ac06", "The beneficiary account is blocked.")
    [declined] = apply_rail_status(
        payment(T.COLLECTION, S.AWAITING_APPROVAL), "declined", sequence=2, at=LATER
    ).steps
    assert declined.failure == Failure("rail_declined", "The customer declined the request.")


rail_event = st.tuples(
    st.sampled_from(["accepted", "settled", "rejected", "approved", "declined", "expired"]),
    st.integers(0, 6),
)


@given(st.sampled_from(list(T)), st.lists(rail_event, max_size=12))
def test_any_sequence_of_rail_events_never_skips_or_reverses_a_state(
    kind: PaymentType, events: list[tuple[str, int]]
) -> None:
    current = payment(kind)
    for status, sequence in events:
        decision = apply_rail_status(current, status, sequence=sequence, at=LATER)
        for step in decision.steps:
            assert step.status in TRANSITIONS[current.type][current.status]
            assert step.version == current.version + 1
            assert step.rail_sequence >= current.rail_sequence
            current = step
        # Told again, the rail changes nothing.
        assert apply_rail_status(current, status, sequence=sequence, at=LATER).steps == ()
