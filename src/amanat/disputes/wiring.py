"""Disputes' part of the app: tables, store, service, routes, the worker's expiry job,
and their timeline, search and alert sources for the console."""

from __future__ import annotations

from datetime import timedelta

from amanat.disputes import jobs, problems, tables
from amanat.disputes.claims import DisputeClaims
from amanat.disputes.domain.deadlines import DeadlinePolicy
from amanat.disputes.domain.events import EVENT_TYPES
from amanat.disputes.routes import operator as operator_routes
from amanat.disputes.routes import partner, rail
from amanat.disputes.services.disputes import DisputesConfig, DisputeService
from amanat.disputes.services.sources import DisputeAlerts, DisputeSearch, DisputeTimeline
from amanat.disputes.store import SqlDisputeRepository
from amanat.kernel.business_days import BusinessCalendar
from amanat.payments.ports import DisputeClaims as PaymentDisputeClaims
from amanat.payments.service import PaymentService
from amanat.platform.protection.ports import EncryptedColumn
from amanat.platform.protection.service import DataProtectionService
from amanat.platform.registry import PeriodicJob, Registry, Services


def _service(s: Services) -> DisputeService:
    calendar = s.settings.settlement
    config = s.settings.disputes
    return DisputeService(
        s.transactions,
        s.clock,
        s.get(DataProtectionService),
        s.get(PaymentService),
        BusinessCalendar.of(calendar.cutoff, calendar.holidays, calendar.weekend),
        DisputesConfig(
            deadlines=DeadlinePolicy(
                respond_within=config.respond_within_business_days,
                decide_within=config.decide_within_business_days,
                warn_days=config.warn_days_before_deadline,
            ),
            evidence_max_bytes=config.evidence_max_bytes,
            max_evidence_files=config.max_evidence_files,
        ),
    )


def _expire(s: Services) -> PeriodicJob:
    service = s.get(DisputeService)
    return PeriodicJob(
        "disputes.expire_overdue", timedelta(minutes=5), lambda: jobs.expire_overdue(service)
    )


def include(registry: Registry) -> None:
    registry.add_problems(*problems.PROBLEMS)
    registry.add_tables(tables.TABLES)
    registry.add_event_types(*EVENT_TYPES)
    registry.add_encrypted_columns(
        EncryptedColumn("disputes", "id", "response_text"),
        EncryptedColumn("dispute_evidence", "id", "content"),
    )
    registry.add_repository("disputes", SqlDisputeRepository)
    registry.provide(DisputeService, _service)
    registry.provide(PaymentDisputeClaims, lambda s: DisputeClaims())
    registry.add_routes(partner.router, operator_routes.router, rail.router)
    registry.add_upload_path(partner.EVIDENCE_PATH)
    registry.add_upload_path(operator_routes.EVIDENCE_PATH)
    registry.add_periodic(_expire)
    registry.add_timeline_source(lambda s: DisputeTimeline(s.get(DisputeService)))
    registry.add_search_source(lambda s: DisputeSearch(s.get(DisputeService)))
    registry.add_alert_source(lambda s: DisputeAlerts(s.get(DisputeService)))
