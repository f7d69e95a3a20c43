"""Status enquiries are kept (payments/enquiries.py): each answer the rail gave the worker,
whether it changed the payment or not, and the rail not knowing the payment, so the
payment's timeline shows the worker still asking. Keeping one never fails the job."""

from __future__ import annotations

from typing import Any

from tests.support.fake_payments import CALLER, payout

from amanat.payments.enquiries import ENQUIRY_PREFIX, UNKNOWN, EnquiryLog, is_enquiry
from amanat.payments.fakes import FakeRail, InMemoryRailEvents, fake_payments
from amanat.payments.jobs import RailJobs, RailTarget
from amanat.payments.service import ENQUIRE, SUBMIT
from amanat.platform.jobs.outcomes import Done, RetryAfter
from amanat.platform.jobs.ports import OutboxJob

TARGET = RailTarget("https://amanat.test/rails/raast/callbacks", "PK36SCBL0000001123456702")


def job(kind: str, payment_id: str, **payload: Any) -> OutboxJob:
    return OutboxJob(1, kind, payment_id, dict(payload), 1)


async def test_every_enquiry_answer_is_kept_with_what_came_of_it() -> None:
    fakes = fake_payments()
    rail = FakeRail(clock=fakes.clock)
    jobs = RailJobs(
        fakes.service, fakes.protection, rail, TARGET, EnquiryLog(fakes.transactions, fakes.clock)
    )
    await fakes.service.top_up(CALLER, 10_000)
    payment = await payout(fakes, 2_500)
    submitted = await jobs.submit(job(SUBMIT, payment.id))
    assert isinstance(submitted, Done) and submitted.change is not None
    async with fakes.transactions.atomic():
        await submitted.change()

    assert isinstance(await jobs.enquire(job(ENQUIRE, payment.id)), RetryAfter)
    fakes.clock.advance(seconds=30)
    rail.move(payment.id, "settled")
    assert await jobs.enquire(job(ENQUIRE, payment.id)) == Done()

    events = fakes.database.store("rail_events", InMemoryRailEvents).events
    kept = sorted(
        ((e["received_at"], e["status"], e["sequence"], e["outcome"]) for e in events.values()),
        key=lambda e: e[0],
    )
    assert [k[1:] for k in kept] == [
        ("accepted", 1, "ignored: duplicate"),  # what the worker already knew: still kept
        ("settled", 2, "processing -> succeeded"),
    ]
    assert all(is_enquiry(event_id) for event_id in events)
    assert all(event_id.startswith(ENQUIRY_PREFIX) for event_id in events)
    assert all(e["end_to_end_id"] == payment.id for e in events.values())


async def test_the_rail_not_knowing_a_payment_is_kept_too() -> None:
    fakes = fake_payments()
    rail = FakeRail(clock=fakes.clock)
    jobs = RailJobs(
        fakes.service, fakes.protection, rail, TARGET, EnquiryLog(fakes.transactions, fakes.clock)
    )
    await fakes.service.top_up(CALLER, 10_000)
    payment = await payout(fakes, 2_500)
    submitted = await jobs.submit(job(SUBMIT, payment.id))
    assert isinstance(submitted, Done) and submitted.change is not None
    async with fakes.transactions.atomic():
        await submitted.change()
    rail.forget(payment.id)

    await jobs.enquire(job(ENQUIRE, payment.id))

    [kept] = fakes.database.store("rail_events", InMemoryRailEvents).events.values()
    assert (kept["status"], kept["outcome"]) == (UNKNOWN, "the rail has no such payment")


class Broken:
    def write(self) -> Any:
        raise RuntimeError("the database is gone")


async def test_keeping_an_enquiry_never_fails_the_job() -> None:
    fakes = fake_payments()
    log = EnquiryLog(Broken(), fakes.clock)  # type: ignore[arg-type]
    await log.record("pay_1", "settled", 2, "processing -> succeeded")  # no exception
