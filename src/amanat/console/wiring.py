"""The console's part of the app: its screens (one router each), its tables and the
access log every screen writes to."""

from __future__ import annotations

from amanat.console import tables
from amanat.console.access_log import AccessLog, SqlAccessLogRepository
from amanat.console.routes import audit, home, keys, operators, partners, signin
from amanat.platform.registry import Registry

SCREENS = (signin, home, partners, operators, audit, keys)


def include(registry: Registry) -> None:
    registry.add_tables(tables.TABLES)
    registry.add_repository("console_access", SqlAccessLogRepository)
    registry.provide(AccessLog, lambda s: AccessLog(s.transactions, s.clock))
    registry.add_routes(*(screen.router for screen in SCREENS))
