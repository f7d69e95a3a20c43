"""Webhooks as operations see them: which endpoints fail, how big and how old the queue
of undelivered deliveries is, which endpoints are disabled.

Read by the console's operations dashboard and the webhooks alert source; the SQL lives in
:mod:`amanat.webhooks.operations_store` (``tx.webhook_operations``). An endpoint is shown
by its host only: a URL's path or query can carry a partner's token.

Definitions:

- a *failed attempt* is one that got no 2xx answer (an error, a timeout, any other status);
  a delivery *gave up* when its retry schedule ran out (or it was dropped) in the window;
- the *backlog* is every delivery not yet delivered or given up (``pending``), held ones
  for disabled endpoints included; at a past instant, those created by then and not yet
  settled then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from amanat.kernel.clock import Clock
from amanat.platform.db.ports import TransactionFactory


def host_of(url: str) -> str:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    return host or "unreadable URL"


@dataclass(frozen=True, slots=True)
class EndpointFailures:
    endpoint_id: str
    partner_id: str
    host: str
    enabled: bool
    attempts: int
    failed_attempts: int
    gave_up: int

    @property
    def rate(self) -> float:
        return self.failed_attempts / self.attempts if self.attempts else 0.0


@dataclass(frozen=True, slots=True)
class OldestDelivery:
    delivery_id: str
    endpoint_id: str
    host: str
    event_type: str
    object_id: str | None
    """What the event is about (a payment): its timeline is the one to open."""
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: int
    held: int
    """Of ``pending``: waiting for a disabled endpoint."""
    oldest: OldestDelivery | None
    """The oldest for an enabled endpoint (held ones wait by design)."""


@dataclass(frozen=True, slots=True)
class EndpointBacklog:
    endpoint_id: str
    partner_id: str
    host: str
    pending: int
    oldest_at: datetime


@dataclass(frozen=True, slots=True)
class DisabledEndpoint:
    endpoint_id: str
    partner_id: str
    host: str
    reason: str | None
    since: datetime
    held: int
    failing_since: datetime | None

    @property
    def by_partner(self) -> bool:
        return self.reason == "disabled by you"


class WebhookOperationsRows(Protocol):
    """What the queries need of the database (operations_store.py)."""

    async def endpoint_failures(
        self, since: datetime, until: datetime
    ) -> list[EndpointFailures]: ...
    async def backlog(self) -> Backlog: ...
    async def pending_at(self, points: Sequence[datetime]) -> list[int]: ...
    async def aged_backlogs(self, before: datetime, limit: int) -> list[EndpointBacklog]: ...
    async def disabled(self, limit: int) -> list[DisabledEndpoint]: ...


class WebhookOperationsTx(Protocol):
    @property
    def webhook_operations(self) -> WebhookOperationsRows: ...


class WebhookOperationsQueries:
    def __init__(self, transactions: TransactionFactory[WebhookOperationsTx], clock: Clock) -> None:
        self._tx = transactions
        self._clock = clock

    async def failing_endpoints(self, since: datetime, until: datetime) -> list[EndpointFailures]:
        """Endpoints with a failed attempt or a delivery given up in the window, worst first."""
        async with self._tx.read() as tx:
            rows = await tx.webhook_operations.endpoint_failures(since, until)
        failing = [e for e in rows if e.failed_attempts or e.gave_up]
        return sorted(failing, key=lambda e: (-e.gave_up, -e.failed_attempts, e.host))

    async def backlog(self) -> Backlog:
        async with self._tx.read() as tx:
            return await tx.webhook_operations.backlog()

    async def backlog_series(self, points: Sequence[datetime]) -> list[tuple[datetime, int]]:
        """Undelivered deliveries at each instant of ``points``."""
        async with self._tx.read() as tx:
            values = await tx.webhook_operations.pending_at(points)
        return list(zip(points, values, strict=True))

    async def aged_backlogs(
        self, now: datetime, older_than: timedelta, limit: int = 100
    ) -> list[EndpointBacklog]:
        """Enabled endpoints whose oldest undelivered delivery is older than ``older_than``,
        oldest first."""
        async with self._tx.read() as tx:
            return await tx.webhook_operations.aged_backlogs(now - older_than, limit)

    async def disabled_endpoints(self, limit: int = 100) -> list[DisabledEndpoint]:
        """Disabled (not deleted) endpoints, longest disabled first."""
        async with self._tx.read() as tx:
            return await tx.webhook_operations.disabled(limit)
