"""PaymentService's rules against in-memory fakes (amanat.payments.fakes): what a use case
changes together, what it refuses and leaves untouched. The same paths over a database are
in tests/integration/payments and tests/api/payments."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.fake_payments import CALLER, MERCHANT, OTHER, collection, payout, rail

from amanat.identity.domain import Mode, Partner
from amanat.kernel.errors import NotFound
from amanat.payments.domain.events import PaymentChanged
from amanat.payments.domain.ledger import InsufficientFunds
from amanat.payments.domain.payments import TERMINAL, TRANSITIONS, PaymentStatus, PaymentType
from amanat.payments.errors import (
    LimitExceeded,
    PaymentNotCancelable,
    RefundExceedsRemaining,
    RefundNotSupported,
)
from amanat.payments.fakes import FakePayments, fake_payments
from amanat.payments.service import SUBMIT, PaymentsConfig
from amanat.platform.fakes import collect_events

S = PaymentStatus


class Boom(Exception):
    pass


async def funded(amount: int = 10_000, **kwargs: Any) -> FakePayments:
    fakes = fake_payments(**kwargs)
    await fakes.service.top_up(CALLER, amount)
    return fakes


# -- creating a payout --------------------------------------------------------------------


async def test_a_payout_holds_its_amount_and_queues_its_submission() -> None:
    fakes = await funded(10_000)
    payment = await payout(fakes, 2_500)

    assert payment.status is S.PENDING and payment.version == 1
    balance = await fakes.service.balance(CALLER.partner_id)
    assert (balance.posted, balance.held, balance.available) == (10_000, 2_500, 7_500)
    assert fakes.ledger.holds[payment.id].status == "active"
    [job] = fakes.outbox.pending()
    assert (job.kind, job.subject_id, job.run_at) == (SUBMIT, payment.id, payment.created_at)
    assert fakes.database.audit_log.actions[-1] == "payment.created"
    assert await fakes.service.check_ledger() == []


async def test_the_hold_and_the_submission_commit_together_or_not_at_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = await funded(10_000)
    await payout(fakes, 100)  # the creditor is known from now on: no new data subject

    async def broken(*args: object) -> None:
        raise Boom

    monkeypatch.setattr(fakes.outbox, "enqueue", broken)
    with pytest.raises(Boom), fakes.database.unchanged():
        await payout(fakes, 2_500)


async def test_insufficient_funds_refuse_and_change_nothing() -> None:
    fakes = await funded(1_000)
    await payout(fakes, 400)
    with pytest.raises(InsufficientFunds), fakes.database.unchanged():
        await payout(fakes, 601)
    assert (await payout(fakes, 600)).status is S.PENDING
    assert (await fakes.service.balance(CALLER.partner_id)).available == 0


async def test_a_partner_without_an_account_has_no_funds() -> None:
    fakes = fake_payments()
    with pytest.raises(InsufficientFunds):
        await payout(fakes, 1)


async def test_the_partners_own_limit_refuses_and_changes_nothing() -> None:
    fakes = await funded(100_000, limits={CALLER.partner_id: 5_000})
    await payout(fakes, 5_000)
    with pytest.raises(LimitExceeded), fakes.database.unchanged():
        await payout(fakes, 5_001)


async def test_without_its_own_limit_a_partner_gets_the_default() -> None:
    fakes = await funded(100_000, config=PaymentsConfig(default_limit=3_000))
    await payout(fakes, 3_000)
    with pytest.raises(LimitExceeded), fakes.database.unchanged():
        await payout(fakes, 3_001)


async def test_the_partner_read_by_the_token_check_gives_the_limit() -> None:
    fakes = await funded(100_000, limits={CALLER.partner_id: 50_000})
    now = fakes.clock.now()
    partner = Partner(
        CALLER.partner_id, "Acme", frozenset(), Mode.SANDBOX, "active", now, now, 2_000
    )
    with pytest.raises(LimitExceeded):
        await payout(fakes, 2_001, caller=replace(CALLER, partner=partner))


# -- cancel -------------------------------------------------------------------------------


async def test_cancel_before_submission_releases_the_hold() -> None:
    fakes = await funded(10_000)
    events = collect_events(fakes.transactions, PaymentChanged)
    payment = await payout(fakes, 2_500)

    canceled = await fakes.service.cancel(CALLER, payment.id)

    assert (canceled.status, canceled.version) == (S.CANCELED, 2)
    balance = await fakes.service.balance(CALLER.partner_id)
    assert (balance.posted, balance.held, balance.available) == (10_000, 0, 10_000)
    assert fakes.ledger.holds[payment.id].status == "voided"
    assert [(e.payment_id, e.event_type, e.version) for e in events] == [
        (payment.id, "payment.canceled", 2)
    ]
    assert fakes.database.audit_log.actions[-1] == "payment.canceled"
    assert await fakes.service.check_ledger() == []


async def test_once_claimed_for_the_rail_a_payout_cannot_be_canceled() -> None:
    fakes = await funded(10_000)
    payment = await payout(fakes, 2_500)
    assert await fakes.service.claim_submission(payment.id) is not None
    with pytest.raises(PaymentNotCancelable), fakes.database.unchanged():
        await fakes.service.cancel(CALLER, payment.id)


async def test_only_the_owner_can_cancel() -> None:
    fakes = await funded(10_000)
    payment = await payout(fakes, 2_500)
    with pytest.raises(NotFound), fakes.database.unchanged():
        await fakes.service.cancel(OTHER, payment.id)


# -- rail outcomes -----------------------------------------------------------------------


async def test_settled_posts_the_hold_and_publishes_each_change() -> None:
    fakes = await funded(10_000)
    events = collect_events(fakes.transactions, PaymentChanged)
    payment = await payout(fakes, 2_500)

    assert await rail(fakes, payment.id, "accepted", 1) == "pending -> processing"
    assert await rail(fakes, payment.id, "settled", 2) == "processing -> succeeded"

    balance = await fakes.service.balance(CALLER.partner_id)
    assert (balance.posted, balance.held, balance.available) == (7_500, 0, 7_500)
    assert fakes.ledger.holds[payment.id].status == "posted"
    assert fakes.ledger.entries_total(MERCHANT) == -7_500  # top-up credit, payout debit
    assert [(e.event_type, e.version) for e in events] == [
        ("payment.processing", 2),
        ("payment.succeeded", 3),
    ]
    assert await fakes.service.check_ledger() == []


async def test_settled_before_accepted_passes_through_processing() -> None:
    fakes = await funded(10_000)
    events = collect_events(fakes.transactions, PaymentChanged)
    payment = await payout(fakes, 2_500)
    assert await rail(fakes, payment.id, "settled", 2) == "pending -> succeeded"
    assert [e.event_type for e in events] == ["payment.processing", "payment.succeeded"]
    history = await fakes.payments.transitions(payment.id)
    assert [(t["from"], t["to"], t["version"]) for t in history] == [
        (None, "pending", 1),
        ("pending", "processing", 2),
        ("processing", "succeeded", 3),
    ]


async def test_rejected_releases_the_hold() -> None:
    fakes = await funded(10_000)
    payment = await payout(fakes, 2_500)
    await rail(fakes, payment.id, "rejected", 1)
    stored = await fakes.service.current(payment.id)
    assert stored is not None and stored.status is S.FAILED
    assert stored.failure is not None and stored.failure.code == "rail_rejected"
    assert (await fakes.service.balance(CALLER.partner_id)).available == 10_000
    assert fakes.ledger.holds[payment.id].status == "voided"


@pytest.mark.parametrize(
    ("status", "sequence", "answer"),
    [
        ("settled", 3, "ignored: duplicate"),
        ("settled", 2, "ignored: stale"),
        ("accepted", 1, "ignored: stale"),
        ("rejected", 4, "ignored: already final"),
        ("teleported", 5, "ignored: unknown rail status teleported"),
    ],
)
async def test_a_repeated_stale_or_late_rail_status_changes_nothing(
    status: str, sequence: int, answer: str
) -> None:
    fakes = await funded(10_000)
    events = collect_events(fakes.transactions, PaymentChanged)
    payment = await payout(fakes, 2_500)
    await rail(fakes, payment.id, "accepted", 1)
    await rail(fakes, payment.id, "settled", 2)
    published = len(events)
    with fakes.database.unchanged():
        assert await rail(fakes, payment.id, status, sequence) == answer
    assert len(events) == published


async def test_a_stale_status_of_a_payment_in_flight_changes_nothing() -> None:
    fakes = await funded(10_000)
    payment = await payout(fakes, 2_500)
    await rail(fakes, payment.id, "accepted", 5)
    with fakes.database.unchanged():
        assert await rail(fakes, payment.id, "rejected", 4) == "ignored: stale"


async def test_a_status_for_an_unknown_payment_changes_nothing() -> None:
    fakes = await funded(10_000)
    with fakes.database.unchanged():
        assert await rail(fakes, "payment_nobody", "settled", 1) == "unknown payment"


async def test_a_use_case_that_fails_midway_leaves_every_store_unchanged() -> None:
    fakes = await funded(10_000)
    payment = await payout(fakes, 2_500)
    await rail(fakes, payment.id, "accepted", 1)

    async def listener_fails(event: PaymentChanged, tx: object) -> None:
        raise Boom  # a subscriber (webhooks, say) fails after the ledger moved

    fakes.transactions.subscribe(PaymentChanged, listener_fails)
    with pytest.raises(Boom), fakes.database.unchanged():
        await rail(fakes, payment.id, "settled", 2)
    stored = await fakes.service.current(payment.id)
    assert stored is not None and stored.status is S.PROCESSING
    assert fakes.ledger.holds[payment.id].status == "active"


# -- refunds ------------------------------------------------------------------------------


async def succeeded_collection(fakes: FakePayments, amount: int) -> str:
    payment = await collection(fakes, amount)
    await rail(fakes, payment.id, "accepted", 1)
    await rail(fakes, payment.id, "approved", 2)
    return payment.id


async def refund(fakes: FakePayments, payment_id: str, amount: int | None) -> Any:
    return await fakes.service.create_refund(
        CALLER, payment_id, amount=amount, reference=None, metadata={}
    )


async def test_an_approved_collection_credits_the_merchant() -> None:
    fakes = fake_payments()
    await succeeded_collection(fakes, 5_000)
    balance = await fakes.service.balance(CALLER.partner_id)
    assert (balance.posted, balance.held, balance.pending) == (5_000, 0, 0)
    assert await fakes.service.check_ledger() == []


async def test_refunds_never_exceed_what_remains_of_the_collection() -> None:
    fakes = fake_payments()
    events = collect_events(fakes.transactions, PaymentChanged)
    collection_id = await succeeded_collection(fakes, 5_000)

    first = await refund(fakes, collection_id, 3_000)
    assert (first.type, first.status, first.parent_id) == (
        PaymentType.REFUND,
        S.PENDING,
        collection_id,
    )
    parent = await fakes.service.current(collection_id)
    assert parent is not None and (parent.refunded_amount, parent.refundable) == (3_000, 2_000)
    assert events[-1].event_type == "payment.updated" and events[-1].version == parent.version

    with pytest.raises(RefundExceedsRemaining), fakes.database.unchanged():
        await refund(fakes, collection_id, 2_001)
    rest = await refund(fakes, collection_id, None)  # the whole remainder
    assert rest.amount.amount == 2_000
    with pytest.raises(RefundExceedsRemaining, match="Nothing is left"), fakes.database.unchanged():
        await refund(fakes, collection_id, None)
    assert (await fakes.service.balance(CALLER.partner_id)).held == 5_000


async def test_a_failed_refund_makes_its_amount_refundable_again() -> None:
    fakes = fake_payments()
    collection_id = await succeeded_collection(fakes, 5_000)
    made = await refund(fakes, collection_id, 3_000)
    await rail(fakes, made.id, "rejected", 1)
    parent = await fakes.service.current(collection_id)
    assert parent is not None and parent.refundable == 5_000
    assert (await fakes.service.balance(CALLER.partner_id)).available == 5_000
    assert await fakes.service.check_ledger() == []


async def test_a_settled_refund_takes_the_money_back() -> None:
    fakes = fake_payments()
    collection_id = await succeeded_collection(fakes, 5_000)
    made = await refund(fakes, collection_id, 3_000)
    await rail(fakes, made.id, "settled", 2)
    balance = await fakes.service.balance(CALLER.partner_id)
    assert (balance.posted, balance.held) == (2_000, 0)
    assert await fakes.service.check_ledger() == []


async def test_only_a_succeeded_collection_can_be_refunded() -> None:
    fakes = await funded(10_000)
    paid = await payout(fakes, 1_000)
    with pytest.raises(RefundNotSupported, match="make a new payout"), fakes.database.unchanged():
        await refund(fakes, paid.id, 100)
    waiting = await collection(fakes, 1_000)
    with pytest.raises(RefundNotSupported, match="pending"), fakes.database.unchanged():
        await refund(fakes, waiting.id, 100)
    with pytest.raises(NotFound), fakes.database.unchanged():
        await fakes.service.create_refund(OTHER, waiting.id, amount=1, reference=None, metadata={})


# -- invariants over any sequence -----------------------------------------------------------


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coroutine)


step = st.one_of(
    st.tuples(st.just("top_up"), st.integers(1, 5_000)),
    st.tuples(st.just("payout"), st.integers(1, 5_000)),
    st.tuples(
        st.sampled_from(["accepted", "settled", "rejected", "cancel", "claim"]),
        st.integers(0, 20),  # which payout (modulo how many there are)
        st.integers(0, 4),  # the rail's sequence number
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step, max_size=25))
def test_money_is_conserved_and_states_only_move_forward(steps: list[tuple[Any, ...]]) -> None:
    async def scenario() -> None:
        fakes = fake_payments()
        topped_up = 0
        ids: list[str] = []
        for kind, *args in steps:
            if kind == "top_up":
                await fakes.service.top_up(CALLER, args[0])
                topped_up += args[0]
            elif kind == "payout":
                with contextlib.suppress(InsufficientFunds):
                    ids.append((await payout(fakes, args[0])).id)
            elif ids:
                payment_id = ids[args[0] % len(ids)]
                if kind == "cancel":
                    with contextlib.suppress(PaymentNotCancelable):
                        await fakes.service.cancel(CALLER, payment_id)
                elif kind == "claim":
                    await fakes.service.claim_submission(payment_id)
                else:
                    await rail(fakes, payment_id, kind, args[1])

            payments = [fakes.payments.payments[i] for i in ids]
            settled = sum(p.amount.amount for p in payments if p.status is S.SUCCEEDED)
            in_flight = sum(p.amount.amount for p in payments if p.status not in TERMINAL)
            balance = await fakes.service.balance(CALLER.partner_id)
            assert balance.available + balance.held == balance.posted
            assert balance.posted == topped_up - settled
            assert balance.held == in_flight
            assert balance.available >= 0
            assert await fakes.service.check_ledger() == []

        for payment_id in ids:
            history = await fakes.payments.transitions(payment_id)
            assert [t["version"] for t in history] == list(range(1, len(history) + 1))
            for t in history[1:]:
                assert S(t["to"]) in TRANSITIONS[PaymentType.PAYOUT][S(t["from"])]

    run(scenario())
