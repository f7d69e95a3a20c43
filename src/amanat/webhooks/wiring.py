"""Webhooks' part of the app: the event catalogue, stores, delivery and routes, and what
webhooks does when payments publish a change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from amanat.openbanking.domain.events import ConsentChanged
from amanat.payments.domain.events import BalanceToppedUp, PaymentChanged
from amanat.platform.protection.ports import EncryptedColumn
from amanat.platform.protection.service import DataProtectionService
from amanat.platform.registry import PeriodicJob, Registry, Services
from amanat.reconciliation.domain.events import PartnerNotice
from amanat.webhooks import problems, tables
from amanat.webhooks.adapters.transport import EndpointPools, HttpWebhookSender, SystemResolver
from amanat.webhooks.alerts import WebhookAlerts
from amanat.webhooks.domain.events import CATALOGUE
from amanat.webhooks.events_service import EventService
from amanat.webhooks.jobs import WebhookDeliverer
from amanat.webhooks.operations import WebhookOperationsQueries
from amanat.webhooks.operations_store import SqlWebhookOperationsRepository
from amanat.webhooks.routes import endpoints, events
from amanat.webhooks.service import WebhooksConfig, WebhookSender, WebhookService
from amanat.webhooks.store import SqlEventRepository, SqlWebhookRepository, WebhookRows
from amanat.webhooks.timeline import WebhookTimeline
from amanat.webhooks.timeline_store import SqlWebhookHistory


@dataclass(frozen=True, slots=True)
class DeliveryHttp:
    """The HTTP clients for partners' endpoints, apart from the shared one: a few
    kept-alive connections per endpoint, and never an ambient proxy."""

    clients: EndpointPools


def _delivery_http(s: Services) -> DeliveryHttp:
    hooks = s.settings.webhooks
    return DeliveryHttp(
        EndpointPools(
            connections=hooks.per_endpoint_concurrency,
            grace_seconds=hooks.timeout_seconds * 2,
        )
    )


def _service(s: Services) -> WebhookService:
    hooks = s.settings.webhooks
    return WebhookService(
        s.transactions,
        s.clock,
        s.get(DataProtectionService),
        s.get(EventService),
        s.get(SystemResolver),
        WebhooksConfig(
            production=s.settings.is_production,
            timeout=timedelta(seconds=hooks.timeout_seconds),
            rotation_overlap=timedelta(hours=hooks.rotation_overlap_hours),
            disable_after=timedelta(days=hooks.disable_after_days),
            held_for=timedelta(days=hooks.held_events_days),
        ),
    )


def _sender(s: Services) -> WebhookSender:
    return HttpWebhookSender(
        s.get(DeliveryHttp).clients,
        s.get(SystemResolver),
        excerpt_bytes=s.settings.webhooks.response_excerpt_bytes,
    )


def deliverer(s: Services) -> WebhookDeliverer:
    hooks = s.settings.webhooks
    return WebhookDeliverer(
        s.get(WebhookService),
        s.get(WebhookSender),
        s.clock,
        allow_private=not s.settings.is_production,
        concurrency=hooks.concurrency,
        per_endpoint=hooks.per_endpoint_concurrency,
    )


def _drop_expired_held(s: Services) -> PeriodicJob:
    service = s.get(WebhookService)

    async def run() -> str:
        dropped = await service.drop_expired_held()
        return f"dropped {dropped} held deliveries" if dropped else "none held too long"

    return PeriodicJob("webhooks.drop_expired_held", timedelta(hours=1), run)


def _alerts(s: Services) -> WebhookAlerts:
    operations = s.settings.operations
    return WebhookAlerts(
        s.get(WebhookOperationsQueries),
        oldest_after=timedelta(minutes=operations.webhook_oldest_minutes),
        limit=operations.alerts_per_source,
    )


async def _close_delivery_http(s: Services) -> None:
    delivery = s.built(DeliveryHttp)  # opening a client only to close it costs ~30 ms (TLS)
    if delivery is not None:
        await delivery.clients.aclose()


def include(registry: Registry) -> None:
    registry.add_problems(*problems.PROBLEMS)
    registry.add_tables(tables.TABLES)
    registry.add_encrypted_columns(
        EncryptedColumn("events", "id", "data"),
        EncryptedColumn("webhook_endpoints", "id", "secret"),
        EncryptedColumn("webhook_endpoints", "id", "previous_secret"),
    )
    registry.add_repository("events", SqlEventRepository)
    registry.add_repository("webhooks", SqlWebhookRepository)
    registry.add_repository("webhook_history", SqlWebhookHistory)
    registry.add_timeline_source(lambda s: WebhookTimeline(s.transactions))
    registry.add_repository("webhook_operations", SqlWebhookOperationsRepository)
    registry.provide(
        WebhookOperationsQueries, lambda s: WebhookOperationsQueries(s.transactions, s.clock)
    )
    registry.add_alert_source(_alerts)
    registry.add_retention_class("webhook_deliveries", WebhookRows)
    registry.provide(
        EventService,
        lambda s: EventService(s.transactions, s.clock, s.get(DataProtectionService)),
    )
    registry.provide(SystemResolver, lambda s: SystemResolver())
    registry.provide(DeliveryHttp, _delivery_http)
    registry.provide(WebhookService, _service)
    registry.provide(WebhookSender, _sender)
    registry.add_routes(events.router, endpoints.router)
    registry.add_worker(deliverer)
    registry.add_periodic(_drop_expired_held)
    registry.add_shutdown(_close_delivery_http)
    registry.subscribe(PaymentChanged, lambda s: s.get(EventService).on_payment_changed)
    registry.subscribe(BalanceToppedUp, lambda s: s.get(EventService).on_balance_topped_up)
    registry.subscribe(ConsentChanged, lambda s: s.get(EventService).on_consent_changed)
    registry.subscribe(PartnerNotice, lambda s: s.get(EventService).on_partner_notice)
    registry.when_collected(lambda collected: CATALOGUE.declare(collected.event_types))
