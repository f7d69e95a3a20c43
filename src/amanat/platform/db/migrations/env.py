"""Alembic environment: async engines, batch mode for SQLite, our naming convention.

Alembic runs this file as a script (it is not part of the package): like any entry point
it asks the composition root for every capability's tables, so autogenerate compares the
whole schema."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from amanat.bootstrap import tables
from amanat.platform.db.engine import create_engine
from amanat.platform.db.metadata import metadata
from amanat.platform.settings import DatabaseSettings

config = context.config
tables()  # every capability's tables, on the one metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(DatabaseSettings(url=url))
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async(config.get_main_option("sqlalchemy.url") or ""))
