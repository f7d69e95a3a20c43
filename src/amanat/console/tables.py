"""The console's own table (SQLAlchemy Core), on the one shared metadata: which alerts an
operator has taken in hand. Migrations must match it exactly; a test checks. (Who looked
at what is the platform's access log, :mod:`amanat.platform.access_log`.)"""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

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

TABLES = (alert_acknowledgements,)
