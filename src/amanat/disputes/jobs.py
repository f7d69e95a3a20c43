"""The worker's part: close ``lost`` every dispute nobody answered by its deadline."""

from __future__ import annotations

from amanat.disputes.services.disputes import DisputeService
from amanat.platform.audit.domain import SYSTEM


async def expire_overdue(service: DisputeService) -> str:
    expired = await service.expire_overdue(SYSTEM)
    if not expired:
        return "no dispute overdue"
    return f"closed {len(expired)} overdue disputes lost: {', '.join(expired[:20])}"
