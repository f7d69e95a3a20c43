"""Stored idempotent responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from amanat.platform.unit_of_work.ports import Transaction


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    client_id: str
    key: str
    request_hash: str
    method: str
    path: str
    status: str
    response_status: int | None
    response_body: str | None
    response_headers: dict[str, str] | None
    created_at: datetime
    locked_until: datetime | None
    expires_at: datetime


class IdempotencyRepository(Protocol):
    async def try_insert(self, record: IdempotencyRecord) -> bool: ...
    async def get(
        self, client_id: str, key: str, *, for_update: bool
    ) -> IdempotencyRecord | None: ...
    async def take_over(
        self, client_id: str, key: str, expected_lock: datetime | None, new_lock: datetime
    ) -> bool: ...
    async def complete(
        self,
        client_id: str,
        key: str,
        status: int,
        body: str,
        headers: dict[str, str],
        *,
        resource_id: str | None = None,
    ) -> None:
        """Store the key's answer; ``resource_id``: what the request created or acted on
        (a payment id…), for the timeline of that object."""
        ...

    async def release(self, client_id: str, key: str) -> None: ...
    async def claim_many(
        self, claims: list[tuple[IdempotencyRecord, int, str, str | None]]
    ) -> set[str]:
        """Claim many keys at once, each stored completed with its answer: ``(record,
        status, sealed body, resource id)``; the ids (``client_id:key``) that were free."""
        ...

    async def get_many(self, ids: list[str]) -> dict[str, IdempotencyRecord]:
        """The existing records among these ids (``client_id:key``), by id; no lock."""
        ...

    async def complete_many(self, answers: list[tuple[str, str, int, str, str | None]]) -> None:
        """``(client_id, key, status, sealed body, resource id)``: another answer for keys
        claimed by claim_many in this transaction."""
        ...

    async def delete_expired(self, client_id: str, key: str, now: datetime) -> bool:
        """Remove the key's record if it has expired; whether one was removed."""
        ...

    async def count_replays(self, counts: list[tuple[str, str, int, datetime]]) -> None:
        """Add to keys' replay counts: ``(client_id, key, replays, time of the last)``
        (``replays`` + n, ``last_replayed_at``), in the order given. A row another
        transaction holds may be skipped (PostgreSQL): counting is best effort."""
        ...


class IdempotencyTx(Transaction, Protocol):
    @property
    def idempotency(self) -> IdempotencyRepository: ...
