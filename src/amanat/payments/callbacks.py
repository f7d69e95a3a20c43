"""The rail's callbacks as a use case: remembered by event id, applied by the payment state
machine, in one transaction.

The route verifies the signature and parses the body (rail adapter), then hands the
callback here. The event record and the payment change commit together, so a crash in
between makes the rail send it again rather than lose it; a repeated event id changes
nothing.
"""

from __future__ import annotations

import hashlib

from amanat.kernel.clock import Clock
from amanat.payments.ports import PaymentsTx
from amanat.payments.rail import RailCallback
from amanat.payments.service import PaymentService
from amanat.platform.db.ports import UnitOfWork


class RailCallbacks:
    def __init__(
        self, transactions: UnitOfWork[PaymentsTx], clock: Clock, payments: PaymentService
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._payments = payments

    async def reject(self, rail: str, reason: str, source_ip: str | None, body: bytes) -> None:
        """Keep a record of a callback that failed verification (never applied)."""
        async with self._tx.write() as tx:
            await tx.rail_events.reject(
                rail, reason, source_ip, hashlib.sha256(body).hexdigest(), self._clock.now()
            )

    async def apply(self, callback: RailCallback) -> str | None:
        """Apply ``callback``; what changed, or None if this event was applied before."""
        async with self._tx.atomic() as tx:
            fresh = await tx.rail_events.remember(
                callback.event_id,
                callback.end_to_end_id,
                callback.status,
                callback.sequence,
                "applied",
                self._clock.now(),
            )
            if not fresh:
                return None
            return await self._payments.apply_rail_status(
                callback.end_to_end_id,
                callback.status,
                sequence=callback.sequence,
                reason_code=callback.reason_code,
                reason=callback.reason,
                cause="rail callback",
            )
