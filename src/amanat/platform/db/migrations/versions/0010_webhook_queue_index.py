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
            # The app's statement and lock timeouts would cancel a long build (it scans the
            # table and waits for older transactions); a cancelled build leaves an invalid
            # index, which is dropped and built again here rather than taken as done.
            op.execute('SET statement_timeout = 0')
            op.execute('SET lock_timeout = 0')
            invalid = op.get_bind().execute(
                sa.text(
                    'SELECT NOT i.indisvalid FROM pg_index i '
                    'JOIN pg_class c ON c.oid = i.indexrelid '
                    "WHERE c.relname = 'ix_webhook_deliveries_queue'"
                )
            ).scalar()
            if invalid:
                op.execute('DROP INDEX CONCURRENTLY IF EXISTS ix_webhook_deliveries_queue')
            op.create_index(
                'ix_webhook_deliveries_queue',
                'webhook_deliveries',
                ['endpoint_id', 'next_attempt_at', 'id'],
                unique=False,
                postgresql_where=_PENDING,
                postgresql_concurrently=True,
                if_not_exists=True,
            )
            op.execute('RESET statement_timeout')
            op.execute('RESET lock_timeout')
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
