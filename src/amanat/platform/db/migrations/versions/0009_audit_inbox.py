"""audit records are written to an inbox and chained by the sequencer after commit

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 16:30:00.000000

Business transactions no longer lock the single ``audit_head`` row: they insert their
records into ``audit_inbox``, and the sequencer gives them their place in the chain.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import amanat.platform.db.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_inbox',
        sa.Column('pos', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('occurred_at', amanat.platform.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('actor_type', sa.String(length=16), nullable=False),
        sa.Column('actor_id', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('target_type', sa.String(length=32), nullable=True),
        sa.Column('target_id', sa.String(length=64), nullable=True),
        sa.Column('source_ip', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=256), nullable=True),
        sa.Column('request_id', sa.String(length=64), nullable=True),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('pos', name=op.f('pk_audit_inbox')),
        sa.UniqueConstraint('id', name=op.f('uq_audit_inbox_id')),
    )


def downgrade() -> None:
    # Records still waiting would be lost: refuse until the sequencer has chained them.
    waiting = op.get_bind().execute(sa.text('SELECT count(*) FROM audit_inbox')).scalar_one()
    if waiting:
        raise RuntimeError(
            f'audit_inbox holds {waiting} unchained records: run the worker (or '
            '`amanat audit verify`, which chains them) before downgrading'
        )
    op.drop_table('audit_inbox')
