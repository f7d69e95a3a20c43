"""One public URL drives every URL a client sees: move the server to port 8300 and the
token issuer and audience, OAuth discovery, the JWKS URL, problem `type` URLs, the sandbox
TPP's redirect_uri, the rail callback URL and the `make run` banner all say 8300."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.support.oauth import (
    RegisteredClient,
    authorize,
    basic_auth,
    decode_segment,
    exchange_code,
    pkce_pair,
    query_of,
)
from typer.testing import CliRunner

from amanat.bootstrap import Container, build_container
from amanat.cli import app as cli
from amanat.identity.domain import OAuthClient, Partner
from amanat.payments.jobs import RailTarget
from amanat.platform.settings import DatabaseSettings, Settings
from amanat.sandbox_seed import seed

PUBLIC = "http://127.0.0.1:8300"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The suite's settings, served at port 8300 (replaces the conftest fixture)."""
    return Settings(
        database=DatabaseSettings(url=database_url),
        auth={"sandbox_credentials_file": tmp_path / "creds.json"},
        http={"port": 8300, "public_url": PUBLIC},
        crypto={
            "sandbox_master_key_file": tmp_path / "master.key",
            "audit_seal_key_file": tmp_path / "seal.key",
        },
    )


def _urls(value: object) -> list[str]:
    if isinstance(value, dict):
        return [url for item in value.values() for url in _urls(item)]
    if isinstance(value, list):
        return [url for item in value for url in _urls(item)]
    return [value] if isinstance(value, str) and value.startswith("http") else []


def test_the_port_alone_moves_the_public_url_and_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMANAT_HTTP__PORT", "8300")
    settings = Settings()
    assert settings.http.public_url == PUBLIC
    assert settings.auth.issuer == PUBLIC
    assert settings.auth.effective_audience == PUBLIC


def test_the_public_url_drives_the_issuer_unless_the_issuer_is_set() -> None:
    assert Settings(http={"public_url": "https://api.example.pk/"}).auth.issuer == (
        "https://api.example.pk"
    )
    explicit = Settings(http={"port": 8300}, auth={"issuer": "https://id.example.pk"})
    assert explicit.auth.issuer == "https://id.example.pk"
    assert explicit.http.public_url == PUBLIC
    assert Settings(http={"host": "0.0.0.0", "port": 9000}).http.public_url == (  # noqa: S104
        "http://127.0.0.1:9000"
    )
    assert Settings(http={"host": "::1", "port": 9000}).http.public_url == "http://[::1]:9000"


async def test_discovery_and_jwks_name_the_public_url(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == PUBLIC
    assert document["jwks_uri"] == f"{PUBLIC}/.well-known/jwks.json"
    assert document["authorization_endpoint"] == f"{PUBLIC}/oauth/authorize"
    assert document["token_endpoint"] == f"{PUBLIC}/oauth/token"
    urls = _urls(document)
    assert urls and all(url.startswith(f"{PUBLIC}/") or url == PUBLIC for url in urls), urls
    jwks = await client.get(urlsplit(document["jwks_uri"]).path)
    assert jwks.status_code == 200 and "keys" in jwks.json()


async def test_problem_types_name_the_public_url(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["type"] == f"{PUBLIC}/problems/not_found"


async def test_seeded_clients_tokens_and_rail_callback_use_the_public_url(
    client: httpx.AsyncClient, container: Container
) -> None:
    credentials = await seed(container)
    merchant, tpp = credentials["merchant"], credentials["tpp"]
    assert tpp["redirect_uri"] == f"{PUBLIC}/sandbox/oauth/callback"
    assert container.get(RailTarget).callback_url == f"{PUBLIC}/rails/raast/callbacks"

    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic_auth(merchant["client_id"], merchant["client_secret"]),
    )
    assert response.status_code == 200, response.text
    claims = decode_segment(response.json()["access_token"], 1)
    assert claims["iss"] == PUBLIC
    assert PUBLIC in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])


async def test_the_seeded_redirect_uri_is_a_page_that_shows_the_code(
    client: httpx.AsyncClient, container: Container
) -> None:
    tpp = (await seed(container))["tpp"]
    async with container.transactions.read() as tx:
        oauth_client = await tx.partners.get_client(tpp["client_id"])
        partner = await tx.partners.get_partner(tpp["partner_id"])
    assert isinstance(oauth_client, OAuthClient) and isinstance(partner, Partner)
    registered = RegisteredClient(partner, oauth_client, tpp["client_secret"])
    verifier, challenge = pkce_pair()
    answer = await authorize(
        client, registered, challenge=challenge, redirect_uri=tpp["redirect_uri"], state="s-42"
    )
    location = answer.headers["location"]
    assert location.startswith(f"{PUBLIC}/sandbox/oauth/callback?"), location
    params = query_of(location)

    page = await client.get(f"/sandbox/oauth/callback?{urlsplit(location).query}")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert params["code"] in page.text and "s-42" in page.text
    assert "://" not in re.sub(r"https?://127\.0\.0\.1:8300", "", page.text.split("<body>")[1])

    token = await exchange_code(
        client, registered, params["code"], verifier, redirect_uri=tpp["redirect_uri"]
    )
    assert token.status_code == 200, token.text
    assert (await client.get("/sandbox/oauth/callback")).status_code == 200


async def test_a_moved_server_reissues_the_sandbox_tpp_client(
    container: Container, settings: Settings
) -> None:
    first = await seed(container)
    moved = settings.model_copy(
        update={
            "http": settings.http.model_copy(update={"public_url": "http://127.0.0.1:8400"}),
        }
    )
    other = build_container(moved)
    try:
        second = await seed(other)
    finally:
        await other.close()
    assert second["merchant"] == first["merchant"]
    assert second["tpp"]["redirect_uri"] == "http://127.0.0.1:8400/sandbox/oauth/callback"
    assert second["tpp"]["client_id"] != first["tpp"]["client_id"]
    async with container.transactions.read() as tx:
        old = await tx.partners.get_client(first["tpp"]["client_id"])
    assert old is not None and not old.is_active


def test_the_banner_names_the_public_url(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path
) -> None:
    for name, value in {
        "AMANAT_DATABASE__URL": database_url,
        "AMANAT_HTTP__PORT": "8300",
        "AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE": str(tmp_path / "creds.json"),
        "AMANAT_CRYPTO__SANDBOX_MASTER_KEY_FILE": str(tmp_path / "master.key"),
        "AMANAT_CRYPTO__AUDIT_SEAL_KEY_FILE": str(tmp_path / "seal.key"),
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["sandbox", "seed"])
    assert result.exit_code == 0, result.output
    urls = re.findall(r"https?://[^\s)]+", result.output)
    assert urls, result.output
    assert all(url == PUBLIC or url.startswith(f"{PUBLIC}/") for url in urls), urls
    assert f"{PUBLIC}/sandbox/oauth/callback" in urls
    # Typed in another shell, the faults command finds this server's rail.
    assert f"AMANAT_HTTP__PUBLIC_URL={PUBLIC} .venv/bin/amanat sandbox faults" in result.output


def test_serve_port_option_moves_the_public_url_of_every_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from amanat.platform.http import listeners

    monkeypatch.setenv("AMANAT_HTTP__PORT", "8000")  # restored after the test
    monkeypatch.setenv("AMANAT_HTTP__HOST", "127.0.0.1")
    served: dict[str, object] = {}
    monkeypatch.setattr(listeners, "run", lambda target, **options: served.update(options))
    result = CliRunner().invoke(cli, ["serve", "--port", "8300", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert served["port"] == 8300 and served["workers"] == 2
    # Each worker process reads its settings from the environment it inherits.
    assert Settings().http.public_url == PUBLIC
