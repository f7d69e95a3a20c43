"""partners.rate_limits: an operator's per-partner rate-limit quotas

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('partners') as batch_op:
        batch_op.add_column(sa.Column('rate_limits', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('partners') as batch_op:
        batch_op.drop_column('rate_limits')
