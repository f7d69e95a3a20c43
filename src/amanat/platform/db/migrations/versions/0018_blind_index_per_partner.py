"""data subjects' blind indexes indexed with the partner

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 21:10:00.000000

A payout finds its creditor's record by (blind index, partner). With an index of the blind
index alone, a payee on file with many partners (a popular biller, the bench's one IBAN
paid by a thousand merchants) made every lookup read all of their records. Each index
becomes (blind index, partner_id); lookups by the blind index alone still use its prefix.
Plain indexes, outside batch mode, so SQLite never rebuilds the table.
"""

from __future__ import annotations

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

FIELDS = ('iban', 'raast_id', 'cnic')


def upgrade() -> None:
    for field in FIELDS:
        op.create_index(
            f'ix_data_subjects_{field}_bidx_partner',
            'data_subjects',
            [f'{field}_bidx', 'partner_id'],
            unique=False,
        )
        op.drop_index(f'ix_data_subjects_{field}_bidx', table_name='data_subjects')


def downgrade() -> None:
    for field in reversed(FIELDS):
        op.create_index(
            f'ix_data_subjects_{field}_bidx', 'data_subjects', [f'{field}_bidx'], unique=False
        )
        op.drop_index(f'ix_data_subjects_{field}_bidx_partner', table_name='data_subjects')
