"""The dispute state machine: every transition the table allows, every one it refuses,
and its invariants over random sequences (never skips, never reverses, terminal is
terminal, one version per step)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.disputes.domain.disputes import (
    OPEN,
    RANK,
    TERMINAL,
    TRANSITIONS,
    Action,
    Dispute,
    DisputeReason,
    DisputeStatus,
    Funds,
    Opener,
    PaymentKind,
    next_status,
)
from amanat.disputes.domain.errors import DisputeTransitionRefused

S = DisputeStatus
A = Action
AT = datetime(2026, 11, 24, 8, 15, 30, tzinfo=UTC)

ALLOWED = {
    (S.NEEDS_RESPONSE, A.RESPOND): S.UNDER_REVIEW,
    (S.NEEDS_RESPONSE, A.ACCEPT): S.ACCEPTED,
    (S.NEEDS_RESPONSE, A.WITHDRAW): S.WITHDRAWN,
    (S.NEEDS_RESPONSE, A.EXPIRE): S.LOST,
    (S.UNDER_REVIEW, A.ACCEPT): S.ACCEPTED,
    (S.UNDER_REVIEW, A.WITHDRAW): S.WITHDRAWN,
    (S.UNDER_REVIEW, A.WIN): S.WON,
    (S.UNDER_REVIEW, A.LOSE): S.LOST,
}
EVERY = [(status, action) for status in DisputeStatus for action in Action]


def dispute(status: DisputeStatus = S.NEEDS_RESPONSE) -> Dispute:
    return Dispute(
        id="dp_1",
        partner_id="ptr_1",
        payment_id="pay_1",
        payment_type=PaymentKind.COLLECTION,
        status=status,
        reason=DisputeReason.FRAUD,
        currency="PKR",
        funds=Funds(10_000),
        opened_by=Opener.MERCHANT,
        opener_id="cli_1",
        respond_by=date(2026, 12, 3),
        decide_by=date(2027, 1, 6),
        version=1,
        created_at=AT,
        updated_at=AT,
    )


def test_the_table_is_the_documented_one() -> None:
    table = {(s, a): t for s, moves in TRANSITIONS.items() for a, t in moves.items()}
    assert table == ALLOWED


@pytest.mark.parametrize(("status", "action"), sorted(ALLOWED))
def test_every_allowed_transition(status: DisputeStatus, action: Action) -> None:
    after = dispute(status).to(action, at=AT, note="n")
    assert after.status is ALLOWED[(status, action)]
    assert after.version == 2
    assert (after.closed_at is not None) == (after.status in TERMINAL)
    assert after.close_note == ("n" if after.status in TERMINAL else None)


@pytest.mark.parametrize(("status", "action"), [p for p in EVERY if p not in ALLOWED])
def test_every_other_transition_is_refused(status: DisputeStatus, action: Action) -> None:
    with pytest.raises(DisputeTransitionRefused) as refused:
        next_status(status, action)
    assert refused.value.code == "dispute_transition_refused"


def test_won_only_after_a_response() -> None:
    with pytest.raises(DisputeTransitionRefused, match="before the merchant has responded"):
        next_status(S.NEEDS_RESPONSE, A.WIN)


def test_a_closed_dispute_says_so() -> None:
    for status in TERMINAL:
        with pytest.raises(DisputeTransitionRefused, match="closed"):
            dispute(status).to(Action.RESPOND, at=AT)


@given(st.lists(st.sampled_from(list(Action)), max_size=12))
def test_invariants_over_any_sequence(actions: list[Action]) -> None:
    current = dispute()
    seen = [current.status]
    for action in actions:
        try:
            after = current.to(action, at=AT)
        except DisputeTransitionRefused:
            assert (current.status, action) not in ALLOWED
            continue
        assert (current.status, action) in ALLOWED
        assert current.status in OPEN  # terminal is terminal
        assert RANK[after.status] > RANK[current.status]  # never back, never sideways
        if after.status is S.WON:
            assert current.status is S.UNDER_REVIEW  # never skips the review
        assert after.version == current.version + 1
        current = after
        seen.append(current.status)
    assert len(seen) <= 3  # at most needs_response -> under_review -> closed
    assert all(s in OPEN for s in seen[:-1])
