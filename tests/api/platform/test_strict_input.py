"""Strict input at the edge: a request means one thing, integers are JSON integers, text is
storable text, metadata is bounded, and a refused request changes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import strategies as st
from tests.support.oauth import RegisteredClient, bearer, examples, funded_merchant
from tests.support.operators import create_account, totp

from amanat.bootstrap import Container
from amanat.platform.db.metadata import metadata as db_metadata

IBAN = "PK36SCBL0000001123456702"
PAYOUT: dict[str, Any] = {
    "amount": 150000,
    "currency": "PKR",
    "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
    "reference": "INV-1001",
}
COLLECTION: dict[str, Any] = {
    "type": "collection",
    "amount": 50_000,
    "debtor": {"raast_id": "03001234567"},
    "expires_in_seconds": 600,
}

# Every JSON value that is not an integer: what a lenient reader turned into one.
NOT_INTEGERS = (
    st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=1, max_value=10**12).map(float)
    | st.integers(min_value=1, max_value=10**12).map(str)
    | st.text(max_size=8)
    | st.none()
    | st.lists(st.integers(min_value=1, max_value=9), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    return await funded_merchant(container, "Shop")


@pytest.fixture
async def auth(client: httpx.AsyncClient, merchant: RegisteredClient) -> dict[str, str]:
    return await bearer(client, merchant)


@pytest.fixture
async def operator(client: httpx.AsyncClient, container: Container) -> dict[str, str]:
    """A logged-in admin on ``client``; returns the CSRF header."""
    account = await create_account(container, "admin", "operations")
    response = await client.post(
        "/operator/v1/login",
        json={
            "email": account.email,
            "password": "correct horse battery staple",
            "totp_code": totp(container, account),
        },
    )
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


async def row_counts(container: Container) -> dict[str, int]:
    """Rows per table: a refused request must leave every count as it was."""
    counts: dict[str, int] = {}
    async with container.db.read() as conn:
        for table in db_metadata.sorted_tables:
            result = await conn.execute(sa.select(sa.func.count()).select_from(table))
            counts[table.name] = int(result.scalar_one())
    return counts


def raw_post(client: httpx.AsyncClient, path: str, content: bytes, headers: dict[str, str]) -> Any:
    return client.post(
        path, content=content, headers={"Content-Type": "application/json", **headers}
    )


def single_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["type"].endswith(f"/problems/{code}")
    assert len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    return error


# -- integers are JSON integers ------------------------------------------------------------


async def test_no_non_integer_amount_is_ever_accepted(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    """`true` was read as 1 paisa and sent to the rail; "1500" and 1500.0 were accepted."""
    before = await row_counts(container)
    values = [True, False, "1500", 1500.0, 1.5, "1e3", None, [1500], {"v": 1}]
    values += examples(NOT_INTEGERS, 10)  # the write limit is 120 a minute
    targets: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/payments", PAYOUT, "/amount"),
        ("/v1/payments", COLLECTION, "/amount"),
        ("/v1/payments", COLLECTION, "/expires_in_seconds"),
        ("/v1/refunds", {"payment_id": "pay_x"}, "/amount"),
        ("/v1/sandbox/top_ups", {}, "/amount"),
    ]
    for index, value in enumerate(values):
        for path, base, pointer in targets:
            field = pointer.removeprefix("/")
            if (value is None and field != "amount") or (value is None and "refunds" in path):
                continue  # null is "not given" for optional fields
            body = {**base, field: value}
            response = await client.post(
                path, json=body, headers=auth | {"Idempotency-Key": f"k{index}-{path}-{field}"}
            )
            assert response.status_code == 422, (path, body, response.text)
            problem = response.json()
            assert problem["code"] == "validation_error"
            error = next(e for e in problem["errors"] if e["pointer"] == pointer)
            assert error["code"] == "invalid_type", (value, error)
            if field == "amount":
                assert "integers in paisa" in error["message"]
    assert await row_counts(container) == before


async def test_operator_limit_takes_integers_only(
    client: httpx.AsyncClient,
    container: Container,
    operator: dict[str, str],
    merchant: RegisteredClient,
) -> None:
    before = await row_counts(container)
    for value in [True, "1500", 1500.0, *examples(NOT_INTEGERS, 15)]:
        if value is None:
            continue
        response = await client.post(
            f"/operator/v1/partners/{merchant.partner.id}/limits",
            json={"per_transaction_limit": value},
            headers=operator,
        )
        error = single_error(response, 422, "validation_error")
        assert (error["pointer"], error["code"]) == ("/per_transaction_limit", "invalid_type")
        assert "integers in paisa" in error["message"]
    assert await row_counts(container) == before


async def test_a_plain_integer_amount_still_works(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/payments", json=PAYOUT, headers=auth | {"Idempotency-Key": "ok"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == 150000


# -- one meaning per request ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "pointer"),
    [
        (
            b'{"amount": 1000, "amount": 99999999, "creditor": {"iban": "%s"}}' % IBAN.encode(),
            "/amount",
        ),
        (
            b'{"amount": 1000, "creditor": {"iban": "%s", "name": "A", "iban": '
            b'"PK24ABPA0000001234567890", "name": "B"}}' % IBAN.encode(),
            "/creditor/iban",
        ),
        (b'{"amount": 1000, "metadata": {"a": "1", "a": "2"}, "creditor": {}}', "/metadata/a"),
        (b'{"x": [{"a/b": 1, "a/b": 2}]}', "/x/0/a~1b"),
    ],
)
async def test_duplicate_keys_are_refused_at_any_depth(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    content: bytes,
    pointer: str,
) -> None:
    before = await row_counts(container)
    response = await raw_post(client, "/v1/payments", content, auth | {"Idempotency-Key": "d"})
    error = single_error(response, 400, "malformed_json")
    assert (error["pointer"], error["code"]) == (pointer, "duplicate_key")
    assert pointer.rsplit("/", 1)[1].replace("~1", "/") in error["message"]
    assert await row_counts(container) == before


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(PAYOUT).encode("utf-16"),
        json.dumps(PAYOUT).encode("utf-16-le"),
        json.dumps(PAYOUT).encode("utf-32"),
        b"\xef\xbb\xbf" + json.dumps(PAYOUT).encode(),
        json.dumps(PAYOUT | {"reference": "caf\u00e9"}, ensure_ascii=False).encode("latin-1"),
    ],
    ids=["utf-16", "utf-16-le", "utf-32", "utf-8-bom", "latin-1"],
)
async def test_bodies_that_are_not_utf8_are_refused(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], content: bytes
) -> None:
    before = await row_counts(container)
    response = await raw_post(client, "/v1/payments", content, auth | {"Idempotency-Key": "u"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "malformed_json"
    assert await row_counts(container) == before


async def test_operator_and_sandbox_bodies_refuse_duplicates_too(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    operator: dict[str, str],
    merchant: RegisteredClient,
) -> None:
    before = await row_counts(container)
    limits = await raw_post(
        client,
        f"/operator/v1/partners/{merchant.partner.id}/limits",
        b'{"per_transaction_limit": 100, "per_transaction_limit": 10000000000}',
        operator,
    )
    assert single_error(limits, 400, "malformed_json")["pointer"] == "/per_transaction_limit"
    top_up = await raw_post(
        client,
        "/v1/sandbox/top_ups",
        b'{"amount": 1, "amount": 1000000000}',
        auth | {"Idempotency-Key": "t"},
    )
    assert single_error(top_up, 400, "malformed_json")["pointer"] == "/amount"
    assert await row_counts(container) == before


# -- metadata ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "pointer", "code"),
    [
        ({f"k{i}": "v" for i in range(51)}, "/metadata", "too_long"),
        ({"k" * 41: "v"}, "/metadata/" + "k" * 41, "too_long"),
        ({"k" * 100_000: "v"}, "/metadata/" + "k" * 100_000, "too_long"),
        ({"order": "v" * 501}, "/metadata/order", "too_long"),
        ({"order": "v" * 1_000_000}, "/metadata/order", "too_long"),
        ({"": "v"}, "/metadata/", "too_short"),
        ({"order": 1001}, "/metadata/order", "invalid_type"),
        ({"order": {"nested": "x"}}, "/metadata/order", "invalid_type"),
    ],
    ids=["51-keys", "key-41", "key-100k", "value-501", "value-1m", "empty-key", "int", "object"],
)
async def test_metadata_is_bounded_like_stripes(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    metadata: dict[str, Any],
    pointer: str,
    code: str,
) -> None:
    before = await row_counts(container)
    response = await client.post(
        "/v1/payments",
        json=PAYOUT | {"metadata": metadata},
        headers=auth | {"Idempotency-Key": "m"},
    )
    assert response.status_code in {413, 422}, response.text
    if response.status_code == 422:
        error = single_error(response, 422, "validation_error")
        assert (error["pointer"], error["code"]) == (pointer, code)
    assert await row_counts(container) == before


async def test_metadata_at_the_limits_is_accepted(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    metadata = {f"{i:02d}".ljust(40, "k"): "v" * 500 for i in range(50)}
    response = await client.post(
        "/v1/payments",
        json=PAYOUT | {"metadata": metadata},
        headers=auth | {"Idempotency-Key": "ml"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == metadata


# -- control characters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "pointer"),
    [
        ("reference", "INV\x00", "/reference"),
        ("description", "a\x00b", "/description"),
        ("description", "bell\x07", "/description"),
        ("description", "lone \ud800 surrogate", "/description"),
        ("metadata", {"k\x00": "v"}, "/metadata/k\x00"),
        ("metadata", {"k": "v\x1b[31m"}, "/metadata/k"),
        ("creditor", {"iban": IBAN, "name": "Ayesha\x00"}, "/creditor/name"),
        ("description", "a\x7fb", "/description"),
        ("description", "a\x85b", "/description"),
        ("reference", "INV\x9b31m", "/reference"),
        ("description", "pay \u202eKPR 00001\u202c", "/description"),
        ("creditor", {"iban": IBAN, "name": "\u2067Ayesha\u2069"}, "/creditor/name"),
        ("description", "a\u2028b", "/description"),
        ("metadata", {"k\ufeff": "v"}, "/metadata/k\ufeff"),
    ],
)
async def test_control_characters_in_body_text_are_refused(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    field: str,
    value: Any,
    pointer: str,
) -> None:
    before = await row_counts(container)
    response = await raw_post(
        client,
        "/v1/payments",
        json.dumps(PAYOUT | {field: value}).encode(),  # ASCII: a lone surrogate is escaped
        auth | {"Idempotency-Key": "c"},
    )
    error = single_error(response, 422, "validation_error")
    assert (error["pointer"], error["in"], error["code"]) == (
        pointer,
        "body",
        "forbidden_character",
    )
    assert await row_counts(container) == before


async def test_tabs_and_newlines_stay_allowed_in_free_text(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/payments",
        json=PAYOUT | {"description": "line one\r\nline two\tend"},
        headers=auth | {"Idempotency-Key": "tab"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "line one\r\nline two\tend"


async def test_urdu_joiners_and_direction_marks_stay_allowed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    # ZWNJ shapes Urdu words; RLM and ALM mark direction without overriding what follows.
    urdu = "\u0639\u0627\u0626\u0634\u06c1\u200c\u062e\u0627\u0646\u200f \u061c\xa0INV"
    response = await client.post(
        "/v1/payments",
        json=PAYOUT | {"description": urdu},
        headers=auth | {"Idempotency-Key": "urdu"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["description"] == urdu


async def test_operator_webhook_and_console_text_refuse_del_and_c1_too(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    operator: dict[str, str],
) -> None:
    endpoint = await client.post(
        "/v1/webhook_endpoints",
        json={"url": "https://example.pk/hooks", "enabled_events": ["*"]},
        headers=auth | {"Idempotency-Key": "we"},
    )
    assert endpoint.status_code == 201, endpoint.text
    before = await row_counts(container)

    partner = await client.post(
        "/operator/v1/partners", json={"name": "A\x7fB", "roles": ["merchant"]}, headers=operator
    )
    error = single_error(partner, 422, "validation_error")
    assert (error["pointer"], error["code"]) == ("/name", "forbidden_character")

    patched = await client.patch(
        f"/v1/webhook_endpoints/{endpoint.json()['id']}",
        json={"description": "a\x85b"},
        headers=auth,
    )
    error = single_error(patched, 422, "validation_error")
    assert (error["pointer"], error["code"]) == ("/description", "forbidden_character")

    form = await client.post(
        "/console/partners",
        data={"name": "A\u202eB", "roles": "merchant", "mode": "sandbox"},
        headers=operator,
    )
    error = single_error(form, 400, "invalid_request")
    assert (error["pointer"], error["in"], error["code"]) == (
        "/name",
        "body",
        "forbidden_character",
    )
    assert await row_counts(container) == before


@pytest.mark.parametrize(
    ("url", "where", "pointer"),
    [
        ("/v1/payments/pay_%00", "path", "/payment_id"),
        ("/v1/refunds/re_%0a", "path", "/refund_id"),
        ("/v1/webhook_endpoints/we_%00x", "path", "/endpoint_id"),
        ("/v1/payments?status=%00", "query", "/status"),
        ("/v1/refunds?payment_id=pay_%00", "query", "/payment_id"),
        ("/v1/events?type=payment.succeeded%00", "query", "/type"),
        ("/v1/payments?cursor=%00", "query", "/cursor"),
        ("/v1/payments/pay_%7F", "path", "/payment_id"),
        ("/v1/payments/pay_%C2%85", "path", "/payment_id"),
        ("/v1/refunds/re_%E2%80%AE", "path", "/refund_id"),
        ("/v1/payments?status=%C2%85", "query", "/status"),
        ("/v1/payments?status=%7F", "query", "/status"),
        ("/v1/events?type=%E2%81%A6payment.succeeded", "query", "/type"),
    ],
)
async def test_control_characters_in_path_and_query_are_refused(
    client: httpx.AsyncClient, auth: dict[str, str], url: str, where: str, pointer: str
) -> None:
    response = await client.get(url, headers=auth)
    error = single_error(response, 422, "validation_error")
    assert (error["pointer"], error["in"], error["code"]) == (pointer, where, "forbidden_character")


@pytest.mark.parametrize("limit", ["1.0", " 5", "1e1", "+5", "٣"])
async def test_a_page_size_is_digits_only(
    client: httpx.AsyncClient, auth: dict[str, str], limit: str
) -> None:
    """As strict as the body's integers: a query `limit` of "1.0" was read as 1."""
    response = await client.get("/v1/payments", params={"limit": limit}, headers=auth)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"][0]["in"] == "query"
    assert body["errors"][0]["code"] == "invalid_type"
