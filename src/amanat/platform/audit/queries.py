"""The audit trail's read model, for the operator API and the console."""

from __future__ import annotations

from amanat.kernel.pagination import Page
from amanat.platform.audit.domain import AuditRecord
from amanat.platform.audit.ports import AuditTx
from amanat.platform.db.ports import TransactionFactory


class AuditQueries:
    def __init__(self, transactions: TransactionFactory[AuditTx]) -> None:
        self._tx = transactions

    async def records(
        self, limit: int, before_seq: int | None, action: str | None, target_id: str | None
    ) -> Page[AuditRecord]:
        """Newest first, keyset-paginated by sequence number."""
        async with self._tx.read() as tx:
            return await tx.audit.list_records(limit, before_seq, action, target_id)
