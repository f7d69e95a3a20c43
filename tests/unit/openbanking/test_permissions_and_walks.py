"""Which permission sets the bank grants, what each lets a TPP see, and the PSU's walk
through the hosted pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from amanat.openbanking.domain.authorisation import (
    MAX_FAILURES,
    AuthorisationWalk,
    Stage,
    WalkError,
)
from amanat.openbanking.domain.permissions import (
    AccessView,
    InvalidConsentRequest,
    validate_permissions,
    validate_window,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "requested",
    [
        [],
        ["ReadTransactionsBasic"],
        ["ReadTransactionsDebits"],
        ["ReadDirectDebits"],
        ["ReadAccountsBasic", "readbalances"],
    ],
)
def test_refused_permission_sets(requested: list[str]) -> None:
    with pytest.raises(InvalidConsentRequest) as refused:
        validate_permissions(requested)
    assert refused.value.path == "Data.Permissions"


def test_duplicates_are_dropped_in_order() -> None:
    assert validate_permissions(["ReadBalances", "ReadAccountsBasic", "ReadBalances"]) == (
        "ReadBalances",
        "ReadAccountsBasic",
    )


def test_the_view_follows_the_permissions() -> None:
    basic = AccessView.of(["ReadAccountsBasic", "ReadTransactionsBasic", "ReadTransactionsDebits"])
    assert basic.accounts and not basic.account_details and not basic.balances
    assert basic.transactions and not basic.transaction_details
    assert basic.debits and not basic.credits
    detail = AccessView.of(["ReadAccountsDetail", "ReadBalances"])
    assert detail.accounts and detail.account_details and detail.balances
    assert not detail.transactions


def test_the_window_must_make_sense() -> None:
    with pytest.raises(InvalidConsentRequest) as past:
        validate_window(T0, T0 - timedelta(seconds=1), None, None)
    assert past.value.path == "Data.ExpirationDateTime"
    with pytest.raises(InvalidConsentRequest):
        validate_window(T0, None, T0, T0 - timedelta(days=1))
    validate_window(T0, T0 + timedelta(days=90), T0 - timedelta(days=90), T0)


def walk() -> AuthorisationWalk:
    return AuthorisationWalk(
        id="pwk_1",
        secret_hash="h",
        consent_id="cns_1",
        client_id="cli_1",
        redirect_uri="http://127.0.0.1/cb",
        state=None,
        scope="accounts",
        code_challenge="c",
        stage=Stage.SIGN_IN,
        created_at=T0,
        expires_at=T0 + timedelta(minutes=15),
    )


def test_a_walk_goes_sign_in_code_decide_done_and_never_back() -> None:
    w = walk().signed_in("bcu_1", "otp", T0)
    assert w.stage is Stage.SCA and w.code_fresh(T0)
    with pytest.raises(WalkError):
        w.signed_in("bcu_2", "otp", T0)  # no second sign-in into another customer
    w = w.verified(T0)
    assert w.stage is Stage.DECIDE and w.otp_hash is None
    with pytest.raises(WalkError):
        w.verified(T0)
    done = w.finished(T0)
    assert done.stage is Stage.DONE and not done.open_at(T0)
    with pytest.raises(WalkError):
        done.finished(T0)


def test_a_walk_times_out_and_locks_after_too_many_failures() -> None:
    w = walk()
    with pytest.raises(WalkError):
        w.expect(Stage.SIGN_IN, T0 + timedelta(minutes=15))
    for _ in range(MAX_FAILURES - 1):
        w = w.failed()
    assert not w.locked_out
    assert w.failed().locked_out
    code = walk().signed_in("bcu_1", "otp", T0)
    assert not code.code_fresh(T0 + timedelta(minutes=5))
