"""The job runtime's tables, the outbox and periodic-job leases (SQLAlchemy Core), on the
one shared metadata. Migrations must match these exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

# Leases for periodic jobs, so that of many workers only one runs a given job at a time.
job_leases = sa.Table(
    "job_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("leased_until", UtcDateTime(), nullable=False),
    sa.Column("last_started_at", UtcDateTime(), nullable=True),
    sa.Column("last_finished_at", UtcDateTime(), nullable=True),
    sa.Column("last_outcome", sa.String(500), nullable=True),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject_id", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | done | dead
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("run_at", UtcDateTime(), nullable=False),
    sa.Column("locked_until", UtcDateTime(), nullable=True),
    sa.Column("locked_by", sa.String(64), nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_outbox_due", outbox.c.status, outbox.c.run_at)
# The payments sweeper asks, per payment in flight, whether a job is still pending for it.
sa.Index("ix_outbox_subject_status", outbox.c.subject_id, outbox.c.status)

TABLES = (
    job_leases,
    outbox,
)
