"""The lean way in (platform/http/lean_routes.py) answers every request exactly as
FastAPI's own way does: the same requests are sent to an app with it and to one without
it, and the answers compared."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from tests.support.oauth import ACTOR, bearer, funded_merchant, make_client

from amanat.app import create_app
from amanat.auth.verification import require_scope
from amanat.bootstrap import Container
from amanat.kernel.errors import NotFound
from amanat.platform.http import lean_routes
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
        b.app = plain  # type: ignore[attr-defined]
        yield a, b


def _answer(response: httpx.Response) -> tuple[int, dict[str, str], object]:
    """The answer, less what two requests never share: their request ids, and the live
    counter and the wait left of the one quota both ways count against (each request
    spends one, and a slow machine can let a second pass between them)."""
    headers = {k: v for k, v in response.headers.items() if k not in _UNCOMPARED}
    for name in ("ratelimit", "retry-after"):
        if name in headers:
            headers[name] = re.sub(r"\d+", "N", headers[name])
    if response.headers.get("content-type", "").endswith("json"):
        body = response.json()
        if isinstance(body, dict):
            body.pop("request_id", None)
            if isinstance(body.get("detail"), str):
                # The wait left in the quota's window ticks down between two requests.
                body["detail"] = re.sub(r"retry in \d+ s", "retry in N s", body["detail"])
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


# Ids, timestamps and the ids inside texts differ between two creations by design.
_MINTED = re.compile(r"\b[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}\b|\d{4}-\d\d-\d\dT[\d:.]+Z")


def _created(response: httpx.Response) -> tuple[int, dict[str, str], object]:
    status, headers, body = _answer(response)
    headers.pop("location", None)
    return status, headers, _MINTED.sub("<minted>", repr(body))


async def test_writes_get_the_same_answer_with_and_without_the_lean_way(
    container: Container, two: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    """Every kind of POST a partner sends: accepted, replayed, refused by the guard, by
    validation of the body or of a header, by the business rules; each pair with its own
    idempotency key, so both ways do the work."""
    lean, plain = two
    merchant = await funded_merchant(container, "Shop", balance=1_000_000)
    auth = await bearer(lean, merchant)
    narrow = await make_client(container, name="Narrow", scopes=["balance:read"])
    narrow_auth = await bearer(lean, narrow)
    json_type = {"content-type": "application/json"}
    collection = {"type": "collection", "amount": 5_000, "debtor": {"raast_id": "+923001234567"}}
    cases: list[tuple[str, str, object, dict[str, str]]] = [
        ("/v1/payments", "ok", PAYOUT, auth),
        ("/v1/payments", "collection", collection, auth),
        ("/v1/payments", "no amount", {"creditor": {"iban": IBAN}}, auth),
        ("/v1/payments", "amount as text", {**PAYOUT, "amount": "150000"}, auth),
        ("/v1/payments", "unknown field", {**PAYOUT, "colour": "red"}, auth),
        (
            "/v1/payments",
            "two accounts",
            {**PAYOUT, "creditor": {"iban": IBAN, "raast_id": "x"}},
            auth,
        ),
        ("/v1/payments", "bad iban", {**PAYOUT, "creditor": {"iban": "PK00"}}, auth),
        ("/v1/payments", "a list", [PAYOUT], auth),
        ("/v1/payments", "more than the balance", {**PAYOUT, "amount": 90_000_000}, auth),
        ("/v1/payments", "no token", PAYOUT, {}),
        ("/v1/payments", "no token, bad body", {"amount": "x"}, {}),
        ("/v1/payments", "bad token", PAYOUT, {"Authorization": "Bearer not.a.token"}),
        ("/v1/payments", "no payments:write", PAYOUT, narrow_auth),
        ("/v1/payments", "no key", PAYOUT, auth | {"Idempotency-Key": ""}),
        ("/v1/payments", "key too long", PAYOUT, auth | {"Idempotency-Key": "k" * 301}),
        ("/v1/payments", "empty body", b"", auth | json_type),
        ("/v1/payments", "null", b"null", auth | json_type),
        ("/v1/payments", "a number", b"42", auth | json_type),
        ("/v1/payments", "not json", b"{", auth | json_type),
        ("/v1/payments", "a text body", b"hello", auth | {"content-type": "text/plain"}),
        ("/v1/payments", "json+ type", PAYOUT, auth | {"content-type": "application/x+json"}),
        ("/v1/refunds", "refund of nothing", {"payment_id": "pay_nothing"}, auth),
        ("/v1/refunds", "refund, bad amount", {"payment_id": "p", "amount": -1}, auth),
        ("/v1/payments/pay_nothing/cancel", "cancel nothing", None, auth),
        ("/v1/payments/pay_nothing/cancel/", "slash", None, auth),
        ("/v1/sandbox/top_ups", "top-up", {"amount": 100}, auth),
        ("/v1/customers", "customer, empty", {}, auth),
        ("/v1/webhook_endpoints", "endpoint, no url", {"enabled_events": []}, auth),
    ]
    served = _lean_of(lean.app).served  # type: ignore[attr-defined]
    for path, name, body, headers in cases:
        answers = []
        for client, way in ((lean, "lean"), (plain, "plain")):
            sent = {"Idempotency-Key": f"{name}-{way}", **headers}
            if not sent["Idempotency-Key"]:
                del sent["Idempotency-Key"]
            if isinstance(body, bytes):
                answers.append(await client.post(path, content=body, headers=sent))
            elif body is None:
                answers.append(await client.post(path, headers=sent))
            else:
                answers.append(await client.post(path, json=body, headers=sent))
        got, expected = answers
        if name == "top-up":  # the second top-up's balance is higher by design
            assert got.json()["available"] + 100 == expected.json()["available"]
            assert (got.status_code, sorted(got.json())) == (
                expected.status_code,
                sorted(expected.json()),
            )
            continue
        assert _created(got) == _created(expected), name
        if name == "ok":
            again = await lean.post(path, json=body, headers={"Idempotency-Key": "ok-lean", **auth})
            assert again.headers.get("idempotent-replayed") == "true"
            assert again.json()["id"] == got.json()["id"]
            changed = await lean.post(
                path, json={**PAYOUT, "amount": 1}, headers={"Idempotency-Key": "ok-lean", **auth}
            )
            assert changed.status_code == 422
    assert _lean_of(lean.app).served - served >= 20, "the lean way answered them"  # type: ignore[attr-defined]


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
    assert [(lean.method, lean.route.path) for lean in find_lean_routes(app)] == [
        ("POST", "/v1/payments"),
        ("GET", "/v1/payments/{payment_id}"),
        ("POST", "/v1/payments/{payment_id}/cancel"),
        ("POST", "/v1/refunds"),
        ("GET", "/v1/refunds/{refund_id}"),
        ("POST", "/v1/sandbox/top_ups"),
        ("POST", "/v1/events/{event_id}/redeliver"),
        ("POST", "/v1/webhook_endpoints"),
        ("POST", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"),
        ("POST", "/v1/webhook_endpoints/{endpoint_id}/replay"),
        ("POST", "/v1/customers"),
        ("POST", "/v1/payee_checks"),
        ("GET", "/v1/settlements/{settlement_id}"),
        ("GET", "/v1/settlements/{settlement_id}/lines.csv"),
        ("POST", "/v1/disputes"),
        ("GET", "/v1/disputes/{dispute_id}"),
        ("POST", "/v1/disputes/{dispute_id}/evidence"),
        ("GET", "/v1/disputes/{dispute_id}/evidence/{evidence_id}"),
        ("POST", "/v1/disputes/{dispute_id}/respond"),
        ("POST", "/v1/disputes/{dispute_id}/accept"),
        ("POST", "/v1/disputes/{dispute_id}/withdraw"),
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
    dependency = (
        next(
            lean for lean in find_lean_routes(app) if lean.route.path == "/v1/payments/{payment_id}"
        )
        .route.dependant.dependencies[0]
        .call
    )

    async def refuse() -> None:
        raise RuntimeError("overridden")

    app.dependency_overrides[dependency] = refuse
    answer = await lean.get("/v1/payments/pay_nothing", headers=auth)
    assert answer.status_code == 500, "the override ran: FastAPI's way"
    assert _lean_of(app).served == served


async def test_a_handler_added_after_the_first_request_applies_to_neither_way(
    container: Container, two: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    """Starlette copies the app's exception handlers when it builds the middleware stack;
    the lean way holds the same copy."""
    lean, plain = two
    merchant = await funded_merchant(container, "Shop")
    auth = await bearer(lean, merchant)
    for client in (lean, plain):
        await client.get("/v1/payments/pay_nothing", headers=auth)

    async def teapot(request: Any, exc: Exception) -> Any:
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("late", status_code=418)

    for client in (lean, plain):
        client.app.add_exception_handler(NotFound, teapot)  # type: ignore[attr-defined]
    got, expected = (
        await lean.get("/v1/payments/pay_nothing", headers=auth),
        await plain.get("/v1/payments/pay_nothing", headers=auth),
    )
    assert got.status_code == expected.status_code == 404
    assert _answer(got) == _answer(expected)


async def test_requests_fastapi_traces_take_fastapis_way(
    container: Container,
    two: tuple[httpx.AsyncClient, httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With FastAPI's own OpenTelemetry recording the request (a deployment that sets up
    a tracer provider), its route, operations and failed validations are recorded by
    FastAPI's way: the lean way steps aside."""
    lean, _ = two
    app: FastAPI = lean.app  # type: ignore[attr-defined]
    merchant = await funded_merchant(container, "Shop")
    auth = await bearer(lean, merchant)
    await lean.get("/v1/payments/pay_nothing", headers=auth)
    served = _lean_of(app).served
    monkeypatch.setattr(lean_routes, "get_telemetry_data", lambda: object())
    assert (await lean.get("/v1/payments/pay_nothing", headers=auth)).status_code == 404
    assert _lean_of(app).served == served


def test_a_route_class_with_its_own_handler_is_never_lean() -> None:
    """Open banking's and the console's routes answer through their route class (FAPI
    headers, OBIE error bodies, signatures): the lean way would bypass it."""

    class OwnRoute(APIRoute):
        pass

    guard = require_scope("payments:read")

    async def read(item_id: str, request: Request, caller: Any = Depends(guard)) -> Response:
        return Response()

    app = FastAPI()
    own = APIRouter(route_class=OwnRoute)
    own.add_api_route("/own/{item_id}", read, methods=["GET"])
    plain = APIRouter()
    plain.add_api_route("/plain/{item_id}", read, methods=["GET"])
    app.include_router(own)
    app.include_router(plain)
    assert [lean.route.path for lean in find_lean_routes(app)] == ["/plain/{item_id}"]


def test_routes_added_after_the_first_request_are_seen() -> None:
    """The lean routes are found again when the app's routes change: a route added to the
    app, to a router it included, or put in its list directly."""
    guard = require_scope("payments:read")

    async def read(item_id: str, request: Request, caller: Any = Depends(guard)) -> Response:
        return Response()

    app = FastAPI()
    first = APIRouter()
    first.add_api_route("/first/{item_id}", read, methods=["GET"])
    app.include_router(first)
    lean = LeanRoutes(app, fastapi_app=app)

    def paths() -> list[str]:
        return [found.route.path for found in lean._current()]

    assert paths() == ["/first/{item_id}"]
    assert paths() == ["/first/{item_id}"]  # unchanged: the same list, not found again
    app.add_api_route("/app/{item_id}", read, methods=["GET"])
    assert paths() == ["/first/{item_id}", "/app/{item_id}"]
    first.add_api_route("/later/{item_id}", read, methods=["GET"])
    assert "/later/{item_id}" in paths()
    # A route put first by hand shadows the others: FastAPI would choose it.
    app.router.routes.insert(0, APIRoute("/{anything:path}", read, methods=["GET"]))
    found = next(f for f in lean._current() if f.route.path == "/first/{item_id}")
    assert any(earlier.match("/first/1") for earlier in found.earlier)
