"""The audit sequencer and sealer: chains committed records and signs the chain's head, in
the background, off the request path.

Every ``chain_every_seconds`` it chains what business transactions committed to the inbox
(a cheap read when nothing waits).
It seals as soon as ``seal_every_records`` records were appended or ``seal_every_seconds``
passed since the last seal (whichever first), so what a database attacker could remove
unseen is at most those records. Between seals it only reads the head: requests never wait
for it. Several workers may run it; the head's lock makes one of them seal.

A failure streak (a witness refusing the seal, the database, the key) is logged once and,
given an :class:`~amanat.platform.audit.health.AuditHealth`, recorded in the trail as
``audit.seal_failed``; the first run that succeeds after it records
``audit.seal_recovered`` (also after a restart, if the newest such record is a failure),
so the console's alert inbox can tell (platform/audit/health.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from amanat.kernel.waiting import wait_for_stop
from amanat.platform.audit.domain import Actor, Seal
from amanat.platform.audit.health import AuditHealth
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
        health: AuditHealth | None = None,
    ) -> None:
        self._service = service
        self._health = health
        self._recovery_due = health is not None  # a previous process may have failed
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
            await self.tick()
            await wait_for_stop(stop, self._poll)

    async def tick(self) -> None:
        """One run of the loop: chain and seal if due, never raise."""
        try:
            seal = await self.run_once()
            if seal is not None:
                log.debug("audit_sealed", seq=seal.seq)
            if self._failing:
                log.info("audit_sealing_recovered")
                self._failing = False
                self._recovery_due = self._health is not None
            if self._recovery_due:
                await self._note_recovered()
        except Exception as exc:
            # Once per failure streak: it is retried twice a second.
            if not self._failing:
                log.exception("audit_seal_failed")
                await self._note_failure(exc)
            self._failing = True

    async def _note_failure(self, error: Exception) -> None:
        if self._health is None:
            return
        try:
            await self._health.note_failure(SEALER, error)
        except Exception:
            log.exception("audit_seal_failure_not_recorded")

    async def _note_recovered(self) -> None:
        assert self._health is not None
        try:
            await self._health.note_recovered(SEALER)
            self._recovery_due = False
        except Exception:
            log.exception("audit_seal_recovery_not_recorded")
