"""audit seals are append-only, like the log

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 06:30:00

With seals deletable, someone who can write the database could empty ``audit_seals`` and
rewrite the whole chain consistently. The same guard as on ``audit_log`` now refuses UPDATE,
DELETE (and on PostgreSQL TRUNCATE) on ``audit_seals``. Grants to a restricted application
role are applied by ``amanat migrate`` after every upgrade (platform/db/roles.py), so they
also cover tables later migrations add.
"""

from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


APPEND_ONLY_PG = """
CREATE OR REPLACE FUNCTION amanat_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(APPEND_ONLY_PG)
        op.execute("CREATE TRIGGER audit_seals_no_update_delete BEFORE UPDATE OR DELETE ON "
                   "audit_seals FOR EACH ROW EXECUTE FUNCTION amanat_append_only()")
        op.execute("CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON audit_seals "
                   "FOR EACH STATEMENT EXECUTE FUNCTION amanat_append_only()")
    elif bind.dialect.name == "sqlite":
        op.execute("CREATE TRIGGER audit_seals_no_update BEFORE UPDATE ON audit_seals "
                   "BEGIN SELECT RAISE(ABORT, 'audit_seals is append-only'); END")
        op.execute("CREATE TRIGGER audit_seals_no_delete BEFORE DELETE ON audit_seals "
                   "BEGIN SELECT RAISE(ABORT, 'audit_seals is append-only'); END")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_seals_no_update_delete ON audit_seals")
        op.execute("DROP TRIGGER IF EXISTS audit_seals_no_truncate ON audit_seals")
        op.execute("DROP FUNCTION IF EXISTS amanat_append_only()")
    elif bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_seals_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_seals_no_delete")
