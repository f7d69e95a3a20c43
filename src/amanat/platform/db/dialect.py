"""The statements whose spelling differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

import base64
import functools
import hashlib
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


def column_width(column: sa.Column[Any]) -> int:
    """The declared length of a string column."""
    length = getattr(column.type, "length", None)
    assert isinstance(length, int)
    return length


def storable(value: str) -> bool:
    """PostgreSQL text cannot hold NUL: a value containing one cannot match a stored row,
    and sending it would fail the statement ("invalid byte sequence for encoding")."""
    return "\x00" not in value


def stored_key(value: str, width: int) -> str:
    """A presented id as stored: as-is when it fits the column (and holds no NUL), else a
    fixed-width digest.

    Our own ids are short; another issuer's ``jti`` (or a client's assertion ``jti``) can
    be longer than the column, which PostgreSQL would refuse. Our own jtis are base64url
    and never start with ``~``; for a stored short id to equal a digest, its issuer would
    need a SHA-256 preimage.
    """
    if len(value) <= width and storable(value):
        return value
    digest = base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest())
    return "~" + digest.decode("ascii").rstrip("=")


async def advisory_xact_lock(conn: AsyncConnection, key: str) -> None:
    """Hold ``key`` until the transaction ends, on every machine (PostgreSQL's advisory
    lock, keyed by the name's digest). SQLite's single writer already serialises."""
    if conn.dialect.name == "sqlite":
        return
    number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})
