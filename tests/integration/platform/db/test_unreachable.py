"""A database that cannot be reached, refuses sessions for now, or drops a connection
mid-request answers 503 with Retry-After (Unavailable), not 500; a misconfiguration (a
database that does not exist) stays an error, not something to retry."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB
from tests.support.pg_backends import end_backends, hear_termination_notice

from amanat.bootstrap import Container
from amanat.kernel.errors import Unavailable
from amanat.platform.db.database import Database, pooled_connection
from amanat.platform.db.engine import create_engine
from amanat.platform.db.raw_read import RawRead

pytestmark = pytest.mark.skipif(TEST_DB != "postgresql", reason="a server to lose: PostgreSQL")

_ONE = RawRead(sa.select(sa.literal(1).label("one")))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database(container: Container, url: str) -> Database:
    return Database(create_engine(container.settings.database.model_copy(update={"url": url})))


async def test_a_server_that_does_not_answer_is_unavailable(container: Container) -> None:
    url = container.db.engine.url.set(port=_free_port()).render_as_string(hide_password=False)
    db = _database(container, url)
    try:
        for open_ in (db.lookup, db.write, db.read):
            with pytest.raises(Unavailable):
                async with open_():
                    pass
    finally:
        await db.dispose()


async def test_a_database_that_does_not_exist_is_not_retried(container: Container) -> None:
    url = container.db.engine.url.set(database="amanat_no_such_db").render_as_string(
        hide_password=False
    )
    db = _database(container, url)
    try:
        with pytest.raises(Exception) as raised:  # the driver's, whichever it is
            async with db.lookup():
                pass
        assert not isinstance(raised.value, Unavailable)
    finally:
        await db.dispose()


@pytest.mark.parametrize("path", ["sqlalchemy", "raw"])
async def test_a_connection_lost_mid_request_is_unavailable_and_the_next_works(
    container: Container, path: str
) -> None:
    for open_ in (container.db.write, container.db.lookup):
        with pytest.raises(Unavailable):
            async with open_() as conn:
                pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
                await end_backends(container.db.engine, [int(pid)])
                if path == "raw":
                    await _ONE.first(conn, {})
                else:
                    await conn.execute(sa.text("SELECT 1"))
        async with container.db.lookup() as conn:
            assert (await _ONE.first(conn, {})) == (1,)


async def test_a_stale_connection_a_raw_statements_begin_finds_is_unavailable_and_replaced(
    container: Container,
) -> None:
    """A raw statement first in its transaction sends BEGIN itself: on a connection whose
    backend ended (a restart), that BEGIN is what fails, and it fails as any lost
    connection does."""
    for open_ in (container.db.read, container.db.write):
        with pytest.raises(Unavailable):
            async with open_() as conn:
                driver = (await pooled_connection(conn)).driver_connection
                await end_backends(container.db.engine, [driver.get_server_pid()])
                await _ONE.first(conn, {})
        async with open_() as conn:
            assert (await _ONE.first(conn, {})) == (1,)


@pytest.mark.parametrize("path", ["sqlalchemy", "raw"])
async def test_a_termination_notice_read_before_the_socket_closes_is_a_lost_connection(
    container: Container, path: str
) -> None:
    """A restart's notice reaches asyncpg a moment before the socket's end: a statement
    sent in between finds the connection open but its protocol waiting for a sync that
    never comes (asyncpg's InternalClientError). That is a lost connection like any
    other: 503, the connection and the pool's older ones replaced, the next request
    served; never a 500 with the broken connection handed out again."""
    for open_ in (container.db.write, container.db.read, container.db.lookup):
        with pytest.raises(Unavailable):
            async with open_() as conn:
                driver = (await pooled_connection(conn)).driver_connection
                await conn.exec_driver_sql("SELECT 1")  # BEGIN, where there is one
                hear_termination_notice(driver)
                if path == "raw":
                    await _ONE.first(conn, {})
                else:
                    await conn.execute(sa.text("SELECT 1"))
        assert driver.is_closed(), "the broken connection was closed, not pooled"
        for _ in range(container.settings.database.pool_size + 1):
            async with open_() as conn:
                assert (await _ONE.first(conn, {})) == (1,)
                assert (await pooled_connection(conn)).driver_connection is not driver
