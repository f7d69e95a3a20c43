"""The outbox: jobs that must follow a committed state change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from amanat.platform.unit_of_work.ports import Transaction


@dataclass(frozen=True, slots=True)
class OutboxJob:
    id: int
    kind: str
    subject_id: str
    payload: dict[str, Any]
    attempts: int


class OutboxRepository(Protocol):
    async def enqueue(
        self, kind: str, subject_id: str, payload: dict[str, Any], run_at: datetime
    ) -> None: ...
    async def claim(
        self, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[OutboxJob]: ...
    async def finish(self, job_id: int, owner: str, now: datetime) -> None: ...
    async def retry(
        self,
        job_id: int,
        owner: str,
        run_at: datetime,
        error: str,
        now: datetime,
        *,
        dead: bool = False,
    ) -> None: ...
    async def pending_count(self, kind: str | None = None) -> int: ...


class LeaseRepository(Protocol):
    async def acquire(self, name: str, owner: str, now: datetime, until: datetime) -> bool: ...
    async def finish(
        self, name: str, owner: str, now: datetime, next_free: datetime, outcome: str
    ) -> None: ...


class OutboxTx(Transaction, Protocol):
    """What a use case that queues follow-up jobs needs."""

    @property
    def outbox(self) -> OutboxRepository: ...


class JobsTx(OutboxTx, Protocol):
    """What the job runtime and the scheduler need."""

    @property
    def leases(self) -> LeaseRepository: ...
