"""The services' ``TransactionFactory`` over :class:`Database`: repositories on one connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.adapters.db.audit_store import SqlAuditRepository
from amanat.adapters.db.identity_store import (
    SqlOperatorRepository,
    SqlPartnerRepository,
    SqlTokenRepository,
)
from amanat.adapters.db.keys_store import SqlSigningKeyRepository
from amanat.adapters.db.uow import Database


class SqlTransaction:
    def __init__(self, conn: AsyncConnection) -> None:
        self.connection = conn
        self.partners = SqlPartnerRepository(conn)
        self.tokens = SqlTokenRepository(conn)
        self.operators = SqlOperatorRepository(conn)
        self.audit = SqlAuditRepository(conn)
        self.signing_keys = SqlSigningKeyRepository(conn)


class SqlTransactions:
    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqlTransaction]:
        async with self.db.write() as conn:
            yield SqlTransaction(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlTransaction]:
        async with self.db.read() as conn:
            yield SqlTransaction(conn)
