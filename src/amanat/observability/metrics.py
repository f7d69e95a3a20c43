"""Prometheus metrics shared by the API and the worker (one definition per metric)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RAIL_CALLS = Counter(
    "amanat_rail_calls_total",
    "Calls to the rail by operation and outcome",
    ["operation", "outcome"],
)
UNRESOLVED = Gauge(
    "amanat_payments_unresolved", "Payments in processing or awaiting approval for over 5 minutes"
)
OUTBOX_PENDING = Gauge("amanat_outbox_pending", "Outbox jobs waiting to run")
