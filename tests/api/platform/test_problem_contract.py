"""Every error path answers with an RFC 9457 problem document carrying a request id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from amanat.app import create_app
from amanat.bootstrap import Container
from amanat.platform.http.schemas import RequestModel


class _Creditor(RequestModel):
    iban: str
    name: str


class _Body(RequestModel):
    amount: int
    currency: str
    creditor: _Creditor


def _plumbing_router() -> APIRouter:
    """Routes that exist only in this test, to drive the shared plumbing."""
    router = APIRouter()

    @router.post("/v1/_test/echo")
    async def echo(body: _Body) -> dict[str, Any]:
        return body.model_dump()

    @router.get("/v1/_test/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail CNIC 35202-1234567-3 must not leak")

    return router


@pytest.fixture
async def plumbing(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(container=container)
    app.include_router(_plumbing_router())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(f"/problems/{code}")
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    body = _assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")
    assert body["instance"] == "/v1/nothing-here"


async def test_wrong_method_is_a_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/healthz")
    _assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_malformed_json(plumbing: httpx.AsyncClient) -> None:
    response = await plumbing.post(
        "/v1/_test/echo", content=b'{"amount": 1,', headers={"content-type": "application/json"}
    )
    _assert_problem(response, 400, "malformed_json")


async def test_wrong_content_type(plumbing: httpx.AsyncClient) -> None:
    response = await plumbing.post(
        "/v1/_test/echo", content=b"amount=1", headers={"content-type": "text/plain"}
    )
    _assert_problem(response, 415, "unsupported_media_type")


async def test_oversize_body_by_content_length(plumbing: httpx.AsyncClient) -> None:
    big = b'{"amount": 1, "pad": "' + b"x" * (70 * 1024) + b'"}'
    response = await plumbing.post(
        "/v1/_test/echo", content=big, headers={"content-type": "application/json"}
    )
    _assert_problem(response, 413, "payload_too_large")


async def test_oversize_streamed_body_without_length(plumbing: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"amount": 1, "pad": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    response = await plumbing.post(
        "/v1/_test/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    _assert_problem(response, 413, "payload_too_large")


async def test_validation_errors_point_at_each_field(plumbing: httpx.AsyncClient) -> None:
    response = await plumbing.post(
        "/v1/_test/echo",
        json={"amount": "lots", "currency": "PKR", "creditor": {"name": "A"}, "colour": "red"},
    )
    body = _assert_problem(response, 422, "validation_error")
    by_pointer = {e["pointer"]: e for e in body["errors"]}
    assert by_pointer["/amount"]["code"] == "invalid_type"
    assert by_pointer["/creditor/iban"]["code"] == "required"
    assert by_pointer["/colour"]["code"] == "unknown_field"
    assert all(e["in"] == "body" for e in body["errors"])
    assert "lots" not in response.text


async def test_unexpected_exception_is_a_500_problem_without_trace(
    plumbing: httpx.AsyncClient,
) -> None:
    response = await plumbing.get("/v1/_test/boom")
    body = _assert_problem(response, 500, "internal_error")
    assert "Traceback" not in response.text
    assert "35202" not in response.text
    assert "RuntimeError" not in body["detail"]


async def test_request_id_is_echoed_when_safe(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": "abc-123_DEF.4"})
    assert response.headers["x-request-id"] == "abc-123_DEF.4"


async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": "bad id\twith<script>"})
    assert response.headers["x-request-id"].startswith("req_")


async def test_problem_type_pages_are_served(client: httpx.AsyncClient) -> None:
    listing = await client.get("/problems")
    assert listing.status_code == 200
    assert "insufficient_scope" in listing.text
    page = await client.get("/problems/malformed_json")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "not valid JSON" in page.text
    _assert_problem(await client.get("/problems/no_such_code"), 404, "not_found")


async def test_bad_cursor_is_a_problem(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.get("/v1/banks", params={"cursor": "%%%"}), 400, "invalid_cursor")


async def test_bad_query_parameter_points_at_it(client: httpx.AsyncClient) -> None:
    body = _assert_problem(
        await client.get("/v1/banks", params={"limit": 0}), 422, "validation_error"
    )
    assert body["errors"][0]["pointer"] == "/limit"
    assert body["errors"][0]["in"] == "query"
