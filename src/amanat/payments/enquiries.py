"""Status enquiries, kept: what the rail answered each time the worker asked about a
payment, so support can see them on the payment's timeline.

A rail callback is remembered in ``rail_events`` under the rail's event id; an enquiry's
answer goes there too, under an id of its own (:data:`ENQUIRY_PREFIX` and a ULID), with
the status and sequence the rail gave and what applying it did (``processing ->
succeeded``, ``ignored: stale``, or that the rail does not know the payment). Only an
answer that changed the payment was visible before, as a transition caused by a "status
enquiry"; the ones that changed nothing are what tells support the worker is still asking.

Kept after the answer is applied, in a transaction of its own: best effort, as a lost
record only hides one question from the timeline, and the enquiry job must not fail (and
ask again) because of it.
"""

from __future__ import annotations

import structlog
from ulid import ULID

from amanat.kernel.clock import Clock
from amanat.payments.ports import PaymentsTx
from amanat.platform.db.ports import TransactionFactory

log = structlog.get_logger("amanat.dispatcher")

ENQUIRY_PREFIX = "enquiry:"
"""Event ids of recorded enquiries; a rail's own event ids never start with it."""
UNKNOWN = "unknown"
"""The status kept when the rail says it never received the payment."""


def is_enquiry(event_id: str) -> bool:
    return event_id.startswith(ENQUIRY_PREFIX)


class EnquiryLog:
    def __init__(self, transactions: TransactionFactory[PaymentsTx], clock: Clock) -> None:
        self._tx = transactions
        self._clock = clock

    async def record(self, end_to_end_id: str, status: str, sequence: int, outcome: str) -> None:
        """Keep one enquiry's answer (``status`` as the rail gave it, or :data:`UNKNOWN`)
        and what came of it; never raises."""
        try:
            async with self._tx.write() as tx:
                await tx.rail_events.remember(
                    f"{ENQUIRY_PREFIX}{ULID()}",
                    end_to_end_id,
                    status[:24],
                    sequence,
                    outcome[:64],
                    self._clock.now(),
                )
        except Exception:
            log.warning("rail_enquiry_not_recorded", payment_id=end_to_end_id, exc_info=True)
