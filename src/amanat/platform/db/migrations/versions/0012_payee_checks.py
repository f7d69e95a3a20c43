"""payee checks, the partner setting that requires them, and initiated payments

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 02:56:39.042236

A partner can be made to pay only accounts it checked lately (confirmation of payee):
the checks are kept (the account as its blind index only) and the partner carries the
setting.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import amanat.platform.db.types


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payee_checks',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('account_bidx', sa.String(length=64), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_payee_checks_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payee_checks'))
    )
    with op.batch_alter_table('payee_checks', schema=None) as batch_op:
        batch_op.create_index('ix_payee_checks_partner_account', ['partner_id', 'account_bidx', 'created_at'], unique=False)

    op.create_table('initiated_payments',
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('consent_id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('returned_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['consent_id'], ['consents.id'], name=op.f('fk_initiated_payments_consent_id_consents')),
    sa.PrimaryKeyConstraint('payment_id', name=op.f('pk_initiated_payments'))
    )
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('require_payee_check', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.drop_column('require_payee_check')

    with op.batch_alter_table('payee_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_payee_checks_partner_account')

    op.drop_table('payee_checks')
    op.drop_table('initiated_payments')
