"""No payment is left in flight for ever: not after a crash between two steps of the
dispatcher, not when the rail forgets a payment it accepted, not when its jobs are gone.

Runs in one process against the mounted sandbox rail (the world of test_payment_flow).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.integration.payments import test_payment_flow as flow
from tests.integration.payments.test_payment_flow import World, _drive, _ledger_ok, _pay, _status

from amanat.payments.jobs import MAX_RESUBMITS
from amanat.payments.rail import Acceptance, RailAdapter, RailCallback, RailStatus, Submission
from amanat.payments.service import ENQUIRE
from amanat.payments.wiring import sweep_job
from amanat.platform.jobs.outbox_store import SqlOutboxRepository
from amanat.platform.jobs.runtime import JobRuntime
from amanat.platform.jobs.scheduler import Scheduler
from amanat.platform.jobs.tables import outbox

world = flow.world  # the fixture: amanat with the sandbox rail mounted, one partner
NO_CALLBACK = 100_010  # the rail settles it but never says so: only enquiries find out


class Killed(Exception):
    """Stands for the process dying at that point."""


async def _jobs(world: World, payment_id: str) -> list[tuple[str, str]]:
    async with world.container.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(outbox.c.kind, outbox.c.status)
                .where(outbox.c.subject_id == payment_id)
                .order_by(outbox.c.id)
            )
        ).all()
    return [(r.kind, r.status) for r in rows]


async def test_a_crash_before_the_enquiry_is_queued_leaves_nothing_stuck(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after the rail accepted the payout, as the enquiry is being
    queued: the acceptance, the enquiry and the end of the submission job are one
    transaction, so the submission is simply run again and the payout completes."""
    payment_id = await _pay(world, NO_CALLBACK, "killed")
    enqueue = SqlOutboxRepository.enqueue

    async def dies_once(
        self: SqlOutboxRepository, kind: str, subject_id: str, *args: Any, **kwargs: Any
    ) -> None:
        if kind == ENQUIRE and subject_id == payment_id:
            monkeypatch.setattr(SqlOutboxRepository, "enqueue", enqueue)
            raise Killed
        await enqueue(self, kind, subject_id, *args, **kwargs)

    monkeypatch.setattr(SqlOutboxRepository, "enqueue", dies_once)
    await world.dispatcher.run_once()
    assert (await _status(world, payment_id))["status"] == "pending", "nothing half-applied"
    body = await _drive(world, payment_id, want="succeeded", advance=35)
    assert body["version"] == 3
    transfer = await world.container.rail.status(payment_id)
    assert transfer is not None and transfer.status == "settled"
    await _ledger_ok(world)


class ForgetfulRail:
    """The sandbox rail, except that its status enquiries forget the first ``forget``
    payments they are asked about (as a rail that lost its state would)."""

    def __init__(self, rail: RailAdapter, forget: int) -> None:
        self._rail = rail
        self._forget = forget
        self.submissions: list[str] = []

    async def submit(self, sub: Submission) -> Acceptance:
        self.submissions.append(sub.end_to_end_id)
        return await self._rail.submit(sub)

    async def status(self, end_to_end_id: str) -> RailStatus | None:
        if self._forget:
            self._forget -= 1
            return None
        return await self._rail.status(end_to_end_id)

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> RailCallback:
        return self._rail.verify_callback(headers, body)


def _dispatcher(world: World, rail: ForgetfulRail) -> JobRuntime:
    return world.container.job_runtime(owner="test", rail=rail)


async def test_a_payment_the_rail_forgot_is_sent_again_with_the_same_id(world: World) -> None:
    rail = ForgetfulRail(world.container.rail, forget=1)
    world.dispatcher = _dispatcher(world, rail)
    payment_id = await _pay(world, NO_CALLBACK, "forgotten")
    body = await _drive(world, payment_id, want="succeeded", advance=35)
    assert rail.submissions == [payment_id, payment_id], "sent again, with the same id"
    assert body["version"] == 3
    balance = (await world.http.get("/v1/balance", headers=world.auth)).json()
    assert (balance["available"], balance["held"]) == (10_000_000 - NO_CALLBACK, 0)
    await _ledger_ok(world)


async def test_a_payment_the_rail_keeps_forgetting_fails_and_releases_the_hold(
    world: World,
) -> None:
    rail = ForgetfulRail(world.container.rail, forget=1_000)
    world.dispatcher = _dispatcher(world, rail)
    payment_id = await _pay(world, NO_CALLBACK, "lost")
    body = await _drive(world, payment_id, want="failed", advance=35, rounds=120)
    assert body["failure"]["code"] == "rail_unknown_transfer"
    assert len(rail.submissions) == 1 + MAX_RESUBMITS
    balance = (await world.http.get("/v1/balance", headers=world.auth)).json()
    assert (balance["available"], balance["held"]) == (10_000_000, 0)
    await _ledger_ok(world)


async def test_the_sweeper_requeues_a_payment_in_flight_with_no_job(world: World) -> None:
    payment_id = await _pay(world, NO_CALLBACK, "orphan")
    await _drive(world, payment_id, want="processing")
    async with world.container.db.write() as conn:  # its enquiry is lost
        await conn.execute(outbox.delete().where(outbox.c.subject_id == payment_id))
    clock = world.container.clock
    container = world.container
    sweep = sweep_job(
        container.payments, every=timedelta(seconds=10), stranded_after=timedelta(minutes=2)
    )
    scheduler = Scheduler(container.transactions, container.clock, [sweep], owner="w")
    assert (await scheduler.run_due())["payments.sweep"] == "none stranded", "too recent"
    clock.advance(minutes=2, seconds=1)  # type: ignore[attr-defined]
    assert (await scheduler.run_due())["payments.sweep"] == "rail.enquire=1"
    assert await _jobs(world, payment_id) == [(ENQUIRE, "pending")]
    clock.advance(seconds=11)  # type: ignore[attr-defined]
    assert (await scheduler.run_due())["payments.sweep"] == "none stranded", "it has a job now"
    await _drive(world, payment_id, want="succeeded")
    await _ledger_ok(world)


async def test_the_sweeper_sends_a_pending_payment_that_lost_its_job(world: World) -> None:
    payment_id = await _pay(world, 150_000, "unsent")
    async with world.container.db.write() as conn:
        await conn.execute(outbox.delete().where(outbox.c.subject_id == payment_id))
    assert await world.dispatcher.run_once() == 0
    world.container.clock.advance(minutes=2)  # type: ignore[attr-defined]
    queued = await world.container.payments.requeue_stranded(timedelta(minutes=1))
    assert queued == {"rail.submit": 1, "rail.enquire": 0}
    await _drive(world, payment_id, want="succeeded")
    await _ledger_ok(world)
