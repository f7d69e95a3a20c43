"""What disputes take of a payment, for payments' refunds (payments' ``DisputeClaims``
port): a refund may not return what an open dispute holds or what a lost dispute already
sent back to the payer."""

from __future__ import annotations

from typing import Any

from amanat.disputes.domain.disputes import consumes


class DisputeClaims:
    async def claimed(self, tx: Any, payment_id: str) -> int:
        return sum(
            consumes(d.payment_type, d.status, d.amount)
            for d in await tx.disputes.on_payment(payment_id)
        )
