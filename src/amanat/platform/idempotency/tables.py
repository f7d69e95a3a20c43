"""Stored idempotent responses (SQLAlchemy Core), on the one shared metadata. Migrations must match
these exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

# Idempotency-Key records of the partner API: one per (client, key).
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),  # "<client_id>:<key>"
    sa.Column("client_id", sa.String(40), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # in_progress | completed
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),  # encrypted: it echoes personal data
    sa.Column("response_headers", sa.JSON, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("locked_until", UtcDateTime(), nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    # What the request created (a payment id…), so a transaction's timeline can show the
    # API requests behind it, and how often the stored answer was replayed since.
    sa.Column("resource_id", sa.String(64), nullable=True),
    sa.Column("replays", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_replayed_at", UtcDateTime(), nullable=True),
    # Room on each page for a row's replay-count update in place (migration 0019).
    postgresql_with={"fillfactor": 80},
)
sa.Index("ix_idempotency_keys_created", idempotency_keys.c.created_at)
sa.Index("ix_idempotency_keys_resource", idempotency_keys.c.resource_id)

TABLES = (idempotency_keys,)
