"""Reconciliation's and settlement's tables (SQLAlchemy Core), on the one shared
metadata. Migrations must match these exactly; a test checks.

``recon_internal`` is reconciliation's own copy of each settled payment (written by its
handler of the payments capability's event, in the payment's transaction), so matching
never reads another capability's tables. ``recon_progress`` says how much of each payment
one source has accounted for: the rail's report and the bank's statement each confirm the
same payments, independently.
"""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

settlement_cycles = sa.Table(
    "settlement_cycles",
    metadata,
    sa.Column("rail", sa.String(16), primary_key=True),
    sa.Column("business_date", sa.Date, primary_key=True),
    sa.Column("window_start", UtcDateTime(), nullable=False),
    sa.Column("window_end", UtcDateTime(), nullable=False),
    sa.Column("settlements", sa.Integer, nullable=False),
    sa.Column("closed_by", sa.String(80), nullable=False),
    sa.Column("closed_at", UtcDateTime(), nullable=False),
)

settlements = sa.Table(
    "settlements",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), nullable=False),
    sa.Column("rail", sa.String(16), nullable=False),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("window_start", UtcDateTime(), nullable=False),
    sa.Column("window_end", UtcDateTime(), nullable=False),
    sa.Column("opening_balance", sa.BigInteger, nullable=False),
    sa.Column("closing_balance", sa.BigInteger, nullable=False),
    sa.Column("gross_collections", sa.BigInteger, nullable=False),
    sa.Column("refunds", sa.BigInteger, nullable=False),
    sa.Column("payouts", sa.BigInteger, nullable=False),
    sa.Column("fees", sa.BigInteger, nullable=False),
    sa.Column("fees_charged", sa.BigInteger, nullable=False),
    sa.Column("fees_carried_forward", sa.BigInteger, nullable=False),
    sa.Column("dispute_holds", sa.BigInteger, nullable=False),
    sa.Column("dispute_reversals", sa.BigInteger, nullable=False),
    sa.Column("adjustments", sa.BigInteger, nullable=False),
    sa.Column("other", sa.BigInteger, nullable=False),
    sa.Column("net", sa.BigInteger, nullable=False),
    sa.Column("line_count", sa.Integer, nullable=False),
    sa.Column("fee_journal_id", sa.String(40), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("partner_id", "rail", "business_date", "currency"),
)
sa.Index("ix_settlements_partner_created", settlements.c.partner_id, settlements.c.created_at)

settlement_lines = sa.Table(
    "settlement_lines",
    metadata,
    sa.Column("settlement_id", sa.String(40), sa.ForeignKey("settlements.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("reference", sa.String(40), nullable=False),
    sa.Column("journal_id", sa.String(40), nullable=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("fee", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
)

recon_sources = sa.Table(
    "recon_sources",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    # Payments settled before this date predate the source's first report: never breaks.
    sa.Column("since", sa.Date, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

recon_imports = sa.Table(
    "recon_imports",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("format", sa.String(24), nullable=False),
    sa.Column("file_name", sa.String(200), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("new_records", sa.Integer, nullable=False),
    sa.Column("matched", sa.Integer, nullable=False),
    sa.Column("breaks_opened", sa.Integer, nullable=False),
    sa.Column("breaks_cleared", sa.Integer, nullable=False),
    sa.Column("as_of", sa.Date, nullable=True),
    sa.Column("imported_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("source", "sha256"),
)
sa.Index("ix_recon_imports_created", recon_imports.c.created_at)

recon_external = sa.Table(
    "recon_external",
    metadata,
    sa.Column("source", sa.String(40), primary_key=True),
    sa.Column("external_id", sa.String(100), primary_key=True),
    sa.Column("import_id", sa.String(40), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("value_date", sa.Date, nullable=True),
    sa.Column("booking_date", sa.Date, nullable=True),
    sa.Column("end_to_end_id", sa.String(64), nullable=True),
    sa.Column("reference", sa.String(140), nullable=True),
    sa.Column("batch_reference", sa.String(64), nullable=True),
    sa.Column("members", sa.JSON, nullable=False),
    sa.Column("fees", sa.BigInteger, nullable=False),
    sa.Column("uetr", sa.String(40), nullable=True),
    sa.Column("location", sa.String(120), nullable=False),
    sa.Column("match_id", sa.String(40), nullable=True),  # null: still open
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_recon_external_open", recon_external.c.source, recon_external.c.match_id)
# A payment's timeline finds the records that name it (reconciliation/timeline.py).
sa.Index("ix_recon_external_e2e", recon_external.c.end_to_end_id)

recon_internal = sa.Table(
    "recon_internal",
    metadata,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("partner_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reference", sa.String(140), nullable=True),
    sa.Column("settled_at", UtcDateTime(), nullable=False),
    sa.Column("settled_on", sa.Date, nullable=False),
)
sa.Index("ix_recon_internal_settled_on", recon_internal.c.settled_on)

recon_progress = sa.Table(
    "recon_progress",
    metadata,
    sa.Column("source", sa.String(40), primary_key=True),
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("matched", sa.BigInteger, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
)

recon_matches = sa.Table(
    "recon_matches",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("import_id", sa.String(40), nullable=True),
    sa.Column("rule", sa.String(24), nullable=False),
    sa.Column("outcome", sa.String(24), nullable=False),
    sa.Column("external_ids", sa.JSON, nullable=False),
    sa.Column("allocations", sa.JSON, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("fees", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_recon_matches_source_created", recon_matches.c.source, recon_matches.c.created_at)

recon_breaks = sa.Table(
    "recon_breaks",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | resolved
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("internal_id", sa.String(40), nullable=True),
    sa.Column("external_id", sa.String(100), nullable=True),
    sa.Column("partner_id", sa.String(40), nullable=True),
    sa.Column("differences", sa.JSON, nullable=False),
    sa.Column("suggested_cause", sa.String(400), nullable=False),
    sa.Column("import_id", sa.String(40), nullable=True),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
    sa.Column("resolved_at", UtcDateTime(), nullable=True),
    sa.Column("resolved_by", sa.String(80), nullable=True),
    sa.Column("resolution", sa.String(24), nullable=True),
    sa.Column("reason", sa.String(500), nullable=True),
    sa.Column("journal_id", sa.String(40), nullable=True),
    sa.Column("match_id", sa.String(40), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
)
sa.Index("ix_recon_breaks_status_opened", recon_breaks.c.status, recon_breaks.c.opened_at)
sa.Index("ix_recon_breaks_internal", recon_breaks.c.internal_id)

TABLES = (
    settlement_cycles,
    settlements,
    settlement_lines,
    recon_sources,
    recon_imports,
    recon_external,
    recon_internal,
    recon_progress,
    recon_matches,
    recon_breaks,
)
