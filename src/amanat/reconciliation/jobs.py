"""The worker's part: close each settlement cycle once its cut-off has passed, and match
again what is still open (a payment that settled after its report arrived)."""

from __future__ import annotations

from amanat.platform.audit.domain import SYSTEM
from amanat.reconciliation.domain.sources import SOURCES
from amanat.reconciliation.services.reconciliation import ReconciliationService
from amanat.reconciliation.services.settlements import SettlementService


async def close_due_cycles(service: SettlementService) -> str:
    closed = await service.close_due(SYSTEM)
    if not closed:
        return "no cycle due"
    return ", ".join(
        f"closed {c.business_date.isoformat()} ({len(c.settlements)} settlements)" for c in closed
    )


async def rematch_sources(service: ReconciliationService) -> str:
    done = []
    for name in SOURCES:
        matched, opened, cleared = await service.rematch(SYSTEM, name)
        if matched or opened or cleared:
            done.append(f"{name}: {matched} matched, {opened} opened, {cleared} cleared")
    return "; ".join(done) or "nothing new"
