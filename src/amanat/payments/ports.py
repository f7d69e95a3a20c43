"""What payments' services need: the payment, ledger and rail-event stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from amanat.kernel.pagination import Page
from amanat.payments.domain.ledger import Journal, Shard
from amanat.payments.domain.payments import Payment
from amanat.platform.idempotency.ports import IdempotencyTx
from amanat.platform.jobs.ports import OutboxTx
from amanat.platform.protection.ports import ProtectionTx


class PaymentRepository(Protocol):
    async def add(
        self, payment: Payment, *, client_id: str | None, parent_id: str | None = None
    ) -> None: ...
    async def add_many(self, created: list[tuple[Payment, str | None, str, datetime]]) -> None:
        """New payments ``(payment, client_id, job kind, job run_at)``, their "created"
        transitions and first outbox jobs, set-based."""
        ...

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None: ...
    async def save_transition(self, before: Payment, after: Payment, cause: str) -> bool: ...
    async def transitions(self, payment_id: str) -> list[dict[str, Any]]: ...
    async def mark_submitted(self, payment_id: str, at: datetime) -> bool: ...
    async def add_refunded(
        self, payment_id: str, amount: int, at: datetime, *, reserved: int = 0
    ) -> bool: ...
    async def return_refunded(self, payment_id: str, amount: int, at: datetime) -> None: ...
    async def list(
        self,
        partner_id: str,
        *,
        types: list[str],
        limit: int,
        before: tuple[datetime, str] | None,
        status: str | None,
        created_gte: datetime | None,
        created_lt: datetime | None,
        parent_id: str | None = None,
    ) -> Page[Payment]: ...
    async def in_flight_incoming(self, partner_id: str) -> int: ...
    async def unresolved(self, older_than: datetime) -> int: ...
    async def stranded(self, older_than: datetime, limit: int) -> tuple[Payment, ...]:
        """Payments not final, unchanged since ``older_than``, with no pending outbox job."""
        ...


class LockedShards(Protocol):
    """Balance shards locked for a batch: perhaps only those free at the time
    (``complete`` False), until :meth:`wait_for_all` locks every one."""

    shards: dict[str, list[Shard]]

    @property
    def complete(self) -> bool: ...
    async def wait_for_all(self) -> dict[str, list[Shard]]: ...


class LedgerRepository(Protocol):
    async def ensure_account(
        self, account_id: str, kind: str, currency: str, shards: int, at: datetime
    ) -> tuple[int, bool]: ...
    async def reserve(
        self,
        account_id: str,
        hold_id: str,
        amount: int,
        currency: str,
        at: datetime,
        *,
        shard_count: int | None = None,
    ) -> int: ...
    async def shard_counts(self, account_ids: Sequence[str]) -> dict[str, int]:
        """The number of balance shards of each of these accounts that exists."""
        ...

    async def lock_shards(self, account_ids: list[str]) -> dict[str, list[Shard]]: ...
    async def lock_free_shards(self, shard_counts: dict[str, int]) -> LockedShards:
        """The shards of these accounts (``account: its number of shards``) that nobody
        else holds, locked without waiting."""
        ...

    async def hold_many(
        self,
        holds_: list[tuple[str, str, int, int, str, datetime]],
        shards: list[tuple[str, Shard]],
    ) -> None: ...
    async def close_hold(self, hold_id: str, *, post: bool, at: datetime) -> int | None: ...
    async def credit(
        self, account_id: str, amount: int, *, spread: bool, shard_count: int | None = None
    ) -> None: ...
    async def post(self, journal: Journal, at: datetime) -> None: ...
    async def balance(self, account_id: str) -> tuple[int, int]: ...
    async def movements(
        self, account_id: str, after: datetime, until: datetime
    ) -> list[tuple[str, str, str, int, str, datetime]]: ...
    async def posted_total(self, account_id: str, until: datetime) -> int: ...
    async def has_account(self, account_id: str) -> bool: ...
    async def accounts_moved(self, prefix: str, after: datetime, until: datetime) -> list[str]: ...
    async def check(self) -> list[str]: ...


class RailEventRepository(Protocol):
    async def remember(
        self,
        event_id: str,
        end_to_end_id: str,
        status: str,
        sequence: int,
        outcome: str,
        at: datetime,
    ) -> bool: ...
    async def reject(
        self, rail: str, reason: str, source_ip: str | None, body_sha256: str, at: datetime
    ) -> None: ...


class PaymentsTx(ProtectionTx, OutboxTx, Protocol):
    @property
    def payments(self) -> PaymentRepository: ...
    @property
    def ledger(self) -> LedgerRepository: ...
    @property
    def rail_events(self) -> RailEventRepository: ...


class PartnerLimits(Protocol):
    """A partner's own per-transaction limit (identity keeps it); None: the default."""

    async def per_transaction_limit(self, partner_id: str) -> int | None: ...


class PayoutBatchTx(PaymentsTx, IdempotencyTx, Protocol):
    """A batch of payouts commits their idempotency keys with them."""


class DisputeClaims(Protocol):
    """What disputes take of a payment (disputes' DisputeClaims): the amounts of its open
    disputes and of those whose money went back to the payer. A refund may only return
    what neither refunds nor disputes have taken, or the payer would be paid twice."""

    async def claimed(self, tx: Any, payment_id: str) -> int:
        """Read in the caller's unit of work ``tx``, after the payment's row is locked."""
        ...


class PayeeCheckRecords(Protocol):
    """Confirmation of payee, as payouts consult it for partners that require a recent
    check (open banking's PayeeCheckService)."""

    async def confirmed_recently(self, partner_id: str, field: str, value: str) -> bool: ...
