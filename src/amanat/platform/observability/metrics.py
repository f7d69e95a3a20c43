"""Prometheus metrics shared by the API and the worker (one definition per metric)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RAIL_CALLS = Counter(
    "amanat_rail_calls_total",
    "Calls to the rail by operation and outcome",
    ["operation", "outcome"],
)
UNRESOLVED = Gauge(
    "amanat_payments_unresolved", "Payments in processing or awaiting approval for over 5 minutes"
)
OUTBOX_PENDING = Gauge("amanat_outbox_pending", "Outbox jobs waiting to run")
WEBHOOK_ATTEMPTS = Counter(
    "amanat_webhook_attempts_total",
    "Webhook delivery attempts by result (delivered, retry, gone) and error class",
    ["verdict", "error"],
)
WEBHOOK_LATENCY = Histogram(
    "amanat_webhook_attempt_seconds",
    "Time a receiver took to answer one attempt",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOK_LAG = Histogram(
    "amanat_webhook_first_attempt_lag_seconds",
    "From an event's creation to its first delivery attempt",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
WEBHOOK_PENDING = Gauge("amanat_webhook_deliveries_pending", "Webhook deliveries not yet final")
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "amanat_webhook_endpoints_disabled_total",
    "Endpoints amanat disabled (410 Gone, or a long streak of failures); page an operator",
)
OUTBOX_JOBS = Counter(
    "amanat_outbox_jobs_total",
    "Outbox jobs handled, by kind and outcome (done, retry, dead, crashed, contended)",
    ["kind", "outcome"],
)
