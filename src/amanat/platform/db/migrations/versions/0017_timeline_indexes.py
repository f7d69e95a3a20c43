"""indexes for a transaction's timeline and support's search

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 09:00:00.000000

Support finds a payment by the customer (counterparty), the partner's or the rail's
reference, a consent by partner; a timeline reads the audit records about one id whatever
their target type, the reconciliation records naming a payment, and the payments
initiated under a consent. Plain indexes, created outside batch mode so that SQLite never
rebuilds a table (audit_log's append-only triggers stay as they are).
"""

from __future__ import annotations

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_payments_counterparty', 'payments', ['counterparty_id', 'created_at']),
    ('ix_payments_reference', 'payments', ['reference']),
    ('ix_payments_rail_reference', 'payments', ['rail_reference']),
    ('ix_audit_log_target_id', 'audit_log', ['target_id']),
    ('ix_recon_external_e2e', 'recon_external', ['end_to_end_id']),
    ('ix_consents_partner_created', 'consents', ['partner_id', 'created_at']),
    ('ix_initiated_payments_consent', 'initiated_payments', ['consent_id']),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
