"""Settlement's and reconciliation's part of the app: their tables, services, routes,
the worker's periodic jobs, and their handler of settled payments."""

from __future__ import annotations

from datetime import timedelta

from amanat.kernel.business_days import BusinessCalendar
from amanat.payments.domain.events import PaymentChanged
from amanat.payments.service import PaymentService
from amanat.platform.registry import PeriodicJob, Registry, Services
from amanat.reconciliation import jobs, problems, tables
from amanat.reconciliation.alerts import AgedBreakAlerts
from amanat.reconciliation.domain.events import EVENT_TYPES
from amanat.reconciliation.domain.settlement import FeeSchedule
from amanat.reconciliation.operations import ReconciliationOperationsQueries
from amanat.reconciliation.operations_store import SqlReconOperationsRepository
from amanat.reconciliation.routes import operator, settlements
from amanat.reconciliation.services.reconciliation import ReconciliationService
from amanat.reconciliation.services.settlements import SettlementService
from amanat.reconciliation.store import SqlReconciliationRepository, SqlSettlementRepository
from amanat.reconciliation.timeline import ReconciliationTimeline
from amanat.reconciliation.timeline_store import SqlReconciliationHistory


def _settlement_service(s: Services) -> SettlementService:
    config = s.settings.settlement
    return SettlementService(
        s.transactions,
        s.clock,
        s.get(PaymentService),
        BusinessCalendar.of(config.cutoff, config.holidays, config.weekend),
        FeeSchedule(collection_bps=config.collection_fee_bps, per_payout=config.payout_fee),
        close_after=timedelta(seconds=config.close_after_seconds),
    )


def _operations(s: Services) -> ReconciliationOperationsQueries:
    config = s.settings.settlement
    return ReconciliationOperationsQueries(
        s.transactions,
        BusinessCalendar.of(config.cutoff, config.holidays, config.weekend),
        cycles=s.settings.operations.break_age_cycles,
    )


def _aged_breaks(s: Services) -> AgedBreakAlerts:
    return AgedBreakAlerts(
        s.get(ReconciliationService),
        s.get(ReconciliationOperationsQueries),
        limit=s.settings.operations.alerts_per_source,
    )


def _close_cycles(s: Services) -> PeriodicJob:
    service = s.get(SettlementService)
    return PeriodicJob(
        "settlement.close_cycles", timedelta(minutes=1), lambda: jobs.close_due_cycles(service)
    )


def _rematch(s: Services) -> PeriodicJob:
    service = s.get(ReconciliationService)
    return PeriodicJob(
        "reconciliation.rematch", timedelta(minutes=5), lambda: jobs.rematch_sources(service)
    )


def include(registry: Registry) -> None:
    registry.add_problems(*problems.PROBLEMS)
    registry.add_tables(tables.TABLES)
    registry.add_event_types(*EVENT_TYPES)
    registry.add_repository("settlements", SqlSettlementRepository)
    registry.add_repository("recon", SqlReconciliationRepository)
    registry.add_repository("recon_history", SqlReconciliationHistory)
    registry.add_timeline_source(lambda s: ReconciliationTimeline(s.transactions))
    registry.add_repository("recon_operations", SqlReconOperationsRepository)
    registry.provide(ReconciliationOperationsQueries, _operations)
    registry.add_alert_source(_aged_breaks)
    registry.provide(SettlementService, _settlement_service)
    registry.provide(
        ReconciliationService,
        lambda s: ReconciliationService(s.transactions, s.clock, s.get(PaymentService)),
    )
    registry.add_routes(settlements.router, operator.router)
    registry.add_upload_path(operator.IMPORT_PATH)
    registry.add_periodic(_close_cycles)
    registry.add_periodic(_rematch)
    registry.subscribe(PaymentChanged, lambda s: s.get(ReconciliationService).on_payment_changed)
