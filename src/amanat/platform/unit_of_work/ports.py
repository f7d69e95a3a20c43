"""What every transaction offers a use case, whatever capability it belongs to."""

from __future__ import annotations

from typing import Protocol

from amanat.platform.audit.ports import AuditTx


class Transaction(AuditTx, Protocol):
    """What every transaction offers: the audit trail and publishing domain events."""

    def publish(self, event: object) -> None:
        """Hand ``event`` to its subscribers, which run in this transaction before it
        commits."""
        ...
