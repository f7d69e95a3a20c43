"""The audit trail's store, the seal signer and the witnesses outside the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from amanat.kernel.pagination import Page
from amanat.platform.audit.domain import Actor, AuditRecord, Seal, StoredRecord


class AuditRepository(Protocol):
    async def append(
        self,
        *,
        record_id: str,
        occurred_at: datetime,
        actor: Actor,
        action: str,
        target_type: str | None,
        target_id: str | None,
        payload: dict[str, Any],
    ) -> AuditRecord: ...

    async def append_at_commit(
        self,
        *,
        record_id: str,
        occurred_at: datetime,
        actor: Actor,
        action: str,
        target_type: str | None,
        target_id: str | None,
        payload: dict[str, Any],
    ) -> None: ...
    async def flush(self) -> None: ...
    async def any_pending(self) -> bool: ...
    async def chain_pending(self, limit: int) -> int: ...
    async def list_records(
        self, limit: int, before_seq: int | None, action: str | None, target_id: str | None
    ) -> Page[AuditRecord]: ...

    async def stored_records(self, after_seq: int, limit: int) -> list[StoredRecord]: ...
    async def head(self, *, lock: bool = False) -> tuple[int, str]: ...
    async def add_seal(self, seal: Seal) -> None: ...
    async def seals(self, after_seq: int = 0, up_to: int | None = None) -> list[Seal]: ...
    async def latest_seal(self) -> Seal | None: ...


class SealSigner(Protocol):
    @property
    def public_key(self) -> str: ...
    def sign(self, message: bytes) -> str: ...
    def verify(self, public_key: str, message: bytes, signature: str) -> bool: ...


class SealWitness(Protocol):
    """A place outside the database that keeps a copy of every audit seal."""

    name: str

    async def published_up_to(self) -> int | None:
        """The newest seal sequence it holds; None when it cannot tell (send only new)."""
        ...

    async def publish(self, seals: list[Seal]) -> None: ...


class AuditTx(Protocol):
    """A transaction that can carry audit records (they commit with it)."""

    @property
    def audit(self) -> AuditRepository: ...
