"""What settlement and reconciliation need from the world: their stores (as rows they
read and write) and the payments capability's ledger, reached only through its service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from amanat.platform.audit.domain import Actor
from amanat.platform.unit_of_work.ports import Transaction
from amanat.reconciliation.domain.records import ExternalRecord, InternalItem, Match
from amanat.reconciliation.domain.settlement import SettlementLine


@dataclass(frozen=True, slots=True)
class CycleRow:
    rail: str
    business_date: date
    window_start: datetime
    window_end: datetime
    settlements: int
    closed_by: str
    closed_at: datetime


@dataclass(frozen=True, slots=True)
class SettlementRow:
    id: str
    partner_id: str
    rail: str
    business_date: date
    currency: str
    status: str
    window_start: datetime
    window_end: datetime
    opening_balance: int
    closing_balance: int
    gross_collections: int
    refunds: int
    payouts: int
    fees: int
    fees_charged: int
    fees_carried_forward: int
    dispute_holds: int
    dispute_reversals: int
    adjustments: int
    other: int
    net: int
    line_count: int
    fee_journal_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ImportRow:
    id: str
    source: str
    format: str
    file_name: str
    sha256: str
    size: int
    records: int
    new_records: int
    matched: int
    breaks_opened: int
    breaks_cleared: int
    as_of: date | None
    imported_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BreakRow:
    id: str
    source: str
    kind: str
    status: str
    amount: int
    currency: str
    internal_id: str | None
    external_id: str | None
    partner_id: str | None
    differences: list[list[str | None]]
    suggested_cause: str
    import_id: str | None
    opened_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    reason: str | None
    journal_id: str | None
    match_id: str | None
    version: int


class SettlementRepository(Protocol):
    async def lock(self, key: str) -> None: ...
    async def lock_cycle(self, rail: str, business_date: date) -> CycleRow | None: ...
    async def add_cycle(self, cycle: CycleRow) -> bool: ...
    async def last_cycle(self, rail: str) -> date | None: ...
    async def previous(
        self, partner_id: str, rail: str, currency: str, before: date
    ) -> SettlementRow | None: ...
    async def fees_charged_after(self, partner_id: str, moment: datetime) -> int: ...
    async def add(self, settlement: SettlementRow, lines: Sequence[SettlementLine]) -> None: ...
    async def get(self, settlement_id: str) -> SettlementRow | None: ...
    async def page(
        self,
        partner_id: str | None,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        business_date: date | None = None,
    ) -> list[SettlementRow]: ...
    async def lines(
        self, settlement_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[SettlementLine]: ...


class ReconciliationRepository(Protocol):
    async def lock(self, key: str) -> None: ...
    async def known_since(self, name: str) -> date | None: ...
    async def source_since(self, name: str, first_date: date, at: datetime) -> date: ...
    async def latest_as_of(self, source: str) -> date | None: ...
    async def import_of(self, source: str, sha256: str) -> ImportRow | None: ...
    async def add_import(self, row: ImportRow) -> bool: ...
    async def get_import(self, import_id: str) -> ImportRow | None: ...
    async def imports(
        self, *, limit: int, before: tuple[datetime, str] | None
    ) -> list[ImportRow]: ...
    async def known_external(self, source: str, external_ids: Sequence[str]) -> set[str]: ...
    async def add_external(
        self, source: str, import_id: str, records: Sequence[ExternalRecord], at: datetime
    ) -> None: ...
    async def open_external(self, source: str) -> list[ExternalRecord]: ...
    async def external(self, source: str, external_id: str) -> ExternalRecord | None: ...
    async def external_is_open(self, source: str, external_id: str) -> bool: ...
    async def consume(self, source: str, external_ids: Sequence[str], match_id: str) -> int: ...
    async def add_internal(self, item: InternalItem, kind: str, settled_at: datetime) -> None: ...
    async def open_internal(self, source: str, since: date) -> list[InternalItem]: ...
    async def internal(self, source: str, payment_ids: Sequence[str]) -> list[InternalItem]: ...
    async def save_progress(self, source: str, items: Sequence[InternalItem]) -> None: ...
    async def add_match(
        self,
        match_id: str,
        source: str,
        import_id: str | None,
        match: Match,
        created_by: str,
        at: datetime,
    ) -> None: ...
    async def matches(
        self, *, source: str | None, import_id: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]: ...
    async def open_breaks(self, source: str) -> list[BreakRow]: ...
    async def add_breaks(self, rows: Sequence[BreakRow]) -> None: ...
    async def open_break_counts(self, source: str) -> dict[str, int]: ...
    async def get_break(self, break_id: str, *, for_update: bool = False) -> BreakRow | None: ...
    async def close_break(self, before: BreakRow, after: BreakRow) -> bool: ...
    async def breaks(
        self,
        *,
        status: str | None,
        kind: str | None,
        source: str | None,
        internal_id: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[BreakRow]: ...


class ReconciliationTx(Transaction, Protocol):
    @property
    def settlements(self) -> SettlementRepository: ...

    @property
    def recon(self) -> ReconciliationRepository: ...


class LedgerMovementView(Protocol):
    @property
    def journal_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def at(self) -> datetime: ...


class Ledger(Protocol):
    """The payments capability's ledger, as settlement and reconciliation use it (its
    service, joined to the caller's unit of work)."""

    async def partners_with_movements(self, after: datetime, until: datetime) -> Sequence[str]: ...
    async def ledger_movements(
        self, partner_id: str, after: datetime, until: datetime
    ) -> Sequence[LedgerMovementView]: ...
    async def balance_as_of(self, partner_id: str, moment: datetime) -> int: ...
    async def has_balance(self, partner_id: str) -> bool: ...
    async def charge_fee(
        self, actor: Actor, partner_id: str, amount: int, currency: str, settlement_id: str
    ) -> tuple[int, str | None]: ...
    async def post_bank_charges(self, amount: int, currency: str, match_id: str) -> str: ...
    async def post_reconciliation_difference(
        self, delta: int, currency: str, break_id: str, *, charged_to: str | None
    ) -> str: ...
