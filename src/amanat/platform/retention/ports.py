"""The retention job's store."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from amanat.platform.unit_of_work.ports import Transaction


class RetentionRepository(Protocol):
    def supports(self, data_class: str) -> bool: ...
    async def due(
        self, data_class: str, cutoff: datetime, limit: int, exclude: set[str]
    ) -> list[str]: ...
    async def delete(self, data_class: str, ids: list[str]) -> int: ...
    async def held_ids(self, data_class: str) -> set[str]: ...
    async def add_hold(
        self,
        hold_id: str,
        data_class: str,
        target_id: str,
        reason: str,
        created_by: str,
        at: datetime,
    ) -> None: ...
    async def release_hold(self, data_class: str, target_id: str, at: datetime) -> int: ...


class RetentionTx(Transaction, Protocol):
    @property
    def retention(self) -> RetentionRepository: ...


class RetainedRows(Protocol):
    """The rows of one retention data class, on one connection."""

    async def due(self, cutoff: datetime, fetch: int) -> list[str]:
        """Up to ``fetch`` ids of rows older than ``cutoff`` (holds are filtered later)."""
        ...

    async def delete(self, ids: list[str]) -> int:
        """Remove those rows; how many went. A class erased otherwise (data subjects are
        crypto-shredded) raises ValueError."""
        ...
