"""What disputes need from the world: their store, and the payments capability (the
disputed payment, and its ledger) reached only through its service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from amanat.disputes.domain.disputes import Dispute
from amanat.kernel.money import Money
from amanat.platform.protection.ports import ProtectionTx


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of a dispute's history: who moved it from what to what, and why."""

    dispute_id: str
    seq: int
    from_status: str | None  # None: the dispute was opened
    to_status: str
    action: str  # open, respond, accept, withdraw, win, lose, expire, evidence
    actor_type: str  # client, operator, rail, system
    actor_id: str
    request_id: str | None
    note: str | None
    journal_ids: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class EvidenceMeta:
    """An evidence file without its content."""

    id: str
    dispute_id: str
    partner_id: str
    content_type: str
    size: int
    sha256: str
    uploaded_by_type: str
    uploaded_by_id: str
    request_id: str | None
    created_at: datetime


class DisputeRepository(Protocol):
    async def lock(self, key: str) -> None:
        """Hold ``key`` until the transaction ends, across machines."""
        ...

    async def add(self, dispute: Dispute) -> None: ...
    async def get(self, dispute_id: str, *, for_update: bool = False) -> Dispute | None: ...
    async def by_rail_id(self, rail_dispute_id: str) -> Dispute | None: ...
    async def on_payment(self, payment_id: str) -> list[Dispute]: ...
    async def save(self, before: Dispute, after: Dispute) -> bool:
        """Write ``after`` if the stored dispute is still at ``before.version``."""
        ...

    async def add_transition(self, transition: Transition) -> None: ...
    async def next_seq(self, dispute_id: str) -> int: ...
    async def transitions(self, dispute_ids: Sequence[str]) -> list[Transition]: ...
    async def add_evidence(self, meta: EvidenceMeta, sealed_content: str) -> None: ...
    async def evidence(self, dispute_ids: Sequence[str]) -> list[EvidenceMeta]: ...
    async def evidence_count(self, dispute_id: str) -> int: ...
    async def evidence_file(self, evidence_id: str) -> tuple[EvidenceMeta, str] | None: ...
    async def page(
        self,
        *,
        partner_id: str | None,
        status: str | None,
        payment_id: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[Dispute]: ...
    async def overdue(self, today: date, limit: int) -> list[str]:
        """Ids of disputes awaiting a response whose respond-by date is before ``today``."""
        ...

    async def due_by(self, respond_by: date, decide_by: date, limit: int) -> list[Dispute]:
        """Disputes awaiting a response due by ``respond_by``, and disputes under review
        due by ``decide_by``, soonest first."""
        ...


class DisputesTx(ProtectionTx, Protocol):
    @property
    def disputes(self) -> DisputeRepository: ...


class DisputedPayment(Protocol):
    """A payment as disputes read it (payments' own type satisfies this)."""

    @property
    def id(self) -> str: ...
    @property
    def partner_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def amount(self) -> Money: ...
    @property
    def refunded_amount(self) -> int: ...


class Payments(Protocol):
    """The payments capability as disputes use it: its service, joined to the caller's unit
    of work (each call runs in the transaction the dispute's change runs in)."""

    async def current(self, payment_id: str) -> DisputedPayment | None: ...
    async def lock_for_dispute(self, payment_id: str) -> DisputedPayment | None:
        """The payment with its row locked until the unit of work ends (refunds of it
        wait)."""
        ...

    async def hold_for_dispute(
        self, partner_id: str, dispute_id: str, amount: int, currency: str
    ) -> tuple[int, str | None]: ...
    async def release_dispute_hold(
        self, partner_id: str, dispute_id: str, amount: int, currency: str
    ) -> str: ...
    async def reverse_dispute_hold(
        self, partner_id: str, dispute_id: str, amount: int, currency: str
    ) -> str: ...
    async def return_disputed_payout(
        self, partner_id: str, dispute_id: str, amount: int, currency: str
    ) -> str: ...
