"""idempotency resource and replays

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 06:43:22.464982

What an idempotent request created, and how often its stored answer was replayed: the
API-request entries of a transaction's timeline.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import amanat.platform.db.types


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resource_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('replays', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_replayed_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_idempotency_keys_resource', ['resource_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_keys_resource')
        batch_op.drop_column('last_replayed_at')
        batch_op.drop_column('replays')
        batch_op.drop_column('resource_id')

