"""The outbox dispatcher: sends payments to the rail and chases their outcomes.

Jobs are claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) or compare-and-set (SQLite),
so any number of workers never take the same job. For each call to the rail:

| situation | what happens |
|---|---|
| accepted | payment -> processing (collections: awaiting_approval); enquiry scheduled |
| rejected (4xx, a definite refusal) | payment -> failed, hold released |
| rail unavailable (5xx, refused, circuit open) | retried with backoff and jitter |
| timeout (outcome unknown) | never assumed failed: a status enquiry decides |
| no callback | status enquiries on a backoff schedule until final |
| rail forgot an accepted payment | sent again, same end-to-end id; 3 times, then failed |

A state change and the job that must follow it commit in one transaction with the finish
of the job that caused them, so a crash at any moment leaves either the old job (run again;
every step is idempotent) or the new one, never a payment in flight with no job. The
scheduler's ``payments.sweep`` job is the safety net for anything else (see
:meth:`PaymentService.requeue_stranded`).

Payments left unresolved are counted for the ``amanat_payments_unresolved`` gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from amanat.bootstrap import Container
from amanat.payments.domain.payments import Payment, PaymentStatus, PaymentType, rail_failure
from amanat.payments.rail import (
    RailAdapter,
    RailRejected,
    RailTimeout,
    RailUnavailable,
    Submission,
)
from amanat.payments.service import ENQUIRE, SUBMIT
from amanat.platform.db.ports import OutboxJob
from amanat.platform.observability.metrics import OUTBOX_PENDING, RAIL_CALLS, UNRESOLVED

log = structlog.get_logger("amanat.dispatcher")

LEASE = timedelta(seconds=60)
SUBMIT_BACKOFF_CAP = timedelta(minutes=5)
SUBMIT_GIVE_UP_AFTER = 12  # about 30 minutes of an unavailable rail
# How often a payment the rail accepted and then forgot is sent again before it is failed.
MAX_RESUBMITS = 3
ENQUIRY_STEPS = [timedelta(seconds=s) for s in (5, 15, 30, 60, 120, 300, 600, 1800)]


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The job that must follow a finished one, queued in the same transaction."""

    kind: str
    after: timedelta
    payload: dict[str, int] = field(default_factory=dict)


def _jittered(delay: timedelta) -> timedelta:
    return delay * random.uniform(0.8, 1.2)


class Dispatcher:
    def __init__(
        self,
        container: Container,
        rail: RailAdapter,
        *,
        callback_url: str,
        owner: str | None = None,
        batch: int = 20,
        concurrency: int = 8,
        lease: timedelta = LEASE,
    ) -> None:
        self._c = container
        self._rail = rail
        self._callback_url = callback_url
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:dispatch"
        self._batch = batch
        self._lease = lease
        self._semaphore = asyncio.Semaphore(concurrency)

    @property
    def _now(self) -> datetime:
        return self._c.clock.now()

    async def run_once(self) -> int:
        async with self._c.transactions.write() as tx:
            jobs = await tx.outbox.claim(
                self._owner, self._now, self._now + self._lease, self._batch
            )
        if jobs:
            await asyncio.gather(*(self._guarded(job) for job in jobs))
        return len(jobs)

    async def _guarded(self, job: OutboxJob) -> None:
        async with self._semaphore:
            try:
                await self.handle(job)
            except Exception as exc:
                log.exception("outbox_job_crashed", job=job.id, kind=job.kind)
                await self._retry(job, timedelta(seconds=30), f"crash: {type(exc).__name__}")

    async def handle(self, job: OutboxJob) -> None:
        if job.kind == SUBMIT:
            await self._submit(job)
        elif job.kind == ENQUIRE:
            await self._enquire(job)
        else:
            await self._retry(job, timedelta(hours=1), f"unknown job kind {job.kind}", dead=True)

    async def _finish(self, job: OutboxJob, *, then: FollowUp | None = None) -> None:
        """Finish ``job``, queueing its follow-up in the same transaction: a crash can
        never leave the follow-up without the finish, nor the finish without it."""
        async with self._c.transactions.write() as tx:
            if then is not None:
                await tx.outbox.enqueue(
                    then.kind, job.subject_id, then.payload, self._now + then.after
                )
            await tx.outbox.finish(job.id, self._owner, self._now)

    async def _retry(
        self, job: OutboxJob, delay: timedelta, error: str, *, dead: bool = False
    ) -> None:
        async with self._c.transactions.write() as tx:
            await tx.outbox.retry(
                job.id, self._owner, self._now + _jittered(delay), error, self._now, dead=dead
            )

    async def _settle(
        self, job: OutboxJob, change: Callable[[], Awaitable[object]], then: FollowUp | None
    ) -> object:
        """Apply a payment change, queue the job that must follow it and finish ``job``,
        all in one transaction (the payment service's own transaction joins it)."""
        async with self._c.transactions.atomic() as tx:
            outcome = await change()
            if then is not None:
                await tx.outbox.enqueue(
                    then.kind, job.subject_id, then.payload, self._now + then.after
                )
            await tx.outbox.finish(job.id, self._owner, self._now)
        return outcome

    async def _submission(self, payment_id: str, *, resubmit: bool) -> Submission | Payment | None:
        """What to send; the payment itself when it is past submission and not final
        (it needs an enquiry, not a send); None when there is nothing to do."""
        payment = await self._c.payments.claim_submission(payment_id)
        if payment is None:
            return None
        if payment.status is not PaymentStatus.PENDING and not resubmit:
            return payment
        details = await self._c.protection.reveal(payment.counterparty.subject_id, partner_id=None)
        party: dict[str, str] = {"name": details.name} if details.name else {}
        if details.iban:
            party["iban"] = details.iban
        elif details.raast_id:
            party["raast_id"] = details.raast_id
        collection = payment.type is PaymentType.COLLECTION
        return Submission(
            end_to_end_id=payment.id,
            kind="request_to_pay" if collection else "credit_transfer",
            amount=payment.amount.amount,
            currency=payment.amount.currency,
            creditor={"iban": self._c.settings.rail.collection_iban} if collection else party,
            debtor=party if collection else None,
            callback_url=self._callback_url,
            expires_at=payment.expires_at,
        )

    async def _submit(self, job: OutboxJob) -> None:
        resubmits = int(job.payload.get("resubmits", 0))
        carried = {"resubmits": resubmits} if resubmits else {}
        submission = await self._submission(
            job.subject_id, resubmit=bool(job.payload.get("resubmit"))
        )
        if submission is None:  # canceled, or final
            await self._finish(job)
            return
        if isinstance(submission, Payment):
            # Already past submission (a callback got there first, or this job is re-run
            # after a crash): make sure something chases its outcome.
            await self._finish(job, then=FollowUp(ENQUIRE, timedelta(0), carried))
            return
        try:
            acceptance = await self._rail.submit(submission)
        except RailRejected as exc:
            RAIL_CALLS.labels("submit", "rejected").inc()
            failure = rail_failure(exc.code, exc.reason or "The rail refused the payment.")
            await self._settle(
                job,
                lambda: self._c.payments.fail_submission(
                    job.subject_id, failure.code, failure.message
                ),
                None,
            )
        except RailTimeout:
            RAIL_CALLS.labels("submit", "timeout").inc()
            log.warning("rail_submit_timeout", payment_id=job.subject_id)
            await self._finish(job, then=FollowUp(ENQUIRE, ENQUIRY_STEPS[0], carried))
        except RailUnavailable as exc:
            RAIL_CALLS.labels("submit", "unavailable").inc()
            if job.attempts >= SUBMIT_GIVE_UP_AFTER:
                # Hand over to enquiries: they fail it only if the rail never saw it.
                await self._finish(
                    job, then=FollowUp(ENQUIRE, timedelta(0), carried | {"give_up": 1})
                )
                return
            delay = min(timedelta(seconds=2**job.attempts), SUBMIT_BACKOFF_CAP)
            await self._retry(job, delay, f"rail unavailable: {exc}")
        else:
            RAIL_CALLS.labels("submit", "accepted").inc()
            outcome = await self._settle(
                job,
                lambda: self._c.payments.apply_rail_status(
                    job.subject_id,
                    "accepted",
                    sequence=0,
                    rail_reference=acceptance.rail_reference,
                    cause="rail accepted the submission",
                ),
                FollowUp(ENQUIRE, self._c.payments.config.enquire_after, carried),
            )
            log.info("rail_submitted", payment_id=job.subject_id, outcome=outcome)

    async def _enquire(self, job: OutboxJob) -> None:
        async with self._c.transactions.read() as tx:
            payment = await tx.payments.get(job.subject_id)
        if payment is None or payment.is_terminal:
            await self._finish(job)
            return
        try:
            status = await self._rail.status(job.subject_id)
        except (RailUnavailable, RailTimeout) as exc:
            RAIL_CALLS.labels("status", "unavailable").inc()
            await self._retry(job, self._enquiry_delay(job), f"status enquiry failed: {exc}")
            return
        RAIL_CALLS.labels("status", "found" if status else "unknown").inc()
        if status is None:
            await self._unknown_at_the_rail(job, payment)
            return
        outcome = await self._c.payments.apply_rail_status(
            job.subject_id,
            status.status,
            sequence=status.sequence,
            reason_code=status.reason_code,
            reason=status.reason,
            cause="status enquiry",
        )
        log.info("rail_enquiry", payment_id=job.subject_id, outcome=outcome)
        async with self._c.transactions.read() as tx:
            payment = await tx.payments.get(job.subject_id)
        if payment is not None and payment.is_terminal:
            await self._finish(job)
        else:
            await self._retry(job, self._enquiry_delay(job), "not final yet")

    async def _unknown_at_the_rail(self, job: OutboxJob, payment: Payment) -> None:
        """The rail says it never received the payment.

        Still pending: the first send never arrived; send again (the same end-to-end id
        makes that safe), or fail it if sending had been given up. Past submission: the
        rail accepted it once and has lost it; send it again with the same end-to-end id
        (the rail answers a transfer it still has with its first acceptance, so this never
        moves money twice), at most ``MAX_RESUBMITS`` times, then fail it with
        ``rail_unknown_transfer`` and release the hold."""
        resubmits = int(job.payload.get("resubmits", 0))
        if payment.status is PaymentStatus.PENDING:
            if job.payload.get("give_up"):
                await self._settle(
                    job,
                    lambda: self._c.payments.fail_submission(
                        job.subject_id,
                        "rail_unavailable",
                        "The rail was unavailable and never received the payment.",
                    ),
                    None,
                )
                return
            carried = {"resubmits": resubmits} if resubmits else {}
            await self._finish(job, then=FollowUp(SUBMIT, timedelta(0), carried))
            return
        if resubmits >= MAX_RESUBMITS:
            log.warning("rail_lost_payment", payment_id=job.subject_id, resubmits=resubmits)
            await self._settle(
                job,
                lambda: self._c.payments.fail_submission(
                    job.subject_id,
                    "rail_unknown_transfer",
                    "The rail accepted the payment but no longer knows it, and did not "
                    "keep it when it was sent again; no money moved.",
                ),
                None,
            )
            return
        log.warning("rail_forgot_payment", payment_id=job.subject_id, resubmits=resubmits)
        await self._finish(
            job,
            then=FollowUp(SUBMIT, timedelta(0), {"resubmit": 1, "resubmits": resubmits + 1}),
        )

    @staticmethod
    def _enquiry_delay(job: OutboxJob) -> timedelta:
        return ENQUIRY_STEPS[min(job.attempts, len(ENQUIRY_STEPS) - 1)]

    async def observe(self) -> None:
        async with self._c.transactions.read() as tx:
            UNRESOLVED.set(await tx.payments.unresolved(self._now - timedelta(minutes=5)))
            OUTBOX_PENDING.set(await tx.outbox.pending_count())

    async def run_forever(self, stop: asyncio.Event, *, idle_seconds: float = 0.5) -> None:
        log.info("dispatcher_started", owner=self._owner)
        while not stop.is_set():
            try:
                worked = await self.run_once()
                await self.observe()
            except Exception:
                log.exception("dispatcher_tick_failed")
                worked = 0
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle_seconds)
