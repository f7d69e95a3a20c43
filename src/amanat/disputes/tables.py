"""Disputes' tables (SQLAlchemy Core), on the one shared metadata. Migrations must match
these exactly; a test checks.

``disputes.response_text`` and ``dispute_evidence.content`` hold ciphertexts under the
fields key (the merchant's explanation and the evidence files can name people), so key
rotation re-encrypts them (disputes/wiring.py registers both columns).
"""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

disputes = sa.Table(
    "disputes",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), nullable=False),
    sa.Column("payment_id", sa.String(40), nullable=False),
    sa.Column("payment_type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    # The money it moved (domain/disputes.py, Funds).
    sa.Column("held_total", sa.BigInteger, nullable=False),
    sa.Column("released", sa.BigInteger, nullable=False),
    sa.Column("reversed", sa.BigInteger, nullable=False),
    sa.Column("returned", sa.BigInteger, nullable=False),
    sa.Column("opened_by", sa.String(16), nullable=False),
    sa.Column("opener_id", sa.String(80), nullable=False),
    sa.Column("rail_dispute_id", sa.String(64), nullable=True),
    sa.Column("respond_by_date", sa.Date, nullable=False),
    sa.Column("decide_by_date", sa.Date, nullable=False),
    sa.Column("response_text", sa.Text, nullable=True),
    sa.Column("responded_at", UtcDateTime(), nullable=True),
    sa.Column("responded_by", sa.String(16), nullable=True),
    sa.Column("close_note", sa.String(500), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("closed_at", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("rail_dispute_id"),
)
sa.Index("ix_disputes_partner_created", disputes.c.partner_id, disputes.c.created_at)
sa.Index("ix_disputes_created", disputes.c.created_at)
sa.Index("ix_disputes_payment", disputes.c.payment_id)
sa.Index("ix_disputes_status_respond_by", disputes.c.status, disputes.c.respond_by_date)

dispute_transitions = sa.Table(
    "dispute_transitions",
    metadata,
    sa.Column("dispute_id", sa.String(40), sa.ForeignKey("disputes.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("from_status", sa.String(24), nullable=True),
    sa.Column("to_status", sa.String(24), nullable=False),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("actor_type", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(80), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),
    sa.Column("journal_ids", sa.JSON, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
)

dispute_evidence = sa.Table(
    "dispute_evidence",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("dispute_id", sa.String(40), sa.ForeignKey("disputes.id"), nullable=False),
    sa.Column("partner_id", sa.String(40), nullable=False),
    sa.Column("content_type", sa.String(40), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("uploaded_by_type", sa.String(16), nullable=False),
    sa.Column("uploaded_by_id", sa.String(80), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index(
    "ix_dispute_evidence_dispute", dispute_evidence.c.dispute_id, dispute_evidence.c.created_at
)

TABLES = (disputes, dispute_transitions, dispute_evidence)
