"""trust controls, idempotency and job leases

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 15:03:09.675028
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import amanat.platform.db.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


APPEND_ONLY_PG = """
CREATE OR REPLACE FUNCTION amanat_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def _append_only_up() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(APPEND_ONLY_PG)
        op.execute("CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON "
                   "audit_log FOR EACH ROW EXECUTE FUNCTION amanat_audit_append_only()")
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION amanat_audit_append_only()")
    elif bind.dialect.name == "sqlite":
        op.execute("CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                   "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")
        op.execute("CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
                   "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


def _append_only_down() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS amanat_audit_append_only()")
    elif bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")


def upgrade() -> None:
    _append_only_up()
    op.create_table('audit_seals',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('sealed_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_seals'))
    )
    op.create_table('data_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('wrapped_key', sa.Text(), nullable=True),
    sa.Column('master_key_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_keys'))
    )
    with op.batch_alter_table('data_keys', schema=None) as batch_op:
        batch_op.create_index('ix_data_keys_purpose_status', ['purpose', 'status'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('id', sa.String(length=300), nullable=False),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('response_headers', sa.JSON(), nullable=True),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_created', ['created_at'], unique=False)

    op.create_table('job_leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('leased_until', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_started_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_outcome', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_leases'))
    )
    op.create_table('legal_holds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('data_class', sa.String(length=32), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('released_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_holds'))
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index('ix_legal_holds_target', ['data_class', 'target_id'], unique=False)

    op.create_table('data_subjects',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('partner_id', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('name_enc', sa.Text(), nullable=True),
    sa.Column('iban_enc', sa.Text(), nullable=True),
    sa.Column('raast_id_enc', sa.Text(), nullable=True),
    sa.Column('cnic_enc', sa.Text(), nullable=True),
    sa.Column('iban_bidx', sa.String(length=64), nullable=True),
    sa.Column('raast_id_bidx', sa.String(length=64), nullable=True),
    sa.Column('cnic_bidx', sa.String(length=64), nullable=True),
    sa.Column('bank_code', sa.String(length=4), nullable=True),
    sa.Column('iban_last4', sa.String(length=4), nullable=True),
    sa.Column('created_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('erased_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['key_id'], ['data_keys.id'], name=op.f('fk_data_subjects_key_id_data_keys')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_data_subjects_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_subjects'))
    )
    with op.batch_alter_table('data_subjects', schema=None) as batch_op:
        batch_op.create_index('ix_data_subjects_cnic_bidx', ['cnic_bidx'], unique=False)
        batch_op.create_index('ix_data_subjects_iban_bidx', ['iban_bidx'], unique=False)
        batch_op.create_index('ix_data_subjects_partner_created', ['partner_id', 'created_at'], unique=False)
        batch_op.create_index('ix_data_subjects_raast_id_bidx', ['raast_id_bidx'], unique=False)



def downgrade() -> None:
    _append_only_down()
    with op.batch_alter_table('data_subjects', schema=None) as batch_op:
        batch_op.drop_index('ix_data_subjects_raast_id_bidx')
        batch_op.drop_index('ix_data_subjects_partner_created')
        batch_op.drop_index('ix_data_subjects_iban_bidx')
        batch_op.drop_index('ix_data_subjects_cnic_bidx')

    op.drop_table('data_subjects')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_legal_holds_target')

    op.drop_table('legal_holds')
    op.drop_table('job_leases')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_keys_created')

    op.drop_table('idempotency_keys')
    with op.batch_alter_table('data_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_data_keys_purpose_status')

    op.drop_table('data_keys')
    op.drop_table('audit_seals')
