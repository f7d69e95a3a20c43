"""Shared fixtures: a migrated database of the kind chosen by ``AMANAT_TEST_DB``.

``make test`` runs the suite once on SQLite and once more (integration, API, e2e) on
PostgreSQL. Each PostgreSQL session creates its own database and drops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path

import certifi
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from amanat.app import create_app
from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import FrozenClock
from amanat.platform.audit.domain import GENESIS_HASH
from amanat.platform.db.metadata import metadata
from amanat.platform.db.migrate import upgrade
from amanat.platform.settings import DatabaseSettings, Settings

pytest_plugins = ["tests.support.hang_watchdog"]

TEST_DB = os.environ.get("AMANAT_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get("AMANAT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_async_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


async def _pg_admin(sql: str) -> None:
    engine = create_async_engine(_pg_async_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(sql))
    finally:
        await engine.dispose()


def make_database(tmp_dir: Path, *, migrate: bool = True) -> tuple[str, object]:
    """Create an empty database of the chosen kind; return its URL and a drop callback."""
    if TEST_DB == "postgresql":
        name = f"amanat_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        url = _pg_async_url(name)

        def drop() -> None:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        url = f"sqlite+aiosqlite:///{tmp_dir / f'amanat-{uuid.uuid4().hex[:8]}.db'}"

        def drop() -> None:
            return None

    if migrate:
        upgrade(url)
    return url, drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, drop = make_database(tmp_path_factory.mktemp("db"))
    yield url
    drop()  # type: ignore[operator]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database=DatabaseSettings(url=database_url),
        auth={"sandbox_credentials_file": tmp_path / "creds.json"},
        http={"max_body_bytes": 64 * 1024},
        crypto={
            "sandbox_master_key_file": tmp_path / "master.key",
            "audit_seal_key_file": tmp_path / "seal.key",
        },
        audit={"witness_file": tmp_path / "witness.jsonl"},
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def container(settings: Settings, clock: FrozenClock) -> AsyncIterator[Container]:
    container = build_container(settings, clock=clock, http=_outbound_http())
    try:
        yield container
    finally:
        await wipe(container)
        await container.close()


@cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())  # what httpx loads by default


def _outbound_http() -> httpx.AsyncClient:
    """The client ``build_container`` makes by default, on one TLS context for the whole
    session: loading the CA bundle for each test's client cost ~30 ms a test."""
    return httpx.AsyncClient(follow_redirects=False, timeout=10.0, verify=_tls_context())


async def wipe(container: Container) -> None:
    """Empty every table between tests, stepping around the audit tables' append-only guard
    the way only a database superuser can. (A test's witness file lives in its tmp_path.)

    One statement finds the tables that hold rows (and whether the audit head moved); only
    those are emptied, so a test that wrote little costs little, and one that wrote nothing
    costs no more than that statement."""
    async with container.db.write() as conn:
        touched = set((await conn.exec_driver_sql(_tables_with_rows(conn.dialect))).scalars())
        if not touched:
            return
        sqlite_triggers: list[str] = []
        if container.db.is_sqlite:
            if touched & _APPEND_ONLY:
                rows = await conn.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type='trigger' "
                    "AND tbl_name IN ('audit_log', 'audit_seals')"
                )
                for name, sql in rows.all():
                    sqlite_triggers.append(sql)
                    await conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        else:
            await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for table in reversed(metadata.sorted_tables):
            if table.name not in touched:
                continue
            if table.name == "audit_head":
                await conn.execute(table.update().values(seq=0, hash=GENESIS_HASH))
            else:
                await conn.execute(table.delete())
        for sql in sqlite_triggers:
            await conn.exec_driver_sql(sql)


_APPEND_ONLY = {"audit_log", "audit_seals"}


def _tables_with_rows(dialect: sa.Dialect) -> str:
    """One query naming every table that holds a row; ``audit_head``, which always holds
    its one row, is named when that row is not the genesis head. Compiled once per kind of
    database: each test's engine starts with an empty statement cache, and compiling this
    query takes ~10 ms."""
    sql = _TABLES_WITH_ROWS.get(dialect.name)
    if sql is None:
        found = []
        for table in metadata.sorted_tables:
            rows = sa.select(sa.literal(1)).select_from(table)
            if table.name == "audit_head":
                rows = rows.where((table.c.seq != 0) | (table.c.hash != GENESIS_HASH))
            found.append(sa.select(sa.literal(table.name, sa.String)).where(rows.exists()))
        query = sa.union_all(*found)
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        _TABLES_WITH_ROWS[dialect.name] = sql
    return sql


_TABLES_WITH_ROWS: dict[str, str] = {}


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container=container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
