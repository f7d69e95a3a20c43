"""The two statements whose spelling differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection


@functools.cache
def _on_conflict_do_nothing(dialect: str, table: sa.Table) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return insert(table).on_conflict_do_nothing()


def insert_if_absent(conn: AsyncConnection, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: of two racing inserts of one key, one wins and the
    other inserts nothing (``rowcount`` 0) instead of failing with a unique violation.

    Execute it with the row as parameters. The statement is built once per table (and
    dialect): see :mod:`amanat.platform.db` for why."""
    return _on_conflict_do_nothing(conn.dialect.name, table)


def locked(stmt: Any, conn: AsyncConnection) -> Any:
    """SELECT … FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the lock."""
    return stmt if conn.dialect.name == "sqlite" else stmt.with_for_update()
