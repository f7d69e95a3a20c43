"""NUL in any string input is refused with a 4xx problem, never a 500, on both databases;
so are DEL, C1 controls and bidirectional overrides, which were once stored as given.

PostgreSQL text cannot hold U+0000, so a NUL that reached a query answered 500 there and
404 on SQLite. Walks the published OpenAPI document: every path parameter, every query
parameter and every string field of every request body gets the character, with
credentials that pass authentication, and nothing may be written.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from tests.api.platform.test_strict_input import row_counts
from tests.support.oauth import fetch_token, make_client
from tests.support.openapi_walk import concrete_path, operations
from tests.support.operators import PASSWORD, create_account, totp

from amanat.bootstrap import Container

# Where a map's key (rather than a value) gets the character.
A_KEY = "<key>"


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    return schema


def _string_pointers(
    spec: dict[str, Any], schema: dict[str, Any], depth: int = 0
) -> list[list[str]]:
    """Paths to the string fields of an object schema (following refs, unions, one level
    of nesting, and maps of strings such as metadata)."""
    schema = _resolve(spec, schema)
    found: list[list[str]] = []
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        found += _string_pointers(spec, option, depth)
    if schema.get("type") == "string":
        found.append([])
    if schema.get("type") == "array" and depth < 2:
        found += [["0", *p] for p in _string_pointers(spec, schema.get("items", {}), depth + 1)]
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict) and depth < 2:
        found += [["key", *p] for p in _string_pointers(spec, additional, depth + 1)]
        found.append([A_KEY])
    for name, prop in schema.get("properties", {}).items():
        if depth < 2:
            found += [[name, *p] for p in _string_pointers(spec, prop, depth + 1)]
    return found


def _body_with(path: list[str], text: str) -> Any:
    if not path:
        return text
    head, rest = path[0], path[1:]
    if head == A_KEY:
        return {text: "v"}
    if head == "0":
        return [_body_with(rest, text)]
    return {head: _body_with(rest, text)}


@pytest.mark.parametrize(
    "text", ["a\x00b", "a\x7fb", "a\x85b", "a\u202eb"], ids=["NUL", "DEL", "NEL", "RLO"]
)
async def test_a_forbidden_character_anywhere_is_a_4xx_and_writes_nothing(
    client: httpx.AsyncClient, container: Container, text: str
) -> None:
    spec = (await client.get("/openapi.json")).json()
    merchant = await make_client(container, name="Walker")
    token = (await fetch_token(client, merchant))["access_token"]
    account = await create_account(container, "admin", "operations", "risk")
    login = await client.post(
        "/operator/v1/login",
        json={"email": account.email, "password": PASSWORD, "totp_code": totp(container, account)},
    )
    assert login.status_code == 200, login.text
    headers = {
        "Authorization": f"Bearer {token}",
        "X-CSRF-Token": login.json()["csrf_token"],
        "Idempotency-Key": "nul-walk",
    }
    before = await row_counts(container)
    tried = 0
    for method, path, op in operations(spec):
        if path == "/operator/v1/logout":
            continue
        attempts: list[tuple[str, dict[str, Any]]] = []
        for param in op.get("parameters", []):
            if param["in"] == "path":
                nul_in_path = concrete_path(path, {param["name"]: quote(text, safe="")})
                attempts.append((nul_in_path, {}))
            elif param["in"] == "query":
                nul_in_query = f"{param['name']}={quote(text, safe='')}"
                attempts.append((f"{concrete_path(path)}?{nul_in_query}", {}))
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            for pointer in _string_pointers(spec, content["application/json"]["schema"]):
                attempts.append((concrete_path(path), {"json": _body_with(pointer, text)}))
        if "application/x-www-form-urlencoded" in content:
            schema = content["application/x-www-form-urlencoded"]["schema"]
            for name in schema.get("properties", {}):
                attempts.append((concrete_path(path), {"data": {name: text}}))
        for url, kwargs in attempts:
            response = await client.request(method.upper(), url, headers=headers, **kwargs)
            tried += 1
            assert 400 <= response.status_code < 500, (method, url, kwargs, response.text)
    assert tried >= 60, "the walk reached the API's inputs"
    assert await row_counts(container) == before
