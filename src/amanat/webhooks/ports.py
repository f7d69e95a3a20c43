"""What webhooks' services need: the event and endpoint/delivery stores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from amanat.kernel.pagination import Page
from amanat.platform.protection.ports import ProtectionTx
from amanat.webhooks.domain.endpoints import Attempt, Delivery, WebhookEndpoint


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event row: ``sealed_data`` is the object's JSON, encrypted."""

    id: str
    partner_id: str
    type: str
    object_type: str
    object_id: str
    object_version: int | None
    created_at: datetime
    sealed_data: str


@dataclass(frozen=True, slots=True)
class EventFilter:
    types: list[str] | None = None
    object_id: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


class EventRepository(Protocol):
    async def add(self, event: StoredEvent) -> None: ...
    async def get(self, event_id: str) -> StoredEvent | None: ...
    async def get_many(self, event_ids: list[str]) -> list[StoredEvent]: ...
    async def newest_first(
        self,
        partner_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        where: EventFilter,
    ) -> Page[StoredEvent]: ...
    async def oldest_first(
        self, partner_id: str, *, where: EventFilter, limit: int
    ) -> list[StoredEvent]: ...


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    status: str | None = None
    event_type: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


class WebhookRepository(Protocol):
    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def get_endpoint(
        self, endpoint_id: str, *, for_update: bool = False
    ) -> WebhookEndpoint | None: ...
    async def list_endpoints(
        self, partner_id: str, *, limit: int, before: tuple[datetime, str] | None
    ) -> Page[WebhookEndpoint]: ...
    async def subscribed(
        self, partner_id: str, event_type: str, *, include_disabled: bool = False
    ) -> list[WebhookEndpoint]: ...
    async def drop_held(self, endpoint_id: str, older_than: datetime, at: datetime) -> int:
        """Fail the endpoint's pending deliveries queued before ``older_than``."""
        ...

    async def drop_held_of_disabled(self, older_than: datetime, at: datetime) -> int:
        """The same for every endpoint that is disabled now."""
        ...

    async def save_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def delete_endpoint(self, endpoint_id: str, at: datetime) -> None: ...
    async def add_deliveries(self, deliveries: list[Delivery]) -> None: ...
    async def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        per_endpoint: int,
        exclude_endpoints: set[str],
    ) -> list[Delivery]: ...
    async def settle(self, delivery: Delivery, attempt: Attempt, owner: str) -> bool: ...
    async def settle_many(self, settled: list[tuple[Delivery, Attempt]], owner: str) -> set[str]:
        """Record a batch of attempts; the ids of the deliveries ``owner`` still held."""
        ...

    async def release(self, delivery_id: str, owner: str) -> None: ...
    async def release_many(self, delivery_ids: list[str], owner: str) -> None: ...
    async def endpoints(self, endpoint_ids: list[str]) -> dict[str, WebhookEndpoint]: ...
    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...
    async def list_deliveries(
        self,
        endpoint_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        where: DeliveryFilter,
    ) -> Page[Delivery]: ...
    async def attempts(self, delivery_ids: list[str]) -> dict[str, list[Attempt]]: ...
    async def any_due(self, now: datetime) -> bool: ...
    async def pending_count(self) -> int: ...


class WebhooksTx(ProtectionTx, Protocol):
    @property
    def events(self) -> EventRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...
