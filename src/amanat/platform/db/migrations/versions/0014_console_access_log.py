"""console access log and alert acknowledgements

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 06:41:42.708450

Who looked at what in the operator console (page views, searches, reveals), and the
alerts operators have acknowledged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import amanat.platform.db.types


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_acknowledgements',
    sa.Column('alert_key', sa.String(length=200), nullable=False),
    sa.Column('operator_id', sa.String(length=40), nullable=False),
    sa.Column('operator_name', sa.String(length=200), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('alert_key', name=op.f('pk_alert_acknowledgements'))
    )
    op.create_table('console_access_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('operator_id', sa.String(length=40), nullable=False),
    sa.Column('operator_email', sa.String(length=254), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('screen', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_access_log'))
    )
    with op.batch_alter_table('console_access_log', schema=None) as batch_op:
        batch_op.create_index('ix_console_access_log_at', ['at'], unique=False)
        batch_op.create_index('ix_console_access_log_operator_at', ['operator_id', 'at'], unique=False)
        batch_op.create_index('ix_console_access_log_subject', ['subject'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('console_access_log', schema=None) as batch_op:
        batch_op.drop_index('ix_console_access_log_subject')
        batch_op.drop_index('ix_console_access_log_operator_at')
        batch_op.drop_index('ix_console_access_log_at')

    op.drop_table('console_access_log')
    op.drop_table('alert_acknowledgements')
