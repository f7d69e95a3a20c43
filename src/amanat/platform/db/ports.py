"""The unit of work as services see it: a transaction factory over a transaction type.

Each capability names the repositories its use cases may touch in a protocol of its own
(``PaymentsTx``, ``WebhooksTx``...) extending
:class:`amanat.platform.unit_of_work.ports.Transaction`, and its services take a
``TransactionFactory`` of that protocol; the one SQL implementation offers every registered
repository (platform/unit_of_work/sql.py).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

TxT = TypeVar("TxT", covariant=True)


class TransactionFactory(Protocol[TxT]):
    def write(self) -> AbstractAsyncContextManager[TxT]: ...
    def read(self) -> AbstractAsyncContextManager[TxT]: ...

    def lookup(self) -> AbstractAsyncContextManager[TxT]:
        """For one read statement: no BEGIN and COMMIT, two round trips fewer than
        :meth:`read`. Never for writes or audit records, nor for several statements that
        must see one snapshot."""
        ...

    def snapshot(self) -> AbstractAsyncContextManager[TxT]:
        """A read-only transaction whose every statement sees one snapshot (PostgreSQL:
        REPEATABLE READ), for reads that must agree with each other however long they take."""
        ...


class UnitOfWork(TransactionFactory[TxT], Protocol):
    def atomic(self) -> AbstractAsyncContextManager[TxT]:
        """One write transaction that the use cases called inside it join (they open
        their own ``write()`` and get this one)."""
        ...
