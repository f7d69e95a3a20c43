"""idempotency keys' pages keep room for their replay counts

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 21:05:00.000000

A key's row is written once, completed, by the request (or the payout batch) that
claimed it, and then updated each time its stored answer is replayed (the replay count,
platform/idempotency/replay_counts.py). Pages filled to the brim leave no room on the
row's own page for the updated version, so each count moved the row to another page and
added an entry to each of the table's indexes. Leaving a fifth of each new page free lets
most counts update the row in place (a heap-only tuple: no index entry), and PostgreSQL
prunes the old versions on the page sooner. Existing pages keep their fill; only pages
written from now on leave the room. SQLite has no such setting.
"""

from __future__ import annotations

from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

FILLFACTOR = 80


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'ALTER TABLE idempotency_keys SET (fillfactor = {FILLFACTOR})')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE idempotency_keys RESET (fillfactor)')
