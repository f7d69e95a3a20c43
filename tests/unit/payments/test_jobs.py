"""The rail jobs' decisions (payments/jobs.py) against a scripted FakeRail: what each rail
answer turns into (a change, the job that follows, a retry), and the whole way through the
real job runtime over the fake outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.support.fake_payments import CALLER, payout

from amanat.payments.domain.payments import Payment, PaymentStatus
from amanat.payments.fakes import FakePayments, FakeRail, fake_payments
from amanat.payments.jobs import (
    ENQUIRY_STEPS,
    MAX_RESUBMITS,
    SUBMIT_GIVE_UP_AFTER,
    RailJobs,
    RailTarget,
)
from amanat.payments.rail import RailRejected, RailTimeout, RailUnavailable
from amanat.payments.service import ENQUIRE, SUBMIT
from amanat.platform.jobs.outcomes import Done, FollowUp, JobOutcome, RetryAfter
from amanat.platform.jobs.ports import OutboxJob
from amanat.platform.jobs.runtime import JobRuntime

S = PaymentStatus
TARGET = RailTarget("https://amanat.test/rails/raast/callbacks", "PK36SCBL0000001123456702")


class World:
    def __init__(self) -> None:
        self.fakes: FakePayments = fake_payments()
        self.rail = FakeRail(clock=self.fakes.clock)
        self.jobs = RailJobs(self.fakes.service, self.fakes.protection, self.rail, TARGET)

    async def payout(self, amount: int = 2_500) -> Payment:
        await self.fakes.service.top_up(CALLER, 10_000)
        return await payout(self.fakes, amount)

    async def finish(self, outcome: JobOutcome) -> None:
        """What the runtime does with a Done: its change, in one transaction."""
        assert isinstance(outcome, Done)
        if outcome.change is not None:
            async with self.fakes.transactions.atomic():
                await outcome.change()

    async def status(self, payment_id: str) -> Payment:
        payment = await self.fakes.service.current(payment_id)
        assert payment is not None
        return payment

    async def available(self) -> int:
        return (await self.fakes.service.balance(CALLER.partner_id)).available


def job(kind: str, payment: Payment, attempts: int = 1, **payload: Any) -> OutboxJob:
    return OutboxJob(1, kind, payment.id, dict(payload), attempts)


@pytest.fixture
def world() -> World:
    return World()


async def test_accepted_moves_the_payment_on_and_schedules_an_enquiry(world: World) -> None:
    payment = await world.payout()
    outcome = await world.jobs.submit(job(SUBMIT, payment))

    assert isinstance(outcome, Done) and outcome.change is not None
    assert outcome.then == FollowUp(ENQUIRE, world.fakes.service.config.enquire_after, {})
    [sent] = world.rail.submissions
    assert (sent.end_to_end_id, sent.kind, sent.amount) == (payment.id, "credit_transfer", 2_500)
    assert sent.creditor == {"name": "Ayesha Khan", "iban": "PK36SCBL0000001123456702"}
    await world.finish(outcome)
    after = await world.status(payment.id)
    assert after.status is S.PROCESSING
    assert after.rail_reference == world.rail.transfers[payment.id].rail_reference


async def test_rejected_fails_the_payment_and_releases_the_money(world: World) -> None:
    payment = await world.payout()
    world.rail.script_submit(RailRejected("AC01", "The account is invalid."))
    outcome = await world.jobs.submit(job(SUBMIT, payment))

    assert isinstance(outcome, Done) and outcome.then is None and outcome.change is not None
    await world.finish(outcome)
    after = await world.status(payment.id)
    assert after.status is S.FAILED
    assert after.failure is not None and after.failure.code == "rail_ac01"
    assert await world.available() == 10_000


async def test_an_unavailable_rail_is_retried_then_handed_to_enquiries(world: World) -> None:
    payment = await world.payout()
    for attempts in (1, 2, SUBMIT_GIVE_UP_AFTER - 1):
        world.rail.script_submit(RailUnavailable())
        outcome = await world.jobs.submit(job(SUBMIT, payment, attempts))
        assert isinstance(outcome, RetryAfter)
        assert outcome.delay == min(timedelta(seconds=2**attempts), timedelta(minutes=5))

    world.rail.script_submit(RailUnavailable())
    gave_up = await world.jobs.submit(job(SUBMIT, payment, SUBMIT_GIVE_UP_AFTER))
    assert gave_up == Done(then=FollowUp(ENQUIRE, timedelta(0), {"give_up": 1}))

    # The rail never got it: the enquiry fails the payment and releases the hold.
    outcome = await world.jobs.enquire(job(ENQUIRE, payment, give_up=1))
    await world.finish(outcome)
    after = await world.status(payment.id)
    assert after.status is S.FAILED
    assert after.failure is not None and after.failure.code == "rail_unavailable"
    assert await world.available() == 10_000


async def test_a_timeout_is_never_a_failure_an_enquiry_decides(world: World) -> None:
    payment = await world.payout()
    world.rail.script_submit(RailTimeout())
    outcome = await world.jobs.submit(job(SUBMIT, payment))
    assert outcome == Done(then=FollowUp(ENQUIRE, ENQUIRY_STEPS[0], {}))
    assert (await world.status(payment.id)).status is S.PENDING


async def test_an_enquiry_applies_what_the_rail_says(world: World) -> None:
    payment = await world.payout()
    await world.finish(await world.jobs.submit(job(SUBMIT, payment)))

    not_yet = await world.jobs.enquire(job(ENQUIRE, payment, attempts=2))
    assert not_yet == RetryAfter(ENQUIRY_STEPS[2], "not final yet")

    world.rail.move(payment.id, "settled")
    assert await world.jobs.enquire(job(ENQUIRE, payment)) == Done()
    assert (await world.status(payment.id)).status is S.SUCCEEDED
    assert await world.available() == 7_500

    # A final payment needs no more enquiries, and the rail is not asked.
    asked = len(world.rail.status_calls)
    assert await world.jobs.enquire(job(ENQUIRE, payment)) == Done()
    assert len(world.rail.status_calls) == asked


async def test_a_payment_the_rail_forgot_is_resubmitted_then_failed(world: World) -> None:
    payment = await world.payout()
    await world.finish(await world.jobs.submit(job(SUBMIT, payment)))
    world.rail.forget(payment.id)

    for resubmits in range(MAX_RESUBMITS):
        outcome = await world.jobs.enquire(job(ENQUIRE, payment, resubmits=resubmits))
        assert outcome == Done(
            then=FollowUp(SUBMIT, timedelta(0), {"resubmit": 1, "resubmits": resubmits + 1})
        )
        again = await world.jobs.submit(job(SUBMIT, payment, resubmit=1, resubmits=resubmits + 1))
        assert isinstance(again, Done) and again.then is not None
        assert again.then.payload == {"resubmits": resubmits + 1}
        await world.finish(again)
        assert world.rail.submissions[-1].end_to_end_id == payment.id  # the same transfer
        world.rail.forget(payment.id)

    last = await world.jobs.enquire(job(ENQUIRE, payment, resubmits=MAX_RESUBMITS))
    assert isinstance(last, Done) and last.then is None
    await world.finish(last)
    after = await world.status(payment.id)
    assert after.status is S.FAILED
    assert after.failure is not None and after.failure.code == "rail_unknown_transfer"
    assert await world.available() == 10_000


async def test_a_pending_payment_the_rail_never_got_is_sent_again(world: World) -> None:
    payment = await world.payout()
    outcome = await world.jobs.enquire(job(ENQUIRE, payment))
    assert outcome == Done(then=FollowUp(SUBMIT, timedelta(0), {}))


async def test_a_canceled_payment_is_never_sent(world: World) -> None:
    payment = await world.payout()
    await world.fakes.service.cancel(CALLER, payment.id)
    assert await world.jobs.submit(job(SUBMIT, payment)) == Done()
    assert world.rail.submissions == []


async def test_the_runtime_drives_a_payout_to_success_through_the_outbox(world: World) -> None:
    fakes = world.fakes
    runtime = JobRuntime(
        fakes.transactions,
        fakes.clock,
        {SUBMIT: world.jobs.submit, ENQUIRE: world.jobs.enquire},
        owner="test",
    )
    payment = await world.payout()

    assert await runtime.run_once() == 1  # SUBMIT: accepted, ENQUIRE queued
    assert (await world.status(payment.id)).status is S.PROCESSING
    [enquiry] = fakes.outbox.pending()
    assert enquiry.kind == ENQUIRE
    assert await runtime.run_once() == 0  # not due yet

    world.rail.move(payment.id, "settled")
    fakes.clock.advance(seconds=fakes.service.config.enquire_after.total_seconds())
    assert await runtime.run_once() == 1
    assert (await world.status(payment.id)).status is S.SUCCEEDED
    assert fakes.outbox.pending() == []
    assert {j.status for j in fakes.outbox.jobs.values()} == {"done"}
    assert await fakes.service.check_ledger() == []


async def test_a_busy_database_when_a_job_finishes_retries_it_soon_not_as_a_crash(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's write lock held past its busy timeout when the outcome is recorded: nothing
    was recorded, so the job is due again in seconds (not the crash's half minute), and
    when it runs again it finishes."""
    from amanat.kernel.errors import Unavailable
    from amanat.platform.jobs import runtime as runtime_module

    fakes = world.fakes
    runtime = JobRuntime(fakes.transactions, fakes.clock, {SUBMIT: world.jobs.submit}, owner="test")
    await world.payout()
    real_finish = JobRuntime._finish
    busy = [True]

    async def finish_once_busy(self: JobRuntime, *args: Any) -> None:
        if busy.pop() if busy else False:
            raise Unavailable("The database is busy; retry in a moment.")
        await real_finish(self, *args)

    monkeypatch.setattr(JobRuntime, "_finish", finish_once_busy)
    assert await runtime.run_once() == 1
    [again] = [j for j in fakes.outbox.pending() if j.kind == SUBMIT]
    assert again.last_error == "contended: database busy"
    assert again.run_at - fakes.clock.now() <= runtime_module.CONTENDED_RETRY * 1.2
    fakes.clock.advance(seconds=3)
    assert await runtime.run_once() == 1
    assert [j.kind for j in fakes.outbox.pending()] == [ENQUIRE]


async def test_a_job_whose_finish_committed_before_the_connection_was_lost_stays_done(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT of the job's outcome went through and the answer was lost with the
    connection (a restart): the runtime reschedules it, and that must not reopen a job
    that is done (it would submit the payment to the rail again)."""
    from amanat.kernel.errors import Unavailable

    fakes = world.fakes
    runtime = JobRuntime(fakes.transactions, fakes.clock, {SUBMIT: world.jobs.submit}, owner="test")
    await world.payout()
    real_finish = JobRuntime._finish

    async def finish_then_lose_the_answer(self: JobRuntime, *args: Any) -> None:
        await real_finish(self, *args)
        raise Unavailable("The connection to the database was lost.")

    monkeypatch.setattr(JobRuntime, "_finish", finish_then_lose_the_answer)
    assert await runtime.run_once() == 1
    assert [j.kind for j in fakes.outbox.pending()] == [ENQUIRE], "SUBMIT stays done"
