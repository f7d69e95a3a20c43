"""The console's part of the app: its screens (one router each), its table, and the
services its dashboard and alert inbox read through."""

from __future__ import annotations

from amanat.console import tables
from amanat.console.alerts import AlertInbox, SqlAlertAckRepository
from amanat.console.operations import OperationsBoard
from amanat.console.routes import (
    access,
    alerts,
    audit,
    disputes,
    home,
    keys,
    operations,
    operators,
    partners,
    playbooks,
    reconciliation,
    search,
    signin,
    timeline,
)
from amanat.identity.queries import IdentityQueries
from amanat.payments.operations import PaymentOperationsQueries
from amanat.platform.registry import Registry, Services
from amanat.reconciliation.operations import ReconciliationOperationsQueries
from amanat.webhooks.operations import WebhookOperationsQueries

SCREENS = (
    signin,
    home,
    operations,
    alerts,
    playbooks,
    search,
    timeline,
    disputes,
    reconciliation,
    partners,
    operators,
    audit,
    access,
    keys,
)


def _board(s: Services) -> OperationsBoard:
    return OperationsBoard(
        s.get(PaymentOperationsQueries),
        s.get(WebhookOperationsQueries),
        s.get(ReconciliationOperationsQueries),
        s.get(IdentityQueries),
        s.settings.operations,
        s.clock,
    )


def _inbox(s: Services) -> AlertInbox:
    return AlertInbox([build(s) for build in s.registry.alert_sources], s.transactions, s.clock)


def include(registry: Registry) -> None:
    registry.add_tables(tables.TABLES)
    registry.add_repository("alert_acks", SqlAlertAckRepository)
    registry.provide(AlertInbox, _inbox)
    registry.provide(OperationsBoard, _board)
    registry.add_routes(*(screen.router for screen in SCREENS))
