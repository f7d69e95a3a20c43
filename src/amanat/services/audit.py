"""Writing to the audit trail, always inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from amanat.domain.audit import Actor, AuditRecord
from amanat.domain.clock import Clock
from amanat.domain.ids import new_id
from amanat.services.ports import Transaction


async def record(
    tx: Transaction,
    clock: Clock,
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one audit record; it commits or rolls back with the change it describes."""
    return await tx.audit.append(
        record_id=new_id("audit"),
        occurred_at=clock.now(),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        payload=payload or {},
    )
