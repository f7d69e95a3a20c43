"""Every code the server can answer has its page, `type` names the code, and headers are
bounded (in-process here; tests/e2e/test_header_limits.py checks `amanat serve`)."""

from __future__ import annotations

from urllib.parse import urlparse

import httpx
import pytest
from tests.api.platform.test_strict_input import row_counts
from tests.support.oauth import basic_auth, make_client, post_form
from tests.unit.platform.http.test_problem_codes import _codes

from amanat.bootstrap import Container, registry
from amanat.platform.http.problems import CATALOGUE

registry()  # every capability's problem codes are in the catalogue


async def test_every_code_the_server_can_answer_has_a_page(client: httpx.AsyncClient) -> None:
    for code in sorted(set(_codes()) | set(CATALOGUE)):
        page = await client.get(f"/problems/{code}")
        assert page.status_code == 200, code


@pytest.mark.parametrize("secret", ["wrong", ""])
async def test_oauth_errors_name_the_page_their_type_points_at(
    client: httpx.AsyncClient, container: Container, secret: str
) -> None:
    registered = await make_client(container, name="Shop")
    response = await post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials"},
        basic_auth(registered.id, secret),
    )
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["code"] == "oauth_invalid_client"
    assert body["type"].endswith(f"/problems/{body['code']}")
    assert (await client.get(urlparse(body["type"]).path)).status_code == 200
    assert (await client.get("/problems/invalid_client")).status_code == 404


async def test_unsupported_grant_is_an_oauth_code_with_its_page(
    client: httpx.AsyncClient,
) -> None:
    response = await post_form(client, "/oauth/token", {"grant_type": "password"})
    body = response.json()
    assert body["code"] == f"oauth_{body['error']}"
    assert body["type"].endswith(f"/problems/{body['code']}")
    assert (await client.get(urlparse(body["type"]).path)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        [(f"x-filler-{i}", "1") for i in range(101)],
        [("x-big", "a" * 17_000)],
        [(f"x-filler-{i}", "b" * 200) for i in range(90)],
    ],
    ids=["101-headers", "one-17-KiB-header", "90-headers-of-200-bytes"],
)
async def test_too_many_or_too_large_headers_are_431(
    client: httpx.AsyncClient, container: Container, headers: list[tuple[str, str]]
) -> None:
    before = await row_counts(container)
    response = await client.post("/v1/payments", json={"amount": 1}, headers=headers)
    assert response.status_code == 431, response.text
    body = response.json()
    assert body["code"] == "request_header_fields_too_large"
    assert body["type"].endswith("/problems/request_header_fields_too_large")
    assert response.headers["x-request-id"]
    assert await row_counts(container) == before


async def test_ordinary_headers_pass(client: httpx.AsyncClient) -> None:
    headers = [(f"x-filler-{i}", "c" * 100) for i in range(80)]
    assert (await client.get("/healthz", headers=headers)).status_code == 200
