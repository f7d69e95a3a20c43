"""The event catalogue: every state a payment can reach names a known event type, declines
are told apart from other collection failures, and the envelope has the documented shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from amanat.bootstrap import registry
from amanat.kernel.money import Money
from amanat.payments.domain.events import payment_event_type
from amanat.payments.domain.payments import (
    TRANSITIONS,
    AccountScheme,
    Failure,
    Party,
    Payment,
    PaymentStatus,
    PaymentType,
    apply_rail_status,
)
from amanat.webhooks.domain.events import ALL_EVENTS, CATALOGUE, Event

registry()  # every capability declares its event types

S = PaymentStatus
AT = datetime(2026, 11, 24, 8, 15, 30, 123000, tzinfo=UTC)


def payment(kind: PaymentType, status: PaymentStatus = S.PENDING, **extra: object) -> Payment:
    return Payment(
        id="pay_1",
        partner_id="ptr_1",
        type=kind,
        status=status,
        amount=Money(150_000, "PKR"),
        counterparty=Party(
            subject_id="cus_1", bank_code="SCBL", iban_last4="6702", kind=AccountScheme.IBAN
        ),
        reference=None,
        description=None,
        metadata={},
        version=1,
        created_at=AT,
        updated_at=AT,
        **extra,  # type: ignore[arg-type]
    )


def reachable(kind: PaymentType) -> set[PaymentStatus]:
    """Every status the state machine lets a payment of ``kind`` reach from pending."""
    seen = {S.PENDING}
    frontier = [S.PENDING]
    while frontier:
        for target in TRANSITIONS[kind].get(frontier.pop(), frozenset()):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


REACHABLE = [
    pytest.param(kind, status)
    for kind, status in sorted(
        ((kind, status) for kind in PaymentType for status in reachable(kind)),
        key=lambda pair: (pair[0].value, pair[1].value),
    )
]


def test_the_walk_finds_more_than_pending() -> None:
    # Guards the parametrised test below against an empty or trivial walk.
    assert reachable(PaymentType.PAYOUT) == {
        S.PENDING,
        S.PROCESSING,
        S.SUCCEEDED,
        S.FAILED,
        S.CANCELED,
    }
    assert S.CANCELED not in reachable(PaymentType.REFUND), "refunds are never canceled"
    assert S.EXPIRED in reachable(PaymentType.COLLECTION)
    assert S.AWAITING_APPROVAL in reachable(PaymentType.COLLECTION)


@pytest.mark.parametrize(("kind", "status"), REACHABLE)
def test_every_reachable_state_names_a_catalogued_event(
    kind: PaymentType, status: PaymentStatus
) -> None:
    failures = [None]
    if status is S.FAILED:
        failures = [Failure("rail_ac01", "x"), Failure("rail_cust", "x"), None]  # type: ignore[list-item]
    for failure in failures:
        name = payment_event_type(payment(kind, status, failure=failure))
        if status is S.PENDING:
            assert name is None
            continue
        assert name in CATALOGUE, f"{kind.value}/{status.value} -> {name}"
        spec = CATALOGUE[name]
        assert spec.object == ("refund" if kind is PaymentType.REFUND else "payment")


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        (PaymentType.PAYOUT, S.PROCESSING, "payment.processing"),
        (PaymentType.PAYOUT, S.SUCCEEDED, "payment.succeeded"),
        (PaymentType.PAYOUT, S.FAILED, "payment.failed"),
        (PaymentType.PAYOUT, S.CANCELED, "payment.canceled"),
        (PaymentType.COLLECTION, S.AWAITING_APPROVAL, "collection.awaiting_approval"),
        (PaymentType.COLLECTION, S.SUCCEEDED, "collection.approved"),
        (PaymentType.COLLECTION, S.EXPIRED, "collection.expired"),
        (PaymentType.COLLECTION, S.CANCELED, "payment.canceled"),
        (PaymentType.REFUND, S.PROCESSING, "refund.processing"),
        (PaymentType.REFUND, S.SUCCEEDED, "refund.succeeded"),
        (PaymentType.REFUND, S.FAILED, "refund.failed"),
    ],
)
def test_the_documented_mapping(kind: PaymentType, status: PaymentStatus, expected: str) -> None:
    assert payment_event_type(payment(kind, status)) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("rail_cust", "collection.declined"),
        ("rail_declined", "collection.declined"),
        ("rail_ac01", "payment.failed"),
        ("rail_noas", "payment.failed"),
        ("submission_refused", "payment.failed"),
    ],
)
def test_collection_declines_are_told_apart(code: str, expected: str) -> None:
    failed = payment(PaymentType.COLLECTION, S.FAILED, failure=Failure(code, "x"))
    assert payment_event_type(failed) == expected


def test_a_payout_failure_is_never_a_decline() -> None:
    failed = payment(PaymentType.PAYOUT, S.FAILED, failure=Failure("rail_cust", "x"))
    assert payment_event_type(failed) == "payment.failed"


@pytest.mark.parametrize(
    ("status", "reason_code", "expected"),
    [
        ("declined", "CUST", "collection.declined"),
        ("declined", None, "collection.declined"),
        ("rejected", "AC06", "payment.failed"),
        ("expired", "NOAS", "collection.expired"),
        ("approved", None, "collection.approved"),
    ],
)
def test_rail_outcomes_of_a_collection_raise_the_right_event(
    status: str, reason_code: str | None, expected: str
) -> None:
    """From the rail's words to the event, through the real state machine."""
    waiting = payment(PaymentType.COLLECTION, S.AWAITING_APPROVAL)
    decision = apply_rail_status(waiting, status, sequence=1, at=AT, reason_code=reason_code)
    assert [payment_event_type(step) for step in decision.steps] == [expected]


def test_an_out_of_order_outcome_raises_the_intermediate_event_too() -> None:
    decision = apply_rail_status(payment(PaymentType.COLLECTION), "approved", sequence=2, at=AT)
    names = [payment_event_type(step) for step in decision.steps]
    assert names == ["collection.awaiting_approval", "collection.approved"]
    payout = apply_rail_status(payment(PaymentType.PAYOUT), "settled", sequence=2, at=AT)
    assert [payment_event_type(s) for s in payout.steps] == [
        "payment.processing",
        "payment.succeeded",
    ]


def test_the_catalogue_is_consistent() -> None:
    assert ALL_EVENTS not in CATALOGUE
    for name, spec in CATALOGUE.items():
        assert spec.name == name
        assert name.count(".") == 1 and name == name.lower()
        assert spec.meaning.endswith(".")
    assert CATALOGUE["webhook_endpoint.disabled"].emitted
    disputes = ("dispute.opened", "dispute.updated", "dispute.closed")
    assert all(CATALOGUE[name].emitted for name in disputes)  # declared by disputes
    assert {CATALOGUE[name].object for name in disputes} == {"dispute"}


def test_the_envelope_shape() -> None:
    data = {"id": "pay_1", "object": "payment", "status": "succeeded", "version": 3}
    event = Event(
        id="evt_1",
        partner_id="ptr_1",
        type="payment.succeeded",
        object_type="payment",
        object_id="pay_1",
        object_version=3,
        created_at=AT,
        data=data,
    )
    envelope = event.envelope()
    assert envelope == {
        "id": "evt_1",
        "object": "event",
        "type": "payment.succeeded",
        "created_at": "2026-11-24T08:15:30.123Z",
        "data": {"object": data},
    }
    # The partner id and the bookkeeping columns stay inside.
    assert "partner_id" not in envelope
    assert "object_version" not in envelope
