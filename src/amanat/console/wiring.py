"""The console's part of the app: its pages."""

from __future__ import annotations

from amanat.console import tables
from amanat.console.routes import pages
from amanat.platform.registry import Registry


def include(registry: Registry) -> None:
    registry.add_tables(tables.TABLES)
    registry.add_routes(pages.router)
