"""The services' ``TransactionFactory`` over :class:`Database`: repositories on one connection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.identity.store import (
    SqlOperatorRepository,
    SqlPartnerRepository,
    SqlTokenRepository,
)
from amanat.payments.store import (
    SqlLedgerRepository,
    SqlOutboxRepository,
    SqlPaymentRepository,
    SqlRailEventRepository,
)
from amanat.platform.audit.store import SqlAuditRepository
from amanat.platform.db.database import Database
from amanat.platform.idempotency.store import SqlIdempotencyRepository
from amanat.platform.jobs.leases import SqlLeaseRepository
from amanat.platform.keys.store import SqlSigningKeyRepository
from amanat.platform.protection.store import SqlDataKeyRepository, SqlSubjectRepository
from amanat.platform.retention.store import SqlRetentionRepository
from amanat.webhooks.store import SqlEventRepository, SqlWebhookRepository


class SqlTransaction:
    def __init__(self, conn: AsyncConnection) -> None:
        self.connection = conn
        self.partners = SqlPartnerRepository(conn)
        self.tokens = SqlTokenRepository(conn)
        self.operators = SqlOperatorRepository(conn)
        self.audit = SqlAuditRepository(conn)
        self.signing_keys = SqlSigningKeyRepository(conn)
        self.data_keys = SqlDataKeyRepository(conn)
        self.subjects = SqlSubjectRepository(conn)
        self.retention = SqlRetentionRepository(conn)
        self.idempotency = SqlIdempotencyRepository(conn)
        self.leases = SqlLeaseRepository(conn)
        self.payments = SqlPaymentRepository(conn)
        self.ledger = SqlLedgerRepository(conn)
        self.outbox = SqlOutboxRepository(conn)
        self.rail_events = SqlRailEventRepository(conn)
        self.events = SqlEventRepository(conn)
        self.webhooks = SqlWebhookRepository(conn)


_ambient: ContextVar[SqlTransaction | None] = ContextVar("amanat_ambient_tx", default=None)


class SqlTransactions:
    """Opens transactions; inside :meth:`atomic` every use case joins the one transaction,
    so an idempotency record and the business change it guards commit together."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def write(self) -> AbstractAsyncContextManager[SqlTransaction]:
        return self._joined_or(self.db.write, transaction=True)

    def read(self) -> AbstractAsyncContextManager[SqlTransaction]:
        return self._joined_or(self.db.read, transaction=True)

    def lookup(self) -> AbstractAsyncContextManager[SqlTransaction]:
        return self._joined_or(self.db.lookup, transaction=False)

    def snapshot(self) -> AbstractAsyncContextManager[SqlTransaction]:
        return self._joined_or(self.db.snapshot, transaction=True)

    @asynccontextmanager
    async def _joined_or(
        self,
        connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        *,
        transaction: bool,
    ) -> AsyncIterator[SqlTransaction]:
        """The ambient transaction of :meth:`atomic` if there is one, else a new one."""
        ambient = _ambient.get()
        if ambient is not None:
            yield ambient
            return
        async with connect() as conn:
            tx = SqlTransaction(conn)
            yield tx
            if transaction:
                await tx.audit.flush()  # last, so the audit head is locked only briefly
            elif tx.audit.pending:
                raise RuntimeError("audit records need a transaction: use write(), not lookup()")

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[SqlTransaction]:
        """One write transaction that nested ``write()``/``read()`` calls join."""
        if _ambient.get() is not None:
            raise RuntimeError("atomic() does not nest")
        async with self.db.write() as conn:
            tx = SqlTransaction(conn)
            token = _ambient.set(tx)
            try:
                yield tx
            finally:
                _ambient.reset(token)
            await tx.audit.flush()
