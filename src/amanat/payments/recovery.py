"""What an operator does for a payment that is stuck: ask the rail about it now.

A payment past submission is chased by status enquiries on a backoff schedule; when a
partner calls about one that has sat in ``processing`` for a while, support should not
have to wait for the next scheduled enquiry. ``enquire_now`` queues one to run at once, in
the same transaction as its audit record. A second enquiry is harmless: rail statuses are
applied by sequence, so an old answer never overrides a newer one.
"""

from __future__ import annotations

from amanat.kernel.clock import Clock
from amanat.kernel.errors import Conflict, NotFound
from amanat.payments.domain.payments import PaymentStatus
from amanat.payments.service import ENQUIRE
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.unit_of_work.sql import SqlTransactions


class PaymentRecovery:
    def __init__(self, transactions: SqlTransactions, clock: Clock) -> None:
        self._tx = transactions
        self._clock = clock

    async def enquire_now(self, actor: Actor, payment_id: str, *, reason: str) -> None:
        now = self._clock.now()
        async with self._tx.write() as tx:
            payment = await tx.payments.get(payment_id, for_update=True)
            if payment is None:
                raise NotFound(f"No payment '{payment_id[:40]}'.")
            if payment.is_terminal:
                raise Conflict(
                    f"The payment is {payment.status.value}: there is nothing to ask the rail.",
                    code="payment_final",
                )
            if payment.status is PaymentStatus.PENDING and payment.submitted_at is None:
                raise Conflict(
                    "The payment has not been sent to the rail yet; the worker sends it.",
                    code="payment_not_submitted",
                )
            await tx.outbox.enqueue(ENQUIRE, payment.id, {}, now)
            await audit.record(
                tx,
                self._clock,
                actor,
                "payment.enquiry_requested",
                target_type="payment",
                target_id=payment.id,
                payload={"status": payment.status.value, "reason": reason[:200]},
            )
