"""The audit sequencer and sealer: chains committed records and signs the chain's head, in
the background, off the request path.

Every ``chain_every_seconds`` it chains what business transactions committed to the inbox
(a cheap read when nothing waits).
It seals as soon as ``seal_every_records`` records were appended or ``seal_every_seconds``
passed since the last seal (whichever first), so what a database attacker could remove
unseen is at most those records. Between seals it only reads the head: requests never wait
for it. Several workers may run it; the head's lock makes one of them seal.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from amanat.kernel.waiting import wait_for_stop
from amanat.platform.audit.domain import Actor, Seal
from amanat.platform.audit.integrity import AuditIntegrityService

log = structlog.get_logger("amanat.worker")
SEALER = Actor(type="system", id="sealer")


class AuditSealer:
    def __init__(
        self,
        service: AuditIntegrityService,
        *,
        every_records: int,
        every_seconds: float,
        chain_every_seconds: float = 0.05,
    ) -> None:
        self._service = service
        self._every_records = every_records
        self._every = timedelta(seconds=every_seconds)
        # Check several times per period, so the count trigger is not held back by the time.
        self._poll = min(every_seconds / 4, 0.5, chain_every_seconds)
        self._failing = False

    async def run_once(self) -> Seal | None:
        await self._service.chain_pending()
        return await self._service.seal_if_due(
            SEALER, every_records=self._every_records, every=self._every
        )

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                seal = await self.run_once()
                if seal is not None:
                    log.debug("audit_sealed", seq=seal.seq)
                if self._failing:
                    log.info("audit_sealing_recovered")
                    self._failing = False
            except Exception:
                # Once per failure streak: it is retried twice a second.
                if not self._failing:
                    log.exception("audit_seal_failed")
                self._failing = True
            await wait_for_stop(stop, self._poll)
