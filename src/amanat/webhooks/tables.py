"""Webhooks' tables (SQLAlchemy Core), on the one shared metadata. Migrations must match
these exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

# The event log (transactional outbox of partner-facing events). ``data`` is the object
# as committed, sealed: it can echo a payment's free-text description.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(32), nullable=False),
    sa.Column("object_id", sa.String(40), nullable=False),
    sa.Column("object_version", sa.Integer, nullable=True),
    sa.Column("data", sa.Text, nullable=False),  # encrypted JSON
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_events_partner_created", events.c.partner_id, events.c.created_at, events.c.id)
sa.Index("ix_events_object", events.c.object_id)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(500), nullable=True),
    sa.Column("enabled_events", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.String(200), nullable=True),
    sa.Column("secret", sa.Text, nullable=False),  # encrypted
    sa.Column("previous_secret", sa.Text, nullable=True),  # encrypted
    sa.Column("previous_secret_expires_at", UtcDateTime(), nullable=True),
    sa.Column("failing_since", UtcDateTime(), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("deleted_at", UtcDateTime(), nullable=True),
)
sa.Index(
    "ix_webhook_endpoints_partner",
    webhook_endpoints.c.partner_id,
    webhook_endpoints.c.created_at,
    webhook_endpoints.c.id,
)

# One row per (event, endpoint, trigger): the delivery queue. The worker claims due rows
# (SKIP LOCKED on PostgreSQL); retries are driven by these rows, never by event creation.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("event_id", sa.String(40), sa.ForeignKey("events.id"), nullable=False),
    sa.Column("endpoint_id", sa.String(40), sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("partner_id", sa.String(40), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),  # event | held | redeliver | replay
    sa.Column("status", sa.String(16), nullable=False),  # pending | succeeded | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
    sa.Column("locked_until", UtcDateTime(), nullable=True),
    sa.Column("locked_by", sa.String(64), nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Column("event_created_at", UtcDateTime(), nullable=False),
    sa.Column("first_attempt_at", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index(
    "ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at
)
sa.Index(
    "ix_webhook_deliveries_endpoint",
    webhook_deliveries.c.endpoint_id,
    webhook_deliveries.c.created_at,
    webhook_deliveries.c.id,
)
sa.Index("ix_webhook_deliveries_event", webhook_deliveries.c.event_id)
# The queue itself: pending deliveries by endpoint, oldest first (the claim's path).
sa.Index(
    "ix_webhook_deliveries_queue",
    webhook_deliveries.c.endpoint_id,
    webhook_deliveries.c.next_attempt_at,
    webhook_deliveries.c.id,
    postgresql_where=sa.text("status = 'pending'"),
    sqlite_where=sa.text("status = 'pending'"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("delivery_id", sa.String(40), sa.ForeignKey("webhook_deliveries.id"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("error_class", sa.String(64), nullable=True),
    sa.Column("response_excerpt", sa.String(1024), nullable=True),
)
sa.Index("ix_webhook_attempts_delivery", webhook_attempts.c.delivery_id)

TABLES = (
    events,
    webhook_endpoints,
    webhook_deliveries,
    webhook_attempts,
)
