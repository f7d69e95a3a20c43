"""Payments' tables (SQLAlchemy Core), on the one shared metadata. Migrations must match
these exactly; a test checks."""

from __future__ import annotations

import sqlalchemy as sa

from amanat.platform.db.metadata import metadata
from amanat.platform.db.types import UtcDateTime

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # also the rail's end-to-end id
    sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("client_id", sa.String(40), nullable=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("counterparty_id", sa.String(40), sa.ForeignKey("data_subjects.id"), nullable=False),
    sa.Column("counterparty_kind", sa.String(16), nullable=False),
    sa.Column("bank_code", sa.String(4), nullable=True),
    sa.Column("iban_last4", sa.String(4), nullable=True),
    sa.Column("reference", sa.String(140), nullable=True),
    sa.Column("description", sa.Text, nullable=True),  # encrypted: free text a person wrote
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("failure_code", sa.String(64), nullable=True),
    sa.Column("failure_message", sa.String(500), nullable=True),
    sa.Column("rail_reference", sa.String(64), nullable=True),
    sa.Column("rail_sequence", sa.Integer, nullable=False),
    sa.Column("submitted_at", UtcDateTime(), nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("refunded_amount", sa.BigInteger, nullable=False),
    sa.Column("parent_id", sa.String(40), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_payments_partner_created", payments.c.partner_id, payments.c.created_at, payments.c.id)
sa.Index("ix_payments_status_updated", payments.c.status, payments.c.updated_at)
sa.Index("ix_payments_parent", payments.c.parent_id)
# Support's search (payments/timeline.py): by customer, by the partner's or the rail's reference.
sa.Index("ix_payments_counterparty", payments.c.counterparty_id, payments.c.created_at)
sa.Index("ix_payments_reference", payments.c.reference)
sa.Index("ix_payments_rail_reference", payments.c.rail_reference)

payment_transitions = sa.Table(
    "payment_transitions",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("payment_id", sa.String(40), sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("from_status", sa.String(24), nullable=True),
    sa.Column("to_status", sa.String(24), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("cause", sa.String(200), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
)
sa.Index("ix_payment_transitions_payment", payment_transitions.c.payment_id)

ledger_accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("shards", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

ledger_journals = sa.Table(
    "ledger_journals",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("reference", sa.String(40), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_ledger_journals_reference", ledger_journals.c.reference)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("journal_id", sa.String(40), sa.ForeignKey("ledger_journals.id"), nullable=False),
    sa.Column("account_id", sa.String(80), sa.ForeignKey("ledger_accounts.id"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),  # + debit, - credit
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_ledger_entries_account", ledger_entries.c.account_id)
sa.Index("ix_ledger_entries_journal", ledger_entries.c.journal_id)

# A merchant balance is split into shards so concurrent payouts of one busy merchant
# update different rows; the entries above stay the source of truth.
balance_shards = sa.Table(
    "balance_shards",
    metadata,
    sa.Column("account_id", sa.String(80), sa.ForeignKey("ledger_accounts.id"), primary_key=True),
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("posted", sa.BigInteger, nullable=False),  # credit-normal balance
    sa.Column("held", sa.BigInteger, nullable=False),
    sa.CheckConstraint("posted - held >= 0", name="available_not_negative"),
    sa.CheckConstraint("held >= 0", name="held_not_negative"),
)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # the payment or refund id
    sa.Column("account_id", sa.String(80), sa.ForeignKey("ledger_accounts.id"), nullable=False),
    sa.Column("shard", sa.Integer, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # active | posted | voided
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("closed_at", UtcDateTime(), nullable=True),
)
sa.Index("ix_holds_account_status", holds.c.account_id, holds.c.status)

rail_events = sa.Table(
    "rail_events",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("end_to_end_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(64), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
)
sa.Index("ix_rail_events_e2e", rail_events.c.end_to_end_id)

rejected_callbacks = sa.Table(
    "rejected_callbacks",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("rail", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("source_ip", sa.String(64), nullable=True),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
)

TABLES = (
    payments,
    payment_transitions,
    ledger_accounts,
    ledger_journals,
    ledger_entries,
    balance_shards,
    holds,
    rail_events,
    rejected_callbacks,
)
