"""The unit of work over :class:`Database`: repositories on one connection, domain events
handled before commit.

A transaction offers each registered repository as ``tx.<name>`` and builds it on the
transaction's connection the first time a use case touches it, so a use case pays for the
repositories it uses and no more. Each service sees the transaction through its own narrow
protocol (``PaymentsTx``, ``WebhooksTx``...): which repositories a capability may touch is
written in its ports, not in this class.

A use case may ``tx.publish(event)``: before the transaction commits, every handler
subscribed to that event's type runs in the same transaction (cosmicpython's message bus,
kept in one database transaction), so a payment's change and the partner event another
capability derives from it commit together or not at all, and the publisher does not know
who listens. The audit records go next: one INSERT into the inbox the sequencer chains.
Last, a repository that keeps writes back until commit (``flush_at_commit``, as the
ledger does with its balance shards, to hold their row locks for as short a time as it
can) applies them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.audit.store import SqlAuditRepository
from amanat.platform.db.database import Database

EventHandler = Callable[[Any, "SqlTransaction"], Awaitable[None]]
MAX_EVENT_ROUNDS = 16
"""Handlers may publish in turn; a chain longer than this is a loop, a programming error."""


class SqlTransaction:
    def __init__(self, conn: AsyncConnection, repositories: Mapping[str, Callable[[Any], object]]):
        self.connection = conn
        self.audit = SqlAuditRepository(conn)
        self._factories = repositories
        self._published: list[object] = []

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not yet attributes: build the repository once.
        factories = self.__dict__.get("_factories")
        if factories is None or name not in factories:
            raise AttributeError(name)
        repository = factories[name](self.connection)
        setattr(self, name, repository)
        return repository

    def publish(self, event: object) -> None:
        """Hand ``event`` to its subscribers before this transaction commits."""
        self._published.append(event)

    def _take_published(self) -> list[object]:
        events, self._published = self._published, []
        return events

    def _built(self) -> list[object]:
        """The repositories this transaction has used (built on first touch)."""
        return [self.__dict__[name] for name in self._factories if name in self.__dict__]

    def _writes_waiting(self) -> bool:
        return any(getattr(repository, "writes_waiting", False) for repository in self._built())

    async def _finish(self) -> None:
        """The work that runs just before COMMIT, in this order."""
        await self.audit.flush()  # one INSERT into the inbox
        for repository in self._built():
            flush = getattr(repository, "flush_at_commit", None)
            if flush is not None:
                await flush()


_ambient: ContextVar[SqlTransaction | None] = ContextVar("amanat_ambient_tx", default=None)


class SqlTransactions:
    """Opens transactions; inside :meth:`atomic` every use case joins the one transaction,
    so an idempotency record and the business change it guards commit together."""

    def __init__(
        self, db: Database, repositories: Mapping[str, Callable[[Any], object]] | None = None
    ) -> None:
        self.db = db
        self._repositories: dict[str, Callable[[Any], object]] = dict(repositories or {})
        self._handlers: dict[type, list[EventHandler]] = {}

    def subscribe(self, event: type, handler: EventHandler) -> None:
        self._handlers.setdefault(event, []).append(handler)

    def write(self) -> AbstractAsyncContextManager[SqlTransaction]:
        return self._joined_or(self.db.write, transaction=True)

    def read(self) -> AbstractAsyncContextManager[SqlTransaction]:
        return self._joined_or(self.db.read, transaction=True)

    def lookup(self) -> AbstractAsyncContextManager[SqlTransaction]:
        # The connection is taken by the first statement: a read that another request's
        # statement answers (platform/db/keyed_read.py) holds none.
        return self._joined_or(self.db.deferred_lookup, transaction=False)

    def snapshot(self) -> AbstractAsyncContextManager[SqlTransaction]:
        return self._joined_or(self.db.snapshot, transaction=True)

    async def _handle_published(self, tx: SqlTransaction) -> None:
        for _ in range(MAX_EVENT_ROUNDS):
            events = tx._take_published()
            if not events:
                return
            for event in events:
                for handler in self._handlers.get(type(event), ()):
                    await handler(event, tx)
        raise RuntimeError("domain events kept publishing more events: a handler loop")

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
            tx = SqlTransaction(conn, self._repositories)
            yield tx
            if transaction:
                await self._handle_published(tx)
                await tx._finish()
            else:
                if tx._published:
                    raise RuntimeError("domain events need a transaction: use write()")
                if tx.audit.pending:
                    raise RuntimeError(
                        "audit records need a transaction: use write(), not lookup()"
                    )
                if tx._writes_waiting():
                    raise RuntimeError("deferred writes need a transaction: use write()")

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[SqlTransaction]:
        """One write transaction that nested ``write()``/``read()`` calls join."""
        if _ambient.get() is not None:
            raise RuntimeError("atomic() does not nest")
        async with self.db.write() as conn:
            tx = SqlTransaction(conn, self._repositories)
            token = _ambient.set(tx)
            try:
                yield tx
            finally:
                _ambient.reset(token)
            await self._handle_published(tx)
            await tx._finish()
