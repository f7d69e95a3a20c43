"""Payments' part of the app: tables, stores, the service, the rail, its jobs and routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

from amanat.identity.queries import IdentityQueries
from amanat.payments import problems, tables
from amanat.payments.adapters.breaker import CircuitBreaker
from amanat.payments.adapters.raast_http import RaastHttpAdapter
from amanat.payments.alerts import StuckPaymentAlerts
from amanat.payments.batching import PayoutBatcher
from amanat.payments.callbacks import RailCallbacks
from amanat.payments.domain.events import EVENT_TYPES
from amanat.payments.enquiries import EnquiryLog
from amanat.payments.jobs import RailJobs, RailTarget, UnresolvedGauge
from amanat.payments.operations import PaymentOperationsQueries
from amanat.payments.operations_store import SqlPaymentOperationsRepository
from amanat.payments.ports import DisputeClaims, PayeeCheckRecords
from amanat.payments.rail import RailAdapter
from amanat.payments.recovery import PaymentRecovery
from amanat.payments.routes import banks, payments, rail_callbacks
from amanat.payments.service import ENQUIRE, SUBMIT, PaymentsConfig, PaymentService
from amanat.payments.store import SqlLedgerRepository, SqlPaymentRepository, SqlRailEventRepository
from amanat.payments.timeline import PaymentSearch, PaymentTimeline
from amanat.payments.timeline_store import SqlPaymentHistory
from amanat.platform.idempotency.service import IdempotencyService
from amanat.platform.observability.metrics import UNRESOLVED
from amanat.platform.protection.ports import EncryptedColumn
from amanat.platform.protection.service import DataProtectionService
from amanat.platform.registry import PeriodicJob, Registry, Services

log = structlog.get_logger("amanat.worker")


def _service(s: Services) -> PaymentService:
    settings = s.settings.payments
    return PaymentService(
        s.transactions,
        s.clock,
        s.get(DataProtectionService),
        PaymentsConfig(
            default_limit=settings.default_per_transaction_limit,
            balance_shards=settings.balance_shards,
            collection_ttl=timedelta(seconds=settings.collection_ttl_seconds),
            enquire_after=timedelta(seconds=settings.enquire_after_seconds),
            sandbox_hold=timedelta(seconds=settings.sandbox_hold_seconds),
            sandbox=not s.settings.is_production,
        ),
        s.get(IdentityQueries),
        # Provided by open banking (confirmation of payee), when it is part of the build.
        s.get(PayeeCheckRecords) if PayeeCheckRecords in s.registry.factories else None,
        # Provided by disputes: what they take of a collection, which refunds may not.
        s.get(DisputeClaims) if DisputeClaims in s.registry.factories else None,
    )


def _public_url(s: Services) -> str:
    return s.settings.http.public_url.rstrip("/")


def _rail(s: Services) -> RailAdapter:
    rail = s.settings.rail
    return RaastHttpAdapter(
        s.http,
        rail.base_url or f"{_public_url(s)}/sandbox-rail",
        rail.secret.get_secret_value(),
        timeout_seconds=rail.timeout_seconds,
        breaker=CircuitBreaker(),
        clock=s.clock,
    )


def _target(s: Services) -> RailTarget:
    rail = s.settings.rail
    return RailTarget(
        callback_url=rail.callback_url or f"{_public_url(s)}/rails/raast/callbacks",
        collection_iban=rail.collection_iban,
    )


def _rail_jobs(s: Services) -> RailJobs:
    return RailJobs(
        s.get(PaymentService),
        s.get(DataProtectionService),
        s.get(RailAdapter),
        s.get(RailTarget),
        EnquiryLog(s.transactions, s.clock),
    )


def sweep_job(
    service: PaymentService, *, every: timedelta, stranded_after: timedelta
) -> PeriodicJob:
    """``payments.sweep``: give every payment in flight with no job left the job that
    moves it on (PaymentService.requeue_stranded)."""

    async def run() -> str:
        queued = await service.requeue_stranded(stranded_after)
        if any(queued.values()):
            log.warning("stranded_payments_requeued", **queued)
        return ", ".join(f"{kind}={n}" for kind, n in queued.items() if n) or "none stranded"

    return PeriodicJob("payments.sweep", every, run)


def _sweep(s: Services) -> PeriodicJob:
    worker = s.settings.worker
    return sweep_job(
        s.get(PaymentService),
        every=timedelta(seconds=worker.sweep_every_seconds),
        stranded_after=timedelta(seconds=worker.stranded_after_seconds),
    )


def _unresolved_gauge(s: Services) -> Callable[[], Awaitable[None]]:
    service = s.get(PaymentService)

    async def update() -> None:
        UNRESOLVED.set(await service.unresolved_count(timedelta(minutes=5)))

    return update


def _stuck_alerts(s: Services) -> StuckPaymentAlerts:
    operations = s.settings.operations
    return StuckPaymentAlerts(
        s.get(PaymentOperationsQueries),
        stuck_after=timedelta(minutes=operations.stuck_after_minutes),
        limit=operations.alerts_per_source,
    )


def include(registry: Registry) -> None:
    registry.add_problems(*problems.PROBLEMS)
    registry.add_tables(tables.TABLES)
    registry.add_encrypted_columns(EncryptedColumn("payments", "id", "description"))
    registry.add_repository("payments", SqlPaymentRepository)
    registry.add_repository("ledger", SqlLedgerRepository)
    registry.add_repository("rail_events", SqlRailEventRepository)
    registry.add_repository("payment_history", SqlPaymentHistory)
    registry.add_timeline_source(lambda s: PaymentTimeline(s.transactions))
    registry.add_search_source(lambda s: PaymentSearch(s.transactions))
    registry.add_repository("payment_operations", SqlPaymentOperationsRepository)
    registry.provide(
        PaymentOperationsQueries, lambda s: PaymentOperationsQueries(s.transactions, s.clock)
    )
    registry.add_alert_source(_stuck_alerts)
    registry.provide(PaymentRecovery, lambda s: PaymentRecovery(s.transactions, s.clock))
    registry.provide(PaymentService, _service)
    registry.provide(
        PayoutBatcher,
        lambda s: PayoutBatcher(s.transactions, s.get(PaymentService), s.get(IdempotencyService)),
    )
    registry.provide(RailAdapter, _rail)
    registry.provide(RailTarget, _target)
    registry.provide(
        RailCallbacks, lambda s: RailCallbacks(s.transactions, s.clock, s.get(PaymentService))
    )
    # The partner API's busiest paths first: FastAPI tries routes in order.
    registry.add_routes(payments.router, banks.router, rail_callbacks.router)
    registry.add_job(SUBMIT, lambda s: _rail_jobs(s).submit)
    registry.add_job(ENQUIRE, lambda s: _rail_jobs(s).enquire)
    registry.add_periodic(_sweep)
    registry.add_worker(lambda s: UnresolvedGauge(s.get(PaymentService)))
    registry.add_gauge(_unresolved_gauge)
    registry.add_event_types(*EVENT_TYPES)
