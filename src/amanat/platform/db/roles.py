"""The PostgreSQL application role: everything it needs, and no way to rewrite the audit trail.

Migrations run as the schema owner (``database.migration_url``); the service runs as
``database.app_role``, which may read and write ordinary tables but only read and insert
``audit_log`` and ``audit_seals`` (and move the ``audit_head`` row). Not owning the tables,
it can neither drop their append-only triggers nor truncate them. ``amanat migrate``
re-applies the grants after every upgrade, so tables added later are covered too.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.db.metadata import metadata

APPEND_ONLY_TABLES = ("audit_log", "audit_seals")
HEAD_TABLE = "audit_head"


def _ident(conn: AsyncConnection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


async def create_app_role(conn: AsyncConnection, role: str, password: str | None) -> bool:
    """Create the login role if absent (roles are cluster-wide: another database on the
    same server may have made it first). Returns whether it was created."""
    exists = await conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if exists:
        return False
    quoted = _ident(conn, role)
    # CREATE ROLE takes no bind parameters; the password is quoted as a literal by the driver's
    # own rules, never interpolated raw.
    literal = (
        sa.literal(password, sa.String).compile(
            dialect=conn.dialect, compile_kwargs={"literal_binds": True}
        )
        if password
        else "NULL"
    )
    try:
        await conn.exec_driver_sql(
            f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {literal}"
        )
    except sa.exc.DBAPIError as exc:
        if "already exists" not in str(exc.orig):
            raise
        return False
    return True


async def grant_app_role(conn: AsyncConnection, role: str) -> None:
    """Grant the application role what it needs and nothing more on the audit tables."""
    quoted = _ident(conn, role)
    await conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {quoted}")
    present = set(
        (
            await conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
        ).scalars()
    )
    # Before the first migration there is nothing to grant on yet; migrate grants again.
    tables = [t.name for t in metadata.sorted_tables if t.name in present]
    for name in tables:
        table = _ident(conn, name)
        await conn.exec_driver_sql(f"REVOKE ALL ON {table} FROM {quoted}")
        if name in APPEND_ONLY_TABLES:
            privileges = "SELECT, INSERT"
        elif name == HEAD_TABLE:
            privileges = "SELECT, UPDATE"
        else:
            privileges = "SELECT, INSERT, UPDATE, DELETE"
        await conn.exec_driver_sql(f"GRANT {privileges} ON {table} TO {quoted}")
    if "alembic_version" in present:  # the readiness check reads the schema revision
        await conn.exec_driver_sql(f"GRANT SELECT ON alembic_version TO {quoted}")
    await conn.exec_driver_sql(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}")
