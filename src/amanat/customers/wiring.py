"""Customers' part of the app: the partner API over data subjects."""

from __future__ import annotations

from amanat.customers.routes import customers
from amanat.platform.registry import Registry


def include(registry: Registry) -> None:
    registry.add_routes(customers.router)
