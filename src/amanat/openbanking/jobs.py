"""Open banking's outbox job: ``openbanking.return_funds`` gives a customer back the
money of an initiated payment whose payout ended unpaid (queued with that change, by
:meth:`PaymentInitiationService.on_payment_changed`)."""

from __future__ import annotations

from amanat.openbanking.services.payments import PaymentInitiationService
from amanat.platform.jobs.outcomes import Dead, Done, JobOutcome
from amanat.platform.jobs.ports import OutboxJob


class ReturnFunds:
    def __init__(self, service: PaymentInitiationService) -> None:
        self._service = service

    async def __call__(self, job: OutboxJob) -> JobOutcome:
        if not job.subject_id:
            return Dead("no payment named")
        payment_id = job.subject_id
        # The change runs in the transaction that finishes this job: the return and the
        # job's end commit together, so it happens exactly once.
        return Done(change=lambda: self._service.return_funds(payment_id))
