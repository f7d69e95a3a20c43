"""The audit trail's tables (SQLAlchemy Core), on the one shared metadata. Migrations must match
these exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime


def _record_columns() -> list[sa.Column[object]]:
    """What a record says, the same in the inbox and in the chain."""
    return [
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("source_ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(256), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
    ]


# Append-only record of every privileged action. Rows are never updated or deleted.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    *_record_columns(),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
sa.Index("ix_audit_log_target", audit_log.c.target_type, audit_log.c.target_id)
sa.Index("ix_audit_log_action_time", audit_log.c.action, audit_log.c.occurred_at)
# A transaction's timeline asks for the records about one id, whatever its target type.
sa.Index("ix_audit_log_target_id", audit_log.c.target_id)

# Records committed by business transactions and not yet chained. A business transaction
# only INSERTs here (no shared row, no lock); the sequencer moves each record into
# ``audit_log`` with its sequence number and hash, in the order it finds them committed.
audit_inbox = sa.Table(
    "audit_inbox",
    metadata,
    sa.Column(
        "pos",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    *_record_columns(),
)

# The chain head: one row, locked by the sequencer (and the sealer) so the chain never forks.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# Signed checkpoints of the audit chain head (Ed25519), exportable outside the database.
audit_seals = sa.Table(
    "audit_seals",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("sealed_at", UtcDateTime(), nullable=False),
)

TABLES = (
    audit_log,
    audit_inbox,
    audit_head,
    audit_seals,
)
