"""The lean way in decodes a JSON body once: the contract middleware's strict reading of
the same bytes is the body (input_guard.CHECKED_JSON_BODY), and what the middleware did
not read, or read from other bytes, is decoded as FastAPI decodes it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.requests import Request

from amanat.platform.http import lean_routes
from amanat.platform.http.input_guard import CHECKED_JSON_BODY, check_json_body

BODY = b'{"amount": 150000, "creditor": {"iban": "PK36SCBL0000001123456702", "name": "A K"}}'


def _request(body: bytes, **scope: Any) -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "headers": [], **scope}, receive)


async def test_the_middlewares_reading_of_the_same_bytes_is_the_body() -> None:
    checked = check_json_body(BODY)
    assert checked == json.loads(BODY)
    request = _request(BODY, **{CHECKED_JSON_BODY: (BODY, checked)})
    assert await lean_routes._json(request, await request.body()) is checked


@pytest.mark.parametrize(
    "scope",
    [
        {},  # the middleware did not read it (a syntax error it leaves to the route)
        {CHECKED_JSON_BODY: (b'{"amount": 1}', {"amount": 1})},  # other bytes than these
    ],
)
async def test_otherwise_the_body_is_decoded_as_fastapi_decodes_it(scope: dict[str, Any]) -> None:
    request = _request(BODY, **scope)
    assert await lean_routes._json(request, await request.body()) == json.loads(BODY)


async def test_a_body_the_route_decodes_still_fails_as_json_does() -> None:
    request = _request(b"{")
    with pytest.raises(json.JSONDecodeError):
        await lean_routes._json(request, await request.body())


@pytest.mark.parametrize(
    ("content_type", "is_json"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/problem+json", True),
        ("application/x-www-form-urlencoded", False),
        ("text/json", False),
        ("application/jsonl", False),
        ("", False),
    ],
)
def test_a_json_content_type_is_recognised_as_fastapi_recognises_it(
    content_type: str, is_json: bool
) -> None:
    assert lean_routes._is_json_media(content_type) is is_json
    assert lean_routes._is_json_media(content_type) is is_json  # remembered: the same
