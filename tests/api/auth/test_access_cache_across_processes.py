"""Two API processes on one PostgreSQL database (two containers in this test): the token
check's cache in one never serves what another has just disabled, revoked or changed.

Each change is made in container A; container B, which has already cached the client,
must refuse (or apply) it on its very next request once the change's notification has
reached it. ``barrier()`` waits for exactly that (a notification of B's own, sent after
the change committed, comes back after it), so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from tests.conftest import TEST_DB
from tests.support.oauth import ACTOR, RegisteredClient, bearer, make_client, revoke

from amanat.app import create_app
from amanat.bootstrap import Container, build_container
from amanat.identity import store as identity_store
from amanat.identity.tables import oauth_clients
from amanat.kernel.clock import FrozenClock
from amanat.platform.invalidation.listener import APPLICATION_NAME, PostgresChangeFeed
from amanat.platform.invalidation.ports import ChangeFeed
from amanat.platform.settings import Settings

pytestmark = pytest.mark.skipif(TEST_DB != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's")

BALANCE = "/v1/balance"
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
async def other(settings: Settings, clock: FrozenClock) -> AsyncIterator[Container]:
    """A second API process on the same database."""
    container = build_container(settings, clock=clock)
    try:
        yield container
    finally:
        await container.close()


async def _http(container: Container) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(container=container))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _feed(container: Container) -> PostgresChangeFeed:
    feed = container.services.get(ChangeFeed)
    assert isinstance(feed, PostgresChangeFeed)
    return feed


class AccessReads:
    """Counts the token check's reads of clients and partners on one container."""

    def __init__(self, container: Container) -> None:
        self.count = 0
        self.engine = container.db.engine.sync_engine
        _COUNTING.append(self)


_COUNTING: list[AccessReads] = []


@pytest.fixture(autouse=True)
def _count_access_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The read goes through the driver directly (raw_read.py), past SQLAlchemy's
    events: count the statement's own calls, by the engine they ran on."""
    first = identity_store._ACCESS_OF.first

    async def counted(conn: AsyncConnection, params: Mapping[str, Any]) -> Any:
        for reads in _COUNTING:
            # By pool: a lookup runs on an engine with options (the lookup lane's).
            reads.count += conn.sync_engine.pool is reads.engine.pool
        return await first(conn, params)

    monkeypatch.setattr(identity_store._ACCESS_OF, "first", counted)
    yield
    _COUNTING.clear()


async def _cached_in(other: Container, http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """B serves the token from its cache: live feed, and no read for a second request."""
    await _feed(other).wait_live()
    reads = AccessReads(other)
    for _ in range(3):
        assert (await http.get(BALANCE, headers=auth)).status_code == 200
    assert reads.count <= 1  # the first may still read (and remember) the client
    before = reads.count
    assert (await http.get(BALANCE, headers=auth)).status_code == 200
    assert reads.count == before


@pytest.fixture
async def setup(
    client: httpx.AsyncClient, container: Container, other: Container
) -> AsyncIterator[tuple[RegisteredClient, dict[str, str], httpx.AsyncClient]]:
    merchant = await make_client(container, name="Cached")
    auth = await bearer(client, merchant, scope="balance:read")
    async with await _http(other) as http_b:
        await _cached_in(other, http_b, auth)
        yield merchant, auth, http_b


async def test_a_client_revoked_in_one_process_is_refused_by_the_other(
    container: Container,
    other: Container,
    setup: tuple[RegisteredClient, dict[str, str], httpx.AsyncClient],
) -> None:
    merchant, auth, http_b = setup
    await container.partners.revoke_client(ACTOR, merchant.id)
    await _feed(other).barrier()
    assert (await http_b.get(BALANCE, headers=auth)).status_code == 401


async def test_a_partner_suspended_in_one_process_is_refused_by_the_other(
    container: Container,
    other: Container,
    setup: tuple[RegisteredClient, dict[str, str], httpx.AsyncClient],
) -> None:
    merchant, auth, http_b = setup
    await container.partners.set_partner_status(ACTOR, merchant.partner.id, "suspended")
    await _feed(other).barrier()
    assert (await http_b.get(BALANCE, headers=auth)).status_code == 401
    await container.partners.set_partner_status(ACTOR, merchant.partner.id, "active")
    await _feed(other).barrier()
    assert (await http_b.get(BALANCE, headers=auth)).status_code == 200


async def test_a_token_revoked_in_one_process_is_refused_by_the_other(
    client: httpx.AsyncClient,
    other: Container,
    setup: tuple[RegisteredClient, dict[str, str], httpx.AsyncClient],
) -> None:
    merchant, auth, http_b = setup
    token = auth["Authorization"].removeprefix("Bearer ")
    assert (await revoke(client, merchant, token)).status_code == 200
    await _feed(other).barrier()
    assert (await http_b.get(BALANCE, headers=auth)).status_code == 401
    # Another token of the same client is still good.
    fresh = await bearer(client, merchant, scope="balance:read")
    assert (await http_b.get(BALANCE, headers=fresh)).status_code == 200


async def test_a_quota_changed_in_one_process_applies_in_the_other(
    container: Container,
    other: Container,
    setup: tuple[RegisteredClient, dict[str, str], httpx.AsyncClient],
) -> None:
    merchant, auth, http_b = setup
    await container.partners.set_rate_limit(ACTOR, merchant.partner.id, "read", (1000, 30))
    await _feed(other).barrier()
    response = await http_b.get(BALANCE, headers=auth)
    assert response.headers["ratelimit-policy"] == '"read";q=1000;w=30'


async def test_a_revocation_made_before_the_other_process_listened_is_still_refused(
    client: httpx.AsyncClient, container: Container, settings: Settings, clock: FrozenClock
) -> None:
    merchant = await make_client(container, name="Early")
    auth = await bearer(client, merchant, scope="balance:read")
    token = auth["Authorization"].removeprefix("Bearer ")
    assert (await revoke(client, merchant, token)).status_code == 200
    late = build_container(settings, clock=clock)
    try:
        async with await _http(late) as http_b:
            await _feed(late).wait_live()  # primed from the database, not from a NOTIFY
            for _ in range(2):
                assert (await http_b.get(BALANCE, headers=auth)).status_code == 401
    finally:
        await late.close()


async def test_while_the_listener_is_down_nothing_is_served_from_the_cache(
    client: httpx.AsyncClient,
    container: Container,
    other: Container,
    setup: tuple[RegisteredClient, dict[str, str], httpx.AsyncClient],
) -> None:
    merchant, auth, http_b = setup
    feed = _feed(other)
    dsn, feed._dsn = feed._dsn, UNREACHABLE  # once lost, it stays down until we say
    async with container.db.write() as conn:
        await conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": APPLICATION_NAME},
        )
    # B notices the lost connection as soon as its event loop reads the socket.
    for _ in range(1000):
        if not feed.live:
            break
        await asyncio.sleep(0.01)
    assert not feed.live
    reads = AccessReads(other)
    assert (await http_b.get(BALANCE, headers=auth)).status_code == 200
    assert reads.count == 1, "read from the database, not the cache"
    # A change nobody announces (no NOTIFY): only a process reading the database sees it.
    async with container.db.write() as conn:
        await conn.execute(
            oauth_clients.update().where(oauth_clients.c.id == merchant.id).values(status="revoked")
        )
    assert (await http_b.get(BALANCE, headers=auth)).status_code == 401

    # Reconnected, it caches again (and the revocation it never heard is still seen).
    feed._dsn = dsn
    await feed.wait_live()
    assert (await http_b.get(BALANCE, headers=auth)).status_code == 401
    fresh = await make_client(container, name="After")
    fresh_auth = await bearer(client, fresh, scope="balance:read")
    await _cached_in(other, http_b, fresh_auth)


async def test_without_a_listener_every_request_reads_the_database(
    client: httpx.AsyncClient, container: Container, other: Container
) -> None:
    feed = _feed(other)
    feed._dsn = UNREACHABLE
    merchant = await make_client(container, name="Uncached")
    auth = await bearer(client, merchant, scope="balance:read")
    reads = AccessReads(other)
    async with await _http(other) as http_b:
        for _ in range(3):
            assert (await http_b.get(BALANCE, headers=auth)).status_code == 200
        assert not feed.live
        assert reads.count == 3
        async with container.db.write() as conn:
            await conn.execute(
                oauth_clients.update()
                .where(oauth_clients.c.id == merchant.id)
                .values(status="revoked")
            )
        assert (await http_b.get(BALANCE, headers=auth)).status_code == 401
