"""the webhook delivery queue: pending deliveries by endpoint, oldest first

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 23:30:00.000000

A partial index over the pending deliveries only (the queue, not its history): the
claim walks the endpoints that have pending work and takes each one's oldest few from
it, so a claim costs the same with ten or a hundred thousand deliveries waiting.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # Built without blocking writes: every payment that raises an event inserts here.
        with op.get_context().autocommit_block():
            op.create_index(
                'ix_webhook_deliveries_queue',
                'webhook_deliveries',
                ['endpoint_id', 'next_attempt_at', 'id'],
                unique=False,
                postgresql_where=_PENDING,
                postgresql_concurrently=True,
                if_not_exists=True,
            )
        return
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(
            'ix_webhook_deliveries_queue',
            ['endpoint_id', 'next_attempt_at', 'id'],
            unique=False,
            sqlite_where=_PENDING,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.drop_index(
                'ix_webhook_deliveries_queue',
                table_name='webhook_deliveries',
                postgresql_concurrently=True,
                if_exists=True,
            )
        return
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_queue')
