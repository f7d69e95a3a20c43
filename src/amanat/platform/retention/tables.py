"""Retention's tables (SQLAlchemy Core), on the one shared metadata. Migrations must match
these exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

legal_holds = sa.Table(
    "legal_holds",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("data_class", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("released_at", UtcDateTime(), nullable=True),
)
sa.Index("ix_legal_holds_target", legal_holds.c.data_class, legal_holds.c.target_id)

TABLES = (legal_holds,)
