"""disputes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 06:57:33.380162

Disputes on payouts and collections with their money (held, released, reversed,
returned), deadlines and sealed response; each dispute's history of transitions; and its
evidence files, kept sealed under the fields key with their SHA-256.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import amanat.platform.db.types


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('disputes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('payment_type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('held_total', sa.BigInteger(), nullable=False),
    sa.Column('released', sa.BigInteger(), nullable=False),
    sa.Column('reversed', sa.BigInteger(), nullable=False),
    sa.Column('returned', sa.BigInteger(), nullable=False),
    sa.Column('opened_by', sa.String(length=16), nullable=False),
    sa.Column('opener_id', sa.String(length=80), nullable=False),
    sa.Column('rail_dispute_id', sa.String(length=64), nullable=True),
    sa.Column('respond_by_date', sa.Date(), nullable=False),
    sa.Column('decide_by_date', sa.Date(), nullable=False),
    sa.Column('response_text', sa.Text(), nullable=True),
    sa.Column('responded_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('responded_by', sa.String(length=16), nullable=True),
    sa.Column('close_note', sa.String(length=500), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes')),
    sa.UniqueConstraint('rail_dispute_id', name=op.f('uq_disputes_rail_dispute_id'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index('ix_disputes_created', ['created_at'], unique=False)
        batch_op.create_index('ix_disputes_partner_created', ['partner_id', 'created_at'], unique=False)
        batch_op.create_index('ix_disputes_payment', ['payment_id'], unique=False)
        batch_op.create_index('ix_disputes_status_respond_by', ['status', 'respond_by_date'], unique=False)

    op.create_table('dispute_evidence',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('dispute_id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('uploaded_by_type', sa.String(length=16), nullable=False),
    sa.Column('uploaded_by_id', sa.String(length=80), nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_dispute_evidence_dispute_id_disputes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispute_evidence'))
    )
    with op.batch_alter_table('dispute_evidence', schema=None) as batch_op:
        batch_op.create_index('ix_dispute_evidence_dispute', ['dispute_id', 'created_at'], unique=False)

    op.create_table('dispute_transitions',
    sa.Column('dispute_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=True),
    sa.Column('to_status', sa.String(length=24), nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('actor_type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=80), nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('journal_ids', sa.JSON(), nullable=False),
    sa.Column('at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_dispute_transitions_dispute_id_disputes')),
    sa.PrimaryKeyConstraint('dispute_id', 'seq', name=op.f('pk_dispute_transitions'))
    )


def downgrade() -> None:
    op.drop_table('dispute_transitions')
    with op.batch_alter_table('dispute_evidence', schema=None) as batch_op:
        batch_op.drop_index('ix_dispute_evidence_dispute')

    op.drop_table('dispute_evidence')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index('ix_disputes_status_respond_by')
        batch_op.drop_index('ix_disputes_payment')
        batch_op.drop_index('ix_disputes_partner_created')
        batch_op.drop_index('ix_disputes_created')

    op.drop_table('disputes')
