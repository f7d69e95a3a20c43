"""Who a rate limit counts against: a guesser spends its own budgets, never the victim's;
the client address is the TCP peer's unless a configured proxy vouches for it, and only a
parsed IP address is ever recorded or used as a key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from tests.support.asgi_clients import asgi_clients
from tests.support.oauth import basic_auth, make_client
from typer.testing import CliRunner
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from amanat.app import create_app
from amanat.bootstrap import Container
from amanat.platform.audit.tables import audit_log
from amanat.platform.http.client_address import parsed_ip, uvicorn_proxy_options
from amanat.platform.settings import Settings

Connect = Callable[[str], httpx.AsyncClient]
TOKEN = {"grant_type": "client_credentials"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"rate_limits": {"token_failures": "3/300", "token_failures_ip": "8/300"}}
    )


def _served(app: FastAPI, settings: Settings) -> Any:
    """The app behind uvicorn's proxy-header handling, configured as `amanat serve` does."""
    options = uvicorn_proxy_options(settings)
    if not options["proxy_headers"]:
        return app
    return ProxyHeadersMiddleware(app, trusted_hosts=options["forwarded_allow_ips"])


@pytest.fixture
async def connect(container: Container) -> AsyncIterator[Connect]:
    """An HTTP client whose requests come from the TCP peer ``ip``."""
    async with asgi_clients(_served(create_app(container=container), container.settings)) as make:
        yield make


async def _token(http: httpx.AsyncClient, client_id: str, secret: str) -> int:
    response = await http.post("/oauth/token", data=TOKEN, headers=basic_auth(client_id, secret))
    return response.status_code


async def _token_post(http: httpx.AsyncClient, client_id: str, secret: str) -> int:
    form = TOKEN | {"client_id": client_id, "client_secret": secret}
    return (await http.post("/oauth/token", data=form)).status_code


# --- failed client authentication ----------------------------------------------------------


async def test_wrong_secrets_for_a_client_do_not_lock_that_client_out(
    container: Container, connect: Connect
) -> None:
    victim = await make_client(container, name="Victim")
    assert victim.secret is not None
    attacker = connect("198.51.100.7")
    codes = [await _token_post(attacker, victim.id, "cs_wrong") for _ in range(40)]
    assert codes[:3] == [401] * 3
    assert set(codes[3:]) == {429}
    # The victim, from its own address, is served all along.
    owner = connect("203.0.113.20")
    assert await _token_post(owner, victim.id, victim.secret) == 200
    assert await _token(owner, victim.id, victim.secret) == 200


async def test_failures_for_one_client_do_not_block_another_behind_the_same_address(
    container: Container, connect: Connect
) -> None:
    guessed = await make_client(container, name="Guessed")
    neighbour = await make_client(container, name="Neighbour")
    assert neighbour.secret is not None
    office = connect("192.0.2.10")
    codes = [await _token(office, guessed.id, "cs_wrong") for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    assert await _token(office, neighbour.id, neighbour.secret) == 200


async def test_invented_client_ids_share_their_address_budget(
    container: Container, connect: Connect
) -> None:
    known = await make_client(container, name="Known")
    assert known.secret is not None
    scanner = connect("198.51.100.9")
    codes = [await _token(scanner, f"cli_invented{i}", "cs_wrong") for i in range(10)]
    # A fresh client id each time, but one failure budget for the address (8 per window).
    assert codes == [401] * 8 + [429] * 2
    # That address is refused from now on; every other one is not.
    assert await _token(connect("203.0.113.21"), known.id, known.secret) == 200


# --- the client address ----------------------------------------------------------------------


def test_no_proxy_is_trusted_by_default(settings: Settings) -> None:
    assert uvicorn_proxy_options(settings) == {"proxy_headers": False, "forwarded_allow_ips": ""}


def test_serve_passes_the_trusted_proxies_to_uvicorn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from amanat.cli import app as cli_app
    from amanat.platform.http import listeners

    seen: dict[str, Any] = {}
    monkeypatch.setattr(listeners, "run", lambda *a, **kw: seen.update(kw))
    assert CliRunner().invoke(cli_app, ["serve"]).exit_code == 0
    assert (seen["proxy_headers"], seen["forwarded_allow_ips"]) == (False, "")
    monkeypatch.setenv("AMANAT_HTTP__TRUSTED_PROXIES", '["10.0.0.5", "10.1.0.0/16"]')
    assert CliRunner().invoke(cli_app, ["serve"]).exit_code == 0
    assert (seen["proxy_headers"], seen["forwarded_allow_ips"]) == (True, "10.0.0.5,10.1.0.0/16")


def test_a_trusted_proxy_must_be_an_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMANAT_HTTP__TRUSTED_PROXIES", '["proxy.internal"]')
    with pytest.raises(ValueError, match="not an IP address or network"):
        Settings()


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("203.0.113.5", "203.0.113.5"),
        (" 2001:DB8::1 ", "2001:db8::1"),
        ('"><b>rtx4</b>', None),
        ("203.0.113.5, 10.0.0.1", None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_parsed_ip_counts_as_an_address(raw: str | None, parsed: str | None) -> None:
    assert parsed_ip(raw) == parsed


async def _login_failed_ips(container: Container) -> list[str | None]:
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.db.read() as conn:
        rows = await conn.execute(
            sa.select(audit_log.c.source_ip)
            .where(audit_log.c.action == "operator.login_failed")
            .order_by(audit_log.c.seq)
        )
        return [row.source_ip for row in rows]


async def _failed_login(http: httpx.AsyncClient, forwarded: str) -> httpx.Response:
    body = {"email": "nobody@bank.example.pk", "password": "x" * 12, "totp_code": "000000"}
    return await http.post("/operator/v1/login", json=body, headers={"X-Forwarded-For": forwarded})


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    container: Container, connect: Connect
) -> None:
    # 127.0.0.1 is the peer uvicorn trusted by default: it must not be trusted here.
    local = connect("127.0.0.1")
    statuses = [(await _failed_login(local, f"10.9.8.{i}")).status_code for i in range(11)]
    # One key (the peer) whatever the header says: the login budget of 10 runs out.
    assert statuses[-1] == 429
    await _failed_login(local, '"><b>rtx4</b>')
    assert set(await _login_failed_ips(container)) == {"127.0.0.1"}
    failures = [await _token(local, "cli_x", "cs_wrong") for _ in range(9)]
    assert failures == [401] * 3 + [429] * 6  # the per-(client, IP) budget, not per header


@pytest.fixture
def trusted_settings(settings: Settings) -> Settings:
    http = settings.http.model_copy(update={"trusted_proxies": ["127.0.0.1"]})
    return settings.model_copy(update={"http": http})


async def test_a_trusted_proxy_is_believed_but_never_recorded_verbatim(
    trusted_settings: Settings, clock: Any
) -> None:
    from tests.conftest import wipe

    from amanat.bootstrap import build_container

    container = build_container(trusted_settings, clock=clock)
    app = _served(create_app(container=container), trusted_settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 1))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            await _failed_login(http, "203.0.113.77")
            await _failed_login(http, '"><b>rtx4</b>')
        recorded = await _login_failed_ips(container)
        assert recorded == ["203.0.113.77", None]
    finally:
        await wipe(container)
        await container.close()
