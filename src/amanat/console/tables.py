"""The console's own tables (SQLAlchemy Core), on the one shared metadata: who looked at
what, and which alerts an operator has taken in hand. Migrations must match these
exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

# Every page an operator views and every search they make: identity, time, address and
# what was viewed. Searches by a personal identifier record its kind and a masked form,
# never the value. High volume, so kept apart from the audit chain; reveals of personal
# data go to the audit chain as well.
console_access_log = sa.Table(
    "console_access_log",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("operator_id", sa.String(40), nullable=False),
    sa.Column("operator_email", sa.String(254), nullable=False),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(200), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("action", sa.String(24), nullable=False),  # view | search | reveal | action
    sa.Column("screen", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(200), nullable=True),
    sa.Column("detail", sa.String(500), nullable=True),
)
sa.Index("ix_console_access_log_at", console_access_log.c.at)
sa.Index(
    "ix_console_access_log_operator_at", console_access_log.c.operator_id, console_access_log.c.at
)
sa.Index("ix_console_access_log_subject", console_access_log.c.subject)

# An alert an operator has acknowledged (taken in hand), with their name and note. An
# alert is named by a stable key (``payment_stuck:pay_…``) so it stays acknowledged while
# the condition lasts and a new occurrence is a new key.
alert_acknowledgements = sa.Table(
    "alert_acknowledgements",
    metadata,
    sa.Column("alert_key", sa.String(200), primary_key=True),
    sa.Column("operator_id", sa.String(40), nullable=False),
    sa.Column("operator_name", sa.String(200), nullable=False),
    sa.Column("note", sa.String(1000), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
)

TABLES = (console_access_log, alert_acknowledgements)
