"""Composition root: the list of capabilities, and the process's container built from them.

Each capability package has a ``wiring`` module whose ``include(registry)`` declares what
it brings (services, repositories, tables, routes, jobs, events, problem codes). Adding a
capability is adding its package and one line to ``CAPABILITIES``.

Everything with a lifetime (engine, HTTP clients, rate-limit storage) is created here once
per process; a service is built the first time something asks for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from amanat.auth import wiring as auth_wiring
from amanat.console import wiring as console_wiring
from amanat.customers import wiring as customers_wiring
from amanat.disputes import wiring as disputes_wiring
from amanat.identity import wiring as identity_wiring
from amanat.kernel.clock import Clock, SystemClock
from amanat.openbanking import wiring as openbanking_wiring
from amanat.payments import wiring as payments_wiring
from amanat.platform import wiring as platform_wiring
from amanat.platform.db.database import Database
from amanat.platform.db.engine import create_engine
from amanat.platform.http.problems import register as register_problem
from amanat.platform.registry import (
    EventHandler,
    PeriodicJob,
    Registry,
    ServiceContainer,
    Worker,
)
from amanat.platform.settings import Settings
from amanat.platform.unit_of_work.sql import SqlTransactions
from amanat.reconciliation import wiring as reconciliation_wiring
from amanat.webhooks import wiring as webhooks_wiring

if TYPE_CHECKING:
    import sqlalchemy as sa

    from amanat.auth.adapters.tokens import KeyRing
    from amanat.auth.service import OAuthService
    from amanat.auth.signing_keys import SigningKeyService
    from amanat.identity.services.operators import OperatorService
    from amanat.identity.services.partners import PartnerService
    from amanat.payments.rail import RailAdapter
    from amanat.payments.service import PaymentService
    from amanat.platform.audit.integrity import AuditIntegrityService
    from amanat.platform.jobs.outcomes import JobHandler
    from amanat.platform.jobs.runtime import JobRuntime
    from amanat.platform.protection.service import DataProtectionService
    from amanat.platform.ratelimit.limiter import RateLimiter
    from amanat.platform.retention.service import RetentionService
    from amanat.webhooks.events_service import EventService
    from amanat.webhooks.service import WebhookSender, WebhookService

T = TypeVar("T")

CAPABILITIES: tuple[ModuleType, ...] = (
    # Order is route order: FastAPI tries routes in turn, so the busiest paths come first.
    payments_wiring,
    auth_wiring,
    webhooks_wiring,
    customers_wiring,
    openbanking_wiring,
    reconciliation_wiring,
    disputes_wiring,
    identity_wiring,
    console_wiring,
)


@cache
def registry() -> Registry:
    """Every capability included once per process (include() only declares)."""
    collected = Registry()
    platform_wiring.include(collected)
    for capability in CAPABILITIES:
        capability.include(collected)
    for problem in collected.problems:
        register_problem(problem)
    for step in collected.on_collected:
        step(collected)
    return collected


def tables() -> list[sa.Table]:
    """Every table of every capability (all defined on the one shared metadata)."""
    return list(registry().tables)


class Container:
    """One process's services. Edges ask for what they need by type
    (:meth:`get`); the properties are shorthands for the CLI, workers and tests."""

    def __init__(self, services: ServiceContainer, db: Database) -> None:
        self.services = services
        self.registry = services.registry
        self.db = db

    def get(self, kind: type[T]) -> T:
        return self.services.get(kind)

    def built(self, kind: type[T]) -> T | None:
        return self.services.built(kind)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def transactions(self) -> SqlTransactions:
        return self.services.transactions

    @property
    def http(self) -> httpx.AsyncClient:
        return self.services.http

    # -- shorthands ---------------------------------------------------------------------

    @property
    def protection(self) -> DataProtectionService:
        from amanat.platform.protection.service import DataProtectionService

        return self.get(DataProtectionService)

    @property
    def audit_integrity(self) -> AuditIntegrityService:
        from amanat.platform.audit.integrity import AuditIntegrityService

        return self.get(AuditIntegrityService)

    @property
    def retention(self) -> RetentionService:
        from amanat.platform.retention.service import RetentionService

        return self.get(RetentionService)

    @property
    def rate_limiter(self) -> RateLimiter:
        from amanat.platform.ratelimit.limiter import RateLimiter

        return self.get(RateLimiter)

    @property
    def partners(self) -> PartnerService:
        from amanat.identity.services.partners import PartnerService

        return self.get(PartnerService)

    @property
    def operators(self) -> OperatorService:
        from amanat.identity.services.operators import OperatorService

        return self.get(OperatorService)

    @property
    def oauth(self) -> OAuthService:
        from amanat.auth.service import OAuthService

        return self.get(OAuthService)

    @property
    def key_ring(self) -> KeyRing:
        from amanat.auth.adapters.tokens import KeyRing

        return self.get(KeyRing)

    @property
    def signing_keys(self) -> SigningKeyService:
        from amanat.auth.signing_keys import SigningKeyService

        return self.get(SigningKeyService)

    @property
    def payments(self) -> PaymentService:
        from amanat.payments.service import PaymentService

        return self.get(PaymentService)

    @property
    def rail(self) -> RailAdapter:
        from amanat.payments.rail import RailAdapter

        return self.get(RailAdapter)

    @property
    def events(self) -> EventService:
        from amanat.webhooks.events_service import EventService

        return self.get(EventService)

    @property
    def webhooks(self) -> WebhookService:
        from amanat.webhooks.service import WebhookService

        return self.get(WebhookService)

    @property
    def webhook_sender(self) -> WebhookSender:
        from amanat.webhooks.service import WebhookSender

        return self.get(WebhookSender)

    # -- the worker's parts -------------------------------------------------------------

    def job_handlers(self, services: ServiceContainer | None = None) -> dict[str, JobHandler]:
        source = services or self.services
        return {kind: build(source) for kind, build in self.registry.job_handlers.items()}

    def periodic_jobs(self) -> list[PeriodicJob]:
        return [build(self.services) for build in self.registry.periodic_jobs]

    def workers(self) -> list[Worker]:
        return [build(self.services) for build in self.registry.workers]

    def job_runtime(self, *, owner: str | None = None, **replace: object) -> JobRuntime:
        """The outbox's job runtime; ``replace`` swaps a port by type for this runtime's
        handlers (``rail=FakeRail()`` in a test or a drill)."""
        from amanat.payments.rail import RailAdapter
        from amanat.platform.jobs.runner import job_runtime

        kinds: dict[str, type] = {"rail": RailAdapter}
        services = self.services.with_instances(
            {kinds[name]: port for name, port in replace.items()}
        )
        return job_runtime(
            self.transactions,
            self.clock,
            self.job_handlers(services),
            self.settings.worker,
            owner=owner,
        )

    async def run_worker(self, stop: asyncio.Event) -> None:
        """Everything a worker process runs, until ``stop`` is set."""
        from amanat.platform.jobs.runner import run_worker

        await run_worker(
            self.transactions,
            self.clock,
            self.settings.worker,
            handlers=self.job_handlers(),
            periodic=self.periodic_jobs(),
            workers=self.workers(),
            stop=stop,
        )

    async def scrape(self) -> None:
        """Bring the database-backed gauges up to date (``GET /metrics``)."""
        for gauge in self.registry.gauges:
            await gauge(self.services)()

    async def start(self) -> None:
        """What a fresh database needs before the first request (signing and data keys)."""
        for step in self.registry.on_startup:
            await step(self.services)

    async def close(self) -> None:
        for step in self.registry.on_shutdown:
            await step(self.services)
        await self.http.aclose()
        await self.rate_limiter.close()
        await self.db.dispose()


def build_container(
    settings: Settings,
    *,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
) -> Container:
    collected = registry()
    db = Database(
        create_engine(settings.database),
        write_wait_seconds=settings.database.sqlite_busy_timeout_ms / 1000,
    )
    transactions = SqlTransactions(db, collected.repositories)
    services = ServiceContainer(
        collected,
        settings=settings,
        clock=clock or SystemClock(),
        transactions=transactions,
        http=http or httpx.AsyncClient(follow_redirects=False, timeout=10.0),
    )
    for event, handler in collected.subscribers:
        transactions.subscribe(event, _lazy(services, handler))
    for kind in collected.eager:
        services.get(kind)
    return Container(services, db)


def _lazy(
    services: ServiceContainer, build: Callable[[ServiceContainer], EventHandler]
) -> EventHandler:
    """The handler, built the first time its event is published (so building a container
    builds no service until something needs it)."""
    built: list[EventHandler] = []

    async def handle(event: Any, tx: Any) -> None:
        if not built:
            built.append(build(services))
        await built[0](event, tx)

    return handle
