"""settlement and reconciliation

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 04:35:48.180944

Settlement cycles and each merchant's settlement with its lines; the reports imported
for reconciliation, amanat's copy of each settled payment, how far each source has
accounted for it, the matches made and the breaks opened and resolved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import amanat.platform.db.types


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recon_breaks',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('internal_id', sa.String(length=40), nullable=True),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.Column('partner_id', sa.String(length=40), nullable=True),
    sa.Column('differences', sa.JSON(), nullable=False),
    sa.Column('suggested_cause', sa.String(length=400), nullable=False),
    sa.Column('import_id', sa.String(length=40), nullable=True),
    sa.Column('opened_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=80), nullable=True),
    sa.Column('resolution', sa.String(length=24), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('journal_id', sa.String(length=40), nullable=True),
    sa.Column('match_id', sa.String(length=40), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recon_breaks'))
    )
    with op.batch_alter_table('recon_breaks', schema=None) as batch_op:
        batch_op.create_index('ix_recon_breaks_internal', ['internal_id'], unique=False)
        batch_op.create_index('ix_recon_breaks_status_opened', ['status', 'opened_at'], unique=False)

    op.create_table('recon_external',
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('import_id', sa.String(length=40), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('value_date', sa.Date(), nullable=True),
    sa.Column('booking_date', sa.Date(), nullable=True),
    sa.Column('end_to_end_id', sa.String(length=64), nullable=True),
    sa.Column('reference', sa.String(length=140), nullable=True),
    sa.Column('batch_reference', sa.String(length=64), nullable=True),
    sa.Column('members', sa.JSON(), nullable=False),
    sa.Column('fees', sa.BigInteger(), nullable=False),
    sa.Column('uetr', sa.String(length=40), nullable=True),
    sa.Column('location', sa.String(length=120), nullable=False),
    sa.Column('match_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'external_id', name=op.f('pk_recon_external'))
    )
    with op.batch_alter_table('recon_external', schema=None) as batch_op:
        batch_op.create_index('ix_recon_external_open', ['source', 'match_id'], unique=False)

    op.create_table('recon_imports',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('format', sa.String(length=24), nullable=False),
    sa.Column('file_name', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('new_records', sa.Integer(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('breaks_opened', sa.Integer(), nullable=False),
    sa.Column('breaks_cleared', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=True),
    sa.Column('imported_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recon_imports')),
    sa.UniqueConstraint('source', 'sha256', name=op.f('uq_recon_imports_source'))
    )
    with op.batch_alter_table('recon_imports', schema=None) as batch_op:
        batch_op.create_index('ix_recon_imports_created', ['created_at'], unique=False)

    op.create_table('recon_internal',
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reference', sa.String(length=140), nullable=True),
    sa.Column('settled_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('settled_on', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('payment_id', name=op.f('pk_recon_internal'))
    )
    with op.batch_alter_table('recon_internal', schema=None) as batch_op:
        batch_op.create_index('ix_recon_internal_settled_on', ['settled_on'], unique=False)

    op.create_table('recon_matches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('import_id', sa.String(length=40), nullable=True),
    sa.Column('rule', sa.String(length=24), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('external_ids', sa.JSON(), nullable=False),
    sa.Column('allocations', sa.JSON(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('fees', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recon_matches'))
    )
    with op.batch_alter_table('recon_matches', schema=None) as batch_op:
        batch_op.create_index('ix_recon_matches_source_created', ['source', 'created_at'], unique=False)

    op.create_table('recon_progress',
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('matched', sa.BigInteger(), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'payment_id', name=op.f('pk_recon_progress'))
    )
    op.create_table('recon_sources',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('since', sa.Date(), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_recon_sources'))
    )
    op.create_table('settlement_cycles',
    sa.Column('rail', sa.String(length=16), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('window_start', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('window_end', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('settlements', sa.Integer(), nullable=False),
    sa.Column('closed_by', sa.String(length=80), nullable=False),
    sa.Column('closed_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('rail', 'business_date', name=op.f('pk_settlement_cycles'))
    )
    op.create_table('settlements',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('rail', sa.String(length=16), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('window_start', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('window_end', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('opening_balance', sa.BigInteger(), nullable=False),
    sa.Column('closing_balance', sa.BigInteger(), nullable=False),
    sa.Column('gross_collections', sa.BigInteger(), nullable=False),
    sa.Column('refunds', sa.BigInteger(), nullable=False),
    sa.Column('payouts', sa.BigInteger(), nullable=False),
    sa.Column('fees', sa.BigInteger(), nullable=False),
    sa.Column('fees_charged', sa.BigInteger(), nullable=False),
    sa.Column('fees_carried_forward', sa.BigInteger(), nullable=False),
    sa.Column('dispute_holds', sa.BigInteger(), nullable=False),
    sa.Column('dispute_reversals', sa.BigInteger(), nullable=False),
    sa.Column('adjustments', sa.BigInteger(), nullable=False),
    sa.Column('other', sa.BigInteger(), nullable=False),
    sa.Column('net', sa.BigInteger(), nullable=False),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.Column('fee_journal_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlements')),
    sa.UniqueConstraint('partner_id', 'rail', 'business_date', 'currency', name=op.f('uq_settlements_partner_id'))
    )
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.create_index('ix_settlements_partner_created', ['partner_id', 'created_at'], unique=False)

    op.create_table('settlement_lines',
    sa.Column('settlement_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('journal_id', sa.String(length=40), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['settlement_id'], ['settlements.id'], name=op.f('fk_settlement_lines_settlement_id_settlements')),
    sa.PrimaryKeyConstraint('settlement_id', 'seq', name=op.f('pk_settlement_lines'))
    )


def downgrade() -> None:
    op.drop_table('settlement_lines')
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_index('ix_settlements_partner_created')

    op.drop_table('settlements')
    op.drop_table('settlement_cycles')
    op.drop_table('recon_sources')
    op.drop_table('recon_progress')
    with op.batch_alter_table('recon_matches', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_matches_source_created')

    op.drop_table('recon_matches')
    with op.batch_alter_table('recon_internal', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_internal_settled_on')

    op.drop_table('recon_internal')
    with op.batch_alter_table('recon_imports', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_imports_created')

    op.drop_table('recon_imports')
    with op.batch_alter_table('recon_external', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_external_open')

    op.drop_table('recon_external')
    with op.batch_alter_table('recon_breaks', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_breaks_status_opened')
        batch_op.drop_index('ix_recon_breaks_internal')

    op.drop_table('recon_breaks')
