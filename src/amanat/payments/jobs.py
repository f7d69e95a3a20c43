"""Payments' outbox jobs: ``SUBMIT`` sends a payment to the rail, ``ENQUIRE`` chases its
outcome. The job runtime (platform/jobs/runtime.py) claims the jobs and records what these
handlers answer. For each call to the rail:

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
from dataclasses import dataclass
from datetime import timedelta

import structlog

from amanat.kernel.waiting import wait_for_stop
from amanat.payments.domain.payments import Payment, PaymentStatus, PaymentType, rail_failure
from amanat.payments.enquiries import UNKNOWN, EnquiryLog
from amanat.payments.rail import (
    RailAdapter,
    RailRejected,
    RailTimeout,
    RailUnavailable,
    Submission,
)
from amanat.payments.service import ENQUIRE, SUBMIT, PaymentService
from amanat.platform.jobs.outcomes import Done, FollowUp, JobOutcome, RetryAfter
from amanat.platform.jobs.ports import OutboxJob
from amanat.platform.observability.metrics import RAIL_CALLS, UNRESOLVED
from amanat.platform.protection.service import DataProtectionService

log = structlog.get_logger("amanat.dispatcher")

SUBMIT_BACKOFF_CAP = timedelta(minutes=5)
SUBMIT_GIVE_UP_AFTER = 12  # about 30 minutes of an unavailable rail
# How often a payment the rail accepted and then forgot is sent again before it is failed.
MAX_RESUBMITS = 3
ENQUIRY_STEPS = [timedelta(seconds=s) for s in (5, 15, 30, 60, 120, 300, 600, 1800)]


@dataclass(frozen=True, slots=True)
class RailTarget:
    """Where the rail sends its callbacks, and the account collections are paid into."""

    callback_url: str
    collection_iban: str


class RailJobs:
    """The handlers of ``SUBMIT`` and ``ENQUIRE`` (registered by payments' ``include``)."""

    def __init__(
        self,
        payments: PaymentService,
        protection: DataProtectionService,
        rail: RailAdapter,
        target: RailTarget,
        enquiries: EnquiryLog | None = None,
    ) -> None:
        self._payments = payments
        self._protection = protection
        self._rail = rail
        self._target = target
        self._enquiries = enquiries

    async def _submission(self, payment_id: str, *, resubmit: bool) -> Submission | Payment | None:
        """What to send; the payment itself when it is past submission and not final
        (it needs an enquiry, not a send); None when there is nothing to do."""
        payment = await self._payments.claim_submission(payment_id)
        if payment is None:
            return None
        if payment.status is not PaymentStatus.PENDING and not resubmit:
            return payment
        details = await self._protection.reveal(payment.counterparty.subject_id, partner_id=None)
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
            creditor={"iban": self._target.collection_iban} if collection else party,
            debtor=party if collection else None,
            callback_url=self._target.callback_url,
            expires_at=payment.expires_at,
        )

    async def submit(self, job: OutboxJob) -> JobOutcome:
        resubmits = int(job.payload.get("resubmits", 0))
        carried = {"resubmits": resubmits} if resubmits else {}
        submission = await self._submission(
            job.subject_id, resubmit=bool(job.payload.get("resubmit"))
        )
        if submission is None:  # canceled, or final
            return Done()
        if isinstance(submission, Payment):
            # Already past submission (a callback got there first, or this job is re-run
            # after a crash): make sure something chases its outcome.
            return Done(then=FollowUp(ENQUIRE, timedelta(0), carried))
        try:
            acceptance = await self._rail.submit(submission)
        except RailRejected as exc:
            RAIL_CALLS.labels("submit", "rejected").inc()
            failure = rail_failure(exc.code, exc.reason or "The rail refused the payment.")
            return Done(
                change=lambda: self._payments.fail_submission(
                    job.subject_id, failure.code, failure.message
                )
            )
        except RailTimeout:
            RAIL_CALLS.labels("submit", "timeout").inc()
            log.warning("rail_submit_timeout", payment_id=job.subject_id)
            return Done(then=FollowUp(ENQUIRE, ENQUIRY_STEPS[0], carried))
        except RailUnavailable as exc:
            RAIL_CALLS.labels("submit", "unavailable").inc()
            if job.attempts >= SUBMIT_GIVE_UP_AFTER:
                # Hand over to enquiries: they fail it only if the rail never saw it.
                return Done(then=FollowUp(ENQUIRE, timedelta(0), carried | {"give_up": 1}))
            delay = min(timedelta(seconds=2**job.attempts), SUBMIT_BACKOFF_CAP)
            return RetryAfter(delay, f"rail unavailable: {exc}")
        RAIL_CALLS.labels("submit", "accepted").inc()
        log.info("rail_submitted", payment_id=job.subject_id)
        return Done(
            change=lambda: self._payments.apply_rail_status(
                job.subject_id,
                "accepted",
                sequence=0,
                rail_reference=acceptance.rail_reference,
                cause="rail accepted the submission",
            ),
            then=FollowUp(ENQUIRE, self._payments.config.enquire_after, carried),
        )

    async def enquire(self, job: OutboxJob) -> JobOutcome:
        payment = await self._payments.current(job.subject_id)
        if payment is None or payment.is_terminal:
            return Done()
        try:
            status = await self._rail.status(job.subject_id)
        except (RailUnavailable, RailTimeout) as exc:
            RAIL_CALLS.labels("status", "unavailable").inc()
            return RetryAfter(self._enquiry_delay(job), f"status enquiry failed: {exc}")
        RAIL_CALLS.labels("status", "found" if status else "unknown").inc()
        if status is None:
            if self._enquiries is not None:
                await self._enquiries.record(
                    job.subject_id, UNKNOWN, 0, "the rail has no such payment"
                )
            return self._unknown_at_the_rail(job, payment)
        outcome = await self._payments.apply_rail_status(
            job.subject_id,
            status.status,
            sequence=status.sequence,
            reason_code=status.reason_code,
            reason=status.reason,
            cause="status enquiry",
        )
        log.info("rail_enquiry", payment_id=job.subject_id, outcome=outcome)
        if self._enquiries is not None:
            await self._enquiries.record(job.subject_id, status.status, status.sequence, outcome)
        payment = await self._payments.current(job.subject_id)
        if payment is not None and payment.is_terminal:
            return Done()
        return RetryAfter(self._enquiry_delay(job), "not final yet")

    def _unknown_at_the_rail(self, job: OutboxJob, payment: Payment) -> JobOutcome:
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
                return Done(
                    change=lambda: self._payments.fail_submission(
                        job.subject_id,
                        "rail_unavailable",
                        "The rail was unavailable and never received the payment.",
                    )
                )
            carried = {"resubmits": resubmits} if resubmits else {}
            return Done(then=FollowUp(SUBMIT, timedelta(0), carried))
        if resubmits >= MAX_RESUBMITS:
            log.warning("rail_lost_payment", payment_id=job.subject_id, resubmits=resubmits)
            return Done(
                change=lambda: self._payments.fail_submission(
                    job.subject_id,
                    "rail_unknown_transfer",
                    "The rail accepted the payment but no longer knows it, and did not "
                    "keep it when it was sent again; no money moved.",
                )
            )
        log.warning("rail_forgot_payment", payment_id=job.subject_id, resubmits=resubmits)
        return Done(
            then=FollowUp(SUBMIT, timedelta(0), {"resubmit": 1, "resubmits": resubmits + 1})
        )

    @staticmethod
    def _enquiry_delay(job: OutboxJob) -> timedelta:
        return ENQUIRY_STEPS[min(job.attempts, len(ENQUIRY_STEPS) - 1)]


class UnresolvedGauge:
    """Keeps ``amanat_payments_unresolved`` current in each worker process."""

    def __init__(self, payments: PaymentService, *, every_seconds: float = 5.0) -> None:
        self._payments = payments
        self._every = every_seconds

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                UNRESOLVED.set(await self._payments.unresolved_count(timedelta(minutes=5)))
            except Exception:
                log.exception("unresolved_gauge_failed")
            await wait_for_stop(stop, self._every)
