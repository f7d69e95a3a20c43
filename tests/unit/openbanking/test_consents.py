"""The consent lifecycle's invariants: it only moves forward, never leaves an end state,
and each kind only reaches the statuses v3.1.11 gives it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amanat.openbanking.domain.consents import (
    AWAITING_WINDOW,
    FINAL_STATUSES,
    KIND_STATUSES,
    Consent,
    ConsentKind,
    ConsentStateError,
    ConsentStatus,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def consent(kind: ConsentKind = ConsentKind.ACCOUNT_ACCESS, **changes: object) -> Consent:
    base = Consent(
        id="cns_01",
        kind=kind,
        partner_id="ptr_1",
        client_id="cli_1",
        status=ConsentStatus.AWAITING_AUTHORISATION,
        created_at=T0,
        status_updated_at=T0,
        permissions=("ReadAccountsBasic",),
    )
    return base if not changes else Consent(**{**_fields(base), **changes})  # type: ignore[arg-type]


def _fields(c: Consent) -> dict[str, object]:
    return {name: getattr(c, name) for name in c.__slots__}  # type: ignore[attr-defined]


STEPS = st.sampled_from(["authorise", "reject", "revoke", "consume", "wait"])


def apply(c: Consent, step: str, now: datetime) -> Consent:
    if step == "authorise":
        return c.authorise("bcu_1", ("bac_1",), now)
    if step == "reject":
        return c.reject(now, "psu_denied")
    if step == "revoke":
        return c.revoke(now, "tpp_deleted")
    if step == "consume":
        return c.consume(now)
    return c.as_of(now)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(list(ConsentKind)),
    steps=st.lists(st.tuples(STEPS, st.integers(0, 7200)), max_size=8),
    expires_in=st.none() | st.integers(60, 7200),
)
def test_a_consent_only_moves_forward(
    kind: ConsentKind, steps: list[tuple[str, int]], expires_in: int | None
) -> None:
    current = consent(kind, expires_at=T0 + timedelta(seconds=expires_in) if expires_in else None)
    now = T0
    for step, seconds in steps:
        now += timedelta(seconds=seconds)
        before = current
        try:
            current = apply(current, step, now)
        except ConsentStateError:
            assert current == before  # a refused step changes nothing
            continue
        assert current.status in KIND_STATUSES[kind]
        if before.status in FINAL_STATUSES:
            assert current.status is before.status  # nothing leaves an end state
        if before.status is not ConsentStatus.AWAITING_AUTHORISATION:
            assert current.status is not ConsentStatus.AWAITING_AUTHORISATION
        if current != before:
            assert current.version == before.version + 1
            assert current.status_updated_at >= before.status_updated_at
        if current.status is ConsentStatus.AUTHORISED:
            assert current.account_ids and current.psu_id


def test_an_expired_consent_is_unusable_before_any_job_runs() -> None:
    authorised = consent(expires_at=T0 + timedelta(hours=1)).authorise("bcu_1", ("bac_1",), T0)
    assert authorised.usable(T0 + timedelta(minutes=59))
    assert not authorised.usable(T0 + timedelta(hours=1))
    ended = authorised.as_of(T0 + timedelta(hours=2))
    assert ended.status is ConsentStatus.REVOKED
    assert ended.ended_reason == "expired"
    assert ended.status_updated_at == T0 + timedelta(hours=1)


def test_a_consent_nobody_authorised_in_time_reads_as_rejected() -> None:
    waiting = consent()
    assert waiting.as_of(T0 + AWAITING_WINDOW - timedelta(seconds=1)) is waiting
    stale = waiting.as_of(T0 + AWAITING_WINDOW)
    assert stale.status is ConsentStatus.REJECTED
    assert stale.ended_reason == "not_authorised_in_time"
    with pytest.raises(ConsentStateError):
        stale.authorise("bcu_1", ("bac_1",), T0 + AWAITING_WINDOW)


def test_authorising_needs_an_account_and_a_payment_consent_is_consumed_not_revoked() -> None:
    with pytest.raises(ConsentStateError):
        consent().authorise("bcu_1", (), T0)
    payment = consent(ConsentKind.DOMESTIC_PAYMENT).authorise("bcu_1", ("bac_1",), T0)
    with pytest.raises(ConsentStateError):
        payment.revoke(T0, "tpp_deleted")
    used = payment.consume(T0)
    assert used.status is ConsentStatus.CONSUMED
    with pytest.raises(ConsentStateError):
        used.consume(T0)
