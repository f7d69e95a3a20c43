"""Writing to the audit trail, always inside the caller's transaction.

Records are appended as the transaction's last statements (see platform/audit/store.py),
so they commit or roll back with the change they describe while the chain's head is
locked only for a moment.
"""

from __future__ import annotations

from typing import Any

from amanat.kernel.clock import Clock
from amanat.kernel.ids import new_id
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.ports import AuditTx


async def record(
    tx: AuditTx,
    clock: Clock,
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Record one audit entry; it commits or rolls back with the change it describes."""
    await tx.audit.append_at_commit(
        record_id=new_id("audit"),
        occurred_at=clock.now(),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        payload=payload or {},
    )
