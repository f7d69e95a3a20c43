"""The lean way in (platform/http/lean_routes.py) answers every request exactly as
FastAPI's own way does: the same requests are sent to an app with it and to one without
it, and the answers compared."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.support.oauth import ACTOR, bearer, funded_merchant, make_client

from amanat.app import create_app
from amanat.bootstrap import Container
from amanat.platform.http.lean_routes import LeanRoutes, find_lean_routes

IBAN = "PK36SCBL0000001123456702"
PAYOUT = {"amount": 150_000, "currency": "PKR", "creditor": {"iban": IBAN, "name": "A K"}}
# What differs between two answers by design: their request ids and timing.
_UNCOMPARED = {"x-request-id", "date"}


def _lean_of(app: FastAPI) -> LeanRoutes:
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, LeanRoutes):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, LeanRoutes)
    return layer


@pytest.fixture
async def two(container: Container) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    lean, plain = create_app(container=container), create_app(container=container)
    plain.state.lean_routes = False
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=lean, raise_app_exceptions=False),
            base_url="http://testserver",
        ) as a,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=plain, raise_app_exceptions=False),
            base_url="http://testserver",
        ) as b,
    ):
        a.app = lean  # type: ignore[attr-defined]
        yield a, b


def _answer(response: httpx.Response) -> tuple[int, dict[str, str], object]:
    """The answer, less what two requests never share: their request ids, and the live
    counter of the one quota both ways count against (each request spends one)."""
    headers = {k: v for k, v in response.headers.items() if k not in _UNCOMPARED}
    for name in ("ratelimit", "retry-after"):
        if name in headers:
            headers[name] = re.sub(r"\d+", "N", headers[name])
    if response.headers.get("content-type", "").endswith("json"):
        body = response.json()
        if isinstance(body, dict):
            body.pop("request_id", None)
        headers.pop("content-length", None)
        return response.status_code, headers, body
    return response.status_code, headers, response.content


async def test_the_same_answer_with_and_without_the_lean_way(
    container: Container, two: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    lean, plain = two
    merchant = await funded_merchant(container, "Shop")
    other = await funded_merchant(container, "Other shop")
    auth = await bearer(lean, merchant)
    other_auth = await bearer(lean, other)
    narrow = await make_client(container, name="Narrow", scopes=["balance:read"])
    narrow_auth = await bearer(lean, narrow)
    paid = await lean.post("/v1/payments", json=PAYOUT, headers=auth | {"Idempotency-Key": "k1"})
    assert paid.status_code == 201, paid.text
    payment_id = paid.json()["id"]
    cases: list[tuple[str, dict[str, str]]] = [
        (f"/v1/payments/{payment_id}", auth),
        (f"/v1/payments/{payment_id}?expand=everything", auth),
        (f"/v1/payments/{payment_id}", other_auth),  # another partner's: 404
        (f"/v1/refunds/{payment_id}", auth),  # not a refund: 404
        ("/v1/payments/pay_" + "X" * 300, auth),
        ("/v1/payments/%E2%82%AC", auth),
        (f"/v1/payments/{payment_id}", {}),  # no token: 401
        (f"/v1/payments/{payment_id}", {"Authorization": "Bearer not.a.token"}),
        (f"/v1/payments/{payment_id}", {"Authorization": "Basic abc"}),
        (f"/v1/payments/{payment_id}", narrow_auth),  # no payments:read: 403
        (f"/v1/payments/{payment_id}/", auth),  # FastAPI's own redirect
        ("/v1/settlements/set_nothing", auth),
        ("/v1/disputes/dp_nothing", auth),
        ("/v1/disputes/dp_nothing/evidence/dpe_nothing", auth),
    ]
    served = _lean_of(lean.app).served  # type: ignore[attr-defined]
    for path, headers in cases:
        got, expected = (
            await lean.get(path, headers=headers),
            await plain.get(path, headers=headers),
        )
        assert _answer(got) == _answer(expected), path
    assert _lean_of(lean.app).served - served >= 10, "the lean way answered them"  # type: ignore[attr-defined]
    assert _lean_of(lean.app).served > 0


async def test_a_spent_quota_is_refused_the_same_way(
    container: Container, two: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    lean, plain = two
    merchant = await funded_merchant(container, "Shop")
    auth = await bearer(lean, merchant)
    await container.partners.set_rate_limit(ACTOR, merchant.partner.id, "read", (2, 60))
    answers = []
    for client in (lean, plain):
        for _ in range(3):
            answers.append(await client.get("/v1/payments/pay_nothing", headers=auth))
    statuses = [a.status_code for a in answers]
    assert statuses == [404, 404, 429, 429, 429, 429], "one quota, counted by both ways"
    assert _answer(answers[2]) == _answer(answers[5])


def test_which_routes_take_the_lean_way(app: FastAPI) -> None:
    assert [lean.route.path for lean in find_lean_routes(app)] == [
        "/v1/payments/{payment_id}",
        "/v1/refunds/{refund_id}",
        "/v1/settlements/{settlement_id}",
        "/v1/settlements/{settlement_id}/lines.csv",
        "/v1/disputes/{dispute_id}",
        "/v1/disputes/{dispute_id}/evidence/{evidence_id}",
    ]


async def test_an_overridden_dependency_is_honoured_by_fastapis_way(
    container: Container, two: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    lean, _ = two
    app: FastAPI = lean.app  # type: ignore[attr-defined]
    merchant = await funded_merchant(container, "Shop")
    auth = await bearer(lean, merchant)
    await lean.get("/v1/payments/pay_nothing", headers=auth)
    served = _lean_of(app).served
    dependency = next(iter(find_lean_routes(app))).route.dependant.dependencies[0].call

    async def refuse() -> None:
        raise RuntimeError("overridden")

    app.dependency_overrides[dependency] = refuse
    answer = await lean.get("/v1/payments/pay_nothing", headers=auth)
    assert answer.status_code == 500, "the override ran: FastAPI's way"
    assert _lean_of(app).served == served
