"""What each capability brings to the one application, gathered in one place.

Every capability package has an ``include(registry)`` function; the composition root
(:mod:`amanat.bootstrap`) calls it for each package named in its ``CAPABILITIES``. Through
the registry a capability declares its services, the repositories a transaction builds on
its connection, its HTTP routers, outbox job handlers, periodic jobs and
long-running workers, its problem codes and partner event types, and what it does
when another capability publishes a domain event. Nothing outside a capability's package
and that one list names it, so adding a capability touches no existing file but the list.

This is pypi/warehouse's ``includeme`` without Pyramid: a small hand-written registry,
because FastAPI has no configurator of its own and the needs here are a few dicts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

if TYPE_CHECKING:
    import asyncio

    import httpx
    import sqlalchemy as sa
    from fastapi import APIRouter

    from amanat.kernel.alerts import AlertSource
    from amanat.kernel.clock import Clock
    from amanat.kernel.events import EventType
    from amanat.kernel.search import SearchSource
    from amanat.kernel.timeline import TimelineSource
    from amanat.platform.http.problems import ProblemType
    from amanat.platform.jobs.outcomes import JobHandler
    from amanat.platform.settings import Settings
    from amanat.platform.unit_of_work.sql import SqlTransactions

T = TypeVar("T")
E = TypeVar("E")


class Services(Protocol):
    """What a factory may ask for: the process's basics, and any service by its type."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def transactions(self) -> SqlTransactions: ...
    @property
    def registry(self) -> Registry:
        """What every capability declared (a catalogue built from all of them)."""
        ...

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared outbound HTTP client (rail, JWKS, witness, vault)."""
        ...

    def get(self, kind: type[T]) -> T: ...

    def built(self, kind: type[T]) -> T | None:
        """The service of ``kind`` if one was built already; never builds it."""
        ...


class Worker(Protocol):
    """A long-running loop of a worker process (the webhook deliverer, the audit sealer)."""

    async def run_forever(self, stop: asyncio.Event) -> None: ...


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """A job the scheduler runs every ``every`` on exactly one worker of the fleet."""

    name: str
    every: timedelta
    run: Callable[[], Awaitable[str]]
    """Does the work and says in a few words what it did (logged)."""


EventHandler = Callable[[Any, Any], Awaitable[None]]
"""``handler(event, tx)``: runs inside the publishing transaction, before it commits."""


class ServiceCycle(RuntimeError):
    pass


class Registry:
    def __init__(self) -> None:
        self.factories: dict[type, Callable[[Services], object]] = {}
        self.repositories: dict[str, Callable[[Any], object]] = {}
        self.tables: list[sa.Table] = []
        self.routers: list[APIRouter] = []
        self.job_handlers: dict[str, Callable[[Services], JobHandler]] = {}
        self.periodic_jobs: list[Callable[[Services], PeriodicJob]] = []
        self.workers: list[Callable[[Services], Worker]] = []
        self.problems: list[ProblemType] = []
        self.event_types: list[EventType] = []
        self.subscribers: list[tuple[type, Callable[[Services], EventHandler]]] = []
        self.on_startup: list[Callable[[Services], Awaitable[None]]] = []
        self.on_shutdown: list[Callable[[Services], Awaitable[None]]] = []
        self.on_collected: list[Callable[[Registry], None]] = []
        self.gauges: list[Callable[[Services], Callable[[], Awaitable[None]]]] = []
        self.retention_classes: dict[str, Callable[[Any], object]] = {}
        self.eager: list[type] = []
        self.encrypted_columns: list[Any] = []
        self.refusal_renderers: list[tuple[str, Any]] = []
        self.upload_paths: list[str] = []
        self.timeline_sources: list[Callable[[Services], TimelineSource]] = []
        self.search_sources: list[Callable[[Services], SearchSource]] = []
        self.alert_sources: list[Callable[[Services], AlertSource]] = []

    # -- services and persistence ---------------------------------------------------------

    def provide(self, kind: type[T], factory: Callable[[Services], T]) -> None:
        """``factory`` builds the one ``kind`` of this process, when first asked for."""
        if kind in self.factories:
            raise ValueError(f"{kind.__name__} is already provided")
        self.factories[kind] = factory

    def build_eagerly(self, kind: type) -> None:
        """Build ``kind`` with the container, not on first use (it creates key files that
        several processes starting together must not race to create)."""
        self.eager.append(kind)

    def add_repository(self, name: str, factory: Callable[[Any], object]) -> None:
        """A repository a transaction offers as ``tx.<name>``, built on its connection the
        first time a use case touches it (a transaction builds only what it uses)."""
        if name in self.repositories:
            raise ValueError(f"a repository named {name!r} is already registered")
        self.repositories[name] = factory

    def add_retention_class(self, name: str, rows: Callable[[Any], object]) -> None:
        """A retention data class (a name ``retention.toml`` gives a period) and the rows
        it covers, built on a connection (``platform/retention/ports.py``: RetainedRows)."""
        if name in self.retention_classes:
            raise ValueError(f"retention class {name!r} is already registered")
        self.retention_classes[name] = rows

    def add_encrypted_columns(self, *columns: object) -> None:
        """Columns of the capability's tables that hold values encrypted under a fields
        key (platform/protection: EncryptedColumn), so key rotation covers them."""
        self.encrypted_columns.extend(columns)

    def add_tables(self, tables: Iterable[sa.Table]) -> None:
        self.tables.extend(tables)

    # -- edges ----------------------------------------------------------------------------

    def add_routes(self, *routers: APIRouter) -> None:
        self.routers.extend(routers)

    def add_job(self, kind: str, handler: Callable[[Services], JobHandler]) -> None:
        """The handler of outbox jobs of ``kind`` (the worker's job runtime calls it)."""
        if kind in self.job_handlers:
            raise ValueError(f"outbox job kind {kind!r} already has a handler")
        self.job_handlers[kind] = handler

    def add_periodic(self, job: Callable[[Services], PeriodicJob]) -> None:
        self.periodic_jobs.append(job)

    def add_worker(self, worker: Callable[[Services], Worker]) -> None:
        self.workers.append(worker)

    def add_gauge(self, gauge: Callable[[Services], Callable[[], Awaitable[None]]]) -> None:
        """Brings a metric up to date from the database when ``/metrics`` is scraped (so any
        replica reports the same figure)."""
        self.gauges.append(gauge)

    def add_startup(self, step: Callable[[Services], Awaitable[None]]) -> None:
        """Runs once when an API or worker process starts (a fresh database's keys)."""
        self.on_startup.append(step)

    def add_shutdown(self, step: Callable[[Services], Awaitable[None]]) -> None:
        """Runs when the process stops (close a client the capability opened)."""
        self.on_shutdown.append(step)

    def when_collected(self, step: Callable[[Registry], None]) -> None:
        """Runs once every capability is included (a catalogue built from all of them)."""
        self.on_collected.append(step)

    # -- catalogues -------------------------------------------------------------------------

    def add_problems(self, *problems: ProblemType) -> None:
        self.problems.extend(problems)

    def add_refusal_renderer(self, prefix: str, renderer: Any) -> None:
        """Under ``prefix``, the refusals the HTTP edge makes before any route runs (body
        too large, forbidden characters, malformed JSON, an unexpected failure) answer in
        the shape ``renderer`` builds instead of a problem document (see
        :class:`amanat.platform.http.middleware.ContractMiddleware`)."""
        self.refusal_renderers.append((prefix, renderer))

    def add_upload_path(self, path: str) -> None:
        """A route that takes a whole file as its body: its cap is the upload limit
        (``AMANAT_HTTP__MAX_UPLOAD_BYTES``), not the body limit of every other request."""
        self.upload_paths.append(path)

    def add_timeline_source(self, source: Callable[[Services], TimelineSource]) -> None:
        """The capability's part of a transaction's timeline (``amanat timeline``, the
        console's timeline page), read through its own queries."""
        self.timeline_sources.append(source)

    def add_search_source(self, source: Callable[[Services], SearchSource]) -> None:
        """What the capability finds for the console's search (ids, references, partners,
        data subjects found through the blind indexes)."""
        self.search_sources.append(source)

    def add_alert_source(self, source: Callable[[Services], AlertSource]) -> None:
        """Conditions of the capability that need an operator now (the alert inbox)."""
        self.alert_sources.append(source)

    def add_event_types(self, *types: EventType) -> None:
        self.event_types.extend(types)

    def subscribe(self, event: type[E], handler: Callable[[Services], EventHandler]) -> None:
        """``handler`` runs for every ``event`` published in a transaction, in it."""
        self.subscribers.append((event, handler))


class ServiceContainer:
    """Builds each provided service once, on first use, from its factory."""

    def __init__(
        self,
        registry: Registry,
        *,
        settings: Settings,
        clock: Clock,
        transactions: SqlTransactions,
        http: httpx.AsyncClient,
        instances: Mapping[type, object] | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.transactions = transactions
        self.http = http
        self._factories = registry.factories
        self._instances: dict[type, object] = dict(instances or {})
        self._building: set[type] = set()
        # The basics answer by type too, so an edge can ask for them like any service.
        for kind, instance in (
            (_settings_type(), settings),
            (_clock_type(), clock),
            (type(transactions), transactions),
            (type(http), http),
        ):
            self._instances.setdefault(kind, instance)

    def with_instances(self, instances: Mapping[type, object]) -> ServiceContainer:
        """A container that answers ``instances`` instead (a test's own rail, a drill's
        faulty port) and shares every service built so far. Handlers and workers built
        from it get the replacements; services already built keep what they had."""
        return ServiceContainer(
            self.registry,
            settings=self.settings,
            clock=self.clock,
            transactions=self.transactions,
            http=self.http,
            instances={**self._instances, **instances},
        )

    def get(self, kind: type[T]) -> T:
        found = self._instances.get(kind)
        if found is not None:
            return cast(T, found)
        factory = self._factories.get(kind)
        if factory is None:
            raise LookupError(f"nothing provides {kind.__name__}")
        if kind in self._building:
            raise ServiceCycle(f"{kind.__name__} needs itself to be built")
        self._building.add(kind)
        try:
            instance = factory(self)
        finally:
            self._building.discard(kind)
        self._instances[kind] = instance
        return cast(T, instance)

    def built(self, kind: type[T]) -> T | None:
        """The service of ``kind`` if something already asked for it; never builds one
        (a shutdown step closes only what was opened)."""
        return cast(T | None, self._instances.get(kind))

    def add(self, kind: type[T], instance: T) -> None:
        self._instances[kind] = instance


def _settings_type() -> type:
    from amanat.platform.settings import Settings

    return Settings


def _clock_type() -> type:
    from amanat.kernel.clock import Clock

    return Clock
