"""The two statements whose spelling differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_if_absent(conn: AsyncConnection, table: sa.Table, **values: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: of two racing inserts of one key, one wins and the
    other inserts nothing (``rowcount`` 0) instead of failing with a unique violation."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
    return insert(table).values(**values).on_conflict_do_nothing()


def locked(stmt: Any, conn: AsyncConnection) -> Any:
    """SELECT … FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the lock."""
    return stmt if conn.dialect.name == "sqlite" else stmt.with_for_update()
