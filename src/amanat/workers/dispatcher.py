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

Payments left unresolved are counted for the ``amanat_payments_unresolved`` gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from datetime import datetime, timedelta

import structlog

from amanat.adapters.rails.base import (
    RailAdapter,
    RailRejected,
    RailTimeout,
    RailUnavailable,
    Submission,
)
from amanat.bootstrap import Container
from amanat.domain.payments import PaymentType
from amanat.observability.metrics import OUTBOX_PENDING, RAIL_CALLS, UNRESOLVED
from amanat.services.payments import ENQUIRE, SUBMIT
from amanat.services.ports import OutboxJob

log = structlog.get_logger("amanat.dispatcher")

LEASE = timedelta(seconds=60)
SUBMIT_BACKOFF_CAP = timedelta(minutes=5)
SUBMIT_GIVE_UP_AFTER = 12  # about 30 minutes of an unavailable rail
ENQUIRY_STEPS = [timedelta(seconds=s) for s in (5, 15, 30, 60, 120, 300, 600, 1800)]


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
    ) -> None:
        self._c = container
        self._rail = rail
        self._callback_url = callback_url
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:dispatch"
        self._batch = batch
        self._semaphore = asyncio.Semaphore(concurrency)

    @property
    def _now(self) -> datetime:
        return self._c.clock.now()

    async def run_once(self) -> int:
        async with self._c.transactions.write() as tx:
            jobs = await tx.outbox.claim(self._owner, self._now, self._now + LEASE, self._batch)
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

    async def _finish(self, job: OutboxJob) -> None:
        async with self._c.transactions.write() as tx:
            await tx.outbox.finish(job.id, self._owner, self._now)

    async def _retry(
        self, job: OutboxJob, delay: timedelta, error: str, *, dead: bool = False
    ) -> None:
        async with self._c.transactions.write() as tx:
            await tx.outbox.retry(
                job.id, self._owner, self._now + _jittered(delay), error, self._now, dead=dead
            )

    async def _enqueue(
        self, kind: str, payment_id: str, delay: timedelta, payload: dict[str, int] | None = None
    ) -> None:
        async with self._c.transactions.write() as tx:
            await tx.outbox.enqueue(kind, payment_id, payload or {}, self._now + delay)

    async def _submission(self, payment_id: str) -> Submission | None:
        payment = await self._c.payments.claim_submission(payment_id)
        if payment is None:
            return None
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
        submission = await self._submission(job.subject_id)
        if submission is None:  # canceled, or already past submission
            await self._finish(job)
            return
        try:
            acceptance = await self._rail.submit(submission)
        except RailRejected as exc:
            RAIL_CALLS.labels("submit", "rejected").inc()
            await self._c.payments.fail_submission(
                job.subject_id,
                f"rail_{exc.code.lower()}",
                exc.reason or "The rail refused the payment.",
            )
            await self._finish(job)
        except RailTimeout:
            RAIL_CALLS.labels("submit", "timeout").inc()
            log.warning("rail_submit_timeout", payment_id=job.subject_id)
            await self._enqueue(ENQUIRE, job.subject_id, ENQUIRY_STEPS[0])
            await self._finish(job)
        except RailUnavailable as exc:
            RAIL_CALLS.labels("submit", "unavailable").inc()
            if job.attempts >= SUBMIT_GIVE_UP_AFTER:
                # Hand over to enquiries: they fail it only if the rail never saw it.
                await self._enqueue(ENQUIRE, job.subject_id, timedelta(0), {"give_up": 1})
                await self._finish(job)
                return
            delay = min(timedelta(seconds=2**job.attempts), SUBMIT_BACKOFF_CAP)
            await self._retry(job, delay, f"rail unavailable: {exc}")
        else:
            RAIL_CALLS.labels("submit", "accepted").inc()
            outcome = await self._c.payments.apply_rail_status(
                job.subject_id,
                "accepted",
                sequence=0,
                rail_reference=acceptance.rail_reference,
                cause="rail accepted the submission",
            )
            log.info("rail_submitted", payment_id=job.subject_id, outcome=outcome)
            await self._enqueue(ENQUIRE, job.subject_id, self._c.payments.config.enquire_after)
            await self._finish(job)

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
            if job.payload.get("give_up"):
                await self._c.payments.fail_submission(
                    job.subject_id,
                    "rail_unavailable",
                    "The rail was unavailable and never received the payment.",
                )
                await self._finish(job)
                return
            # The rail never saw it (the first send timed out before arriving): send again;
            # the same end-to-end id makes this safe.
            await self._enqueue(SUBMIT, job.subject_id, timedelta(0))
            await self._finish(job)
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
