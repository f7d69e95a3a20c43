"""The audit trail's read model, for the operator API and the console.

It chains what waits in the inbox before it reads, so an auditor sees every committed
record even when no worker runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from amanat.kernel.pagination import Page
from amanat.platform.audit.domain import AuditRecord
from amanat.platform.audit.ports import AuditTx
from amanat.platform.db.ports import TransactionFactory


class AuditQueries:
    def __init__(
        self,
        transactions: TransactionFactory[AuditTx],
        catch_up: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self._tx = transactions
        self._catch_up = catch_up

    async def records(
        self, limit: int, before_seq: int | None, action: str | None, target_id: str | None
    ) -> Page[AuditRecord]:
        """Newest first, keyset-paginated by sequence number."""
        if self._catch_up is not None and before_seq is None:
            await self._catch_up()  # the first page shows what has just committed
        async with self._tx.read() as tx:
            return await tx.audit.list_records(limit, before_seq, action, target_id)
