"""open banking: consents, PSU authorisation walks and the sandbox bank

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 01:44:51.006338

The consents TPPs ask for and PSUs decide, each PSU's walk through the hosted
authorisation pages, and the sandbox bank behind the CoreBanking port (personal fields
sealed, like every other table's).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import amanat.platform.db.types


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bank_customers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('cnic', sa.Text(), nullable=False),
    sa.Column('mobile', sa.Text(), nullable=False),
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_customers')),
    sa.UniqueConstraint('username', name=op.f('uq_bank_customers_username'))
    )
    op.create_table('bank_accounts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('bank_code', sa.String(length=4), nullable=False),
    sa.Column('iban', sa.Text(), nullable=False),
    sa.Column('iban_bidx', sa.String(length=64), nullable=False),
    sa.Column('iban_last4', sa.String(length=4), nullable=False),
    sa.Column('raast_id', sa.Text(), nullable=True),
    sa.Column('raast_id_bidx', sa.String(length=64), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('account_type', sa.String(length=16), nullable=False),
    sa.Column('subtype', sa.String(length=32), nullable=False),
    sa.Column('nickname', sa.String(length=70), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('booked_minor', sa.BigInteger(), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['bank_customers.id'], name=op.f('fk_bank_accounts_customer_id_bank_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_accounts')),
    sa.UniqueConstraint('iban_bidx', name=op.f('uq_bank_accounts_iban_bidx')),
    sa.UniqueConstraint('raast_id_bidx', name=op.f('uq_bank_accounts_raast_id_bidx'))
    )
    with op.batch_alter_table('bank_accounts', schema=None) as batch_op:
        batch_op.create_index('ix_bank_accounts_customer', ['customer_id'], unique=False)

    op.create_table('consents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('permissions', sa.JSON(), nullable=False),
    sa.Column('expires_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('transactions_from', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('transactions_to', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('psu_id', sa.String(length=40), nullable=True),
    sa.Column('account_ids', sa.JSON(), nullable=False),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('ended_reason', sa.String(length=32), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status_updated_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_consents_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index('ix_consents_psu', ['psu_id', 'created_at'], unique=False)
        batch_op.create_index('ix_consents_status_created', ['status', 'created_at'], unique=False)

    op.create_table('bank_transactions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('booked_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('credit', sa.Boolean(), nullable=False),
    sa.Column('code', sa.String(length=24), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('merchant_name', sa.String(length=140), nullable=True),
    sa.Column('counterparty', sa.Text(), nullable=True),
    sa.Column('balance_after_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['bank_accounts.id'], name=op.f('fk_bank_transactions_account_id_bank_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_transactions'))
    )
    with op.batch_alter_table('bank_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_bank_transactions_account_booked', ['account_id', 'booked_at', 'id'], unique=False)

    op.create_table('psu_authorisations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('consent_id', sa.String(length=40), nullable=True),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2048), nullable=False),
    sa.Column('state', sa.String(length=512), nullable=True),
    sa.Column('scope', sa.String(length=256), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('psu_id', sa.String(length=40), nullable=True),
    sa.Column('otp_hash', sa.String(length=64), nullable=True),
    sa.Column('otp_expires_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consents.id'], name=op.f('fk_psu_authorisations_consent_id_consents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psu_authorisations'))
    )
    with op.batch_alter_table('psu_authorisations', schema=None) as batch_op:
        batch_op.create_index('ix_psu_authorisations_expires', ['expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('psu_authorisations', schema=None) as batch_op:
        batch_op.drop_index('ix_psu_authorisations_expires')

    op.drop_table('psu_authorisations')
    with op.batch_alter_table('bank_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_bank_transactions_account_booked')

    op.drop_table('bank_transactions')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_status_created')
        batch_op.drop_index('ix_consents_psu')

    op.drop_table('consents')
    with op.batch_alter_table('bank_accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_bank_accounts_customer')

    op.drop_table('bank_accounts')
    op.drop_table('bank_customers')
