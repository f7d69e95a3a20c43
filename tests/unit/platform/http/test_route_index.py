"""Indexed routers answer every request exactly as FastAPI's own routing does."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse
from starlette.routing import Mount

from amanat.platform.http.route_index import IndexedRouter, index_included_routers


def _routers() -> list[APIRouter]:
    payments = APIRouter()

    @payments.post("/v1/payments")
    async def create() -> dict[str, str]:
        return {"route": "create"}

    @payments.get("/v1/payments/{payment_id}")
    async def read(payment_id: str) -> dict[str, str]:
        return {"route": "read", "id": payment_id}

    @payments.get("/v1/items/{number:int}")
    async def item(number: int) -> dict[str, int]:
        return {"number": number}

    banks = APIRouter()

    @banks.get("/v1/banks")
    async def banks_list() -> dict[str, str]:
        return {"route": "banks"}

    @banks.get("/v1/payments/{payment_id}/history")
    async def history(payment_id: str) -> dict[str, str]:
        return {"route": "history", "id": payment_id}

    mounted = APIRouter()
    mounted.routes.append(Mount("/files", app=PlainTextResponse("a file")))
    return [payments, banks, mounted]


def _app(*, indexed: bool) -> tuple[FastAPI, list[APIRouter]]:
    app = FastAPI(redirect_slashes=True)
    routers = _routers()
    for router in routers:
        app.include_router(router)

    @app.get("/late")
    async def late() -> dict[str, str]:
        return {"route": "late"}

    if indexed:
        assert index_included_routers(app) == len(routers)
    return app, routers


REQUESTS = [
    ("POST", "/v1/payments"),
    ("GET", "/v1/payments"),  # wrong method: 405
    ("GET", "/v1/payments/pay_1"),
    ("GET", "/v1/payments/pay_1/history"),
    ("GET", "/v1/payments/pay_1/"),  # redirect without the slash
    ("GET", "/v1/items/12"),
    ("GET", "/v1/items/twelve"),  # the convertor refuses: 404
    ("GET", "/v1/banks"),
    ("DELETE", "/v1/banks"),
    ("GET", "/files/x"),
    ("GET", "/late"),
    ("GET", "/nowhere"),
]


@pytest.mark.parametrize(("method", "path"), REQUESTS)
def test_an_indexed_app_answers_as_the_plain_one(method: str, path: str) -> None:
    plain, _ = _app(indexed=False)
    indexed, _ = _app(indexed=True)
    with TestClient(plain) as a, TestClient(indexed) as b:
        expected = a.request(method, path, follow_redirects=False)
        got = b.request(method, path, follow_redirects=False)
    assert (got.status_code, got.headers.get("location"), got.content) == (
        expected.status_code,
        expected.headers.get("location"),
        expected.content,
    )


def test_a_route_added_after_the_first_request_is_found() -> None:
    app, (payments, *_) = _app(indexed=True)
    with TestClient(app) as client:
        assert client.get("/v1/refunds").status_code == 404

        @payments.get("/v1/refunds")
        async def refunds() -> dict[str, str]:
            return {"route": "refunds"}

        assert client.get("/v1/refunds").json() == {"route": "refunds"}


def test_a_router_holding_more_than_api_routes_is_never_skipped() -> None:
    app, _ = _app(indexed=True)
    indexed = [route for route in app.router.routes if isinstance(route, IndexedRouter)]
    with TestClient(app):
        patterns = [route._path_pattern() for route in indexed]
    assert patterns[0] is not None and patterns[1] is not None
    assert patterns[2] is None  # the mount: FastAPI's own matching decides


def test_every_path_of_a_small_alphabet_is_routed_as_fastapi_routes_it() -> None:
    """The first router that may hold a path is found for all routers at once; every
    route, 405, redirect and 404 must come out as FastAPI's own walk gives it."""
    segments = ["v1", "payments", "pay_1", "history", "banks", "items", "12", "files"]
    paths = ["/"] + [f"/{a}" for a in segments]
    paths += [f"/{a}/{b}" for a in segments for b in segments]
    paths += [f"/v1/{a}/{b}" for a in segments for b in segments]
    paths += [f"/v1/payments/pay_1/{a}" for a in segments] + ["/v1/payments/pay_1/history/"]
    plain, _ = _app(indexed=False)
    indexed, _ = _app(indexed=True)
    with TestClient(plain) as a, TestClient(indexed) as b:
        for method in ("GET", "POST"):
            for path in paths:
                expected = a.request(method, path, follow_redirects=False)
                got = b.request(method, path, follow_redirects=False)
                assert (got.status_code, got.headers.get("location"), got.content) == (
                    expected.status_code,
                    expected.headers.get("location"),
                    expected.content,
                ), (method, path)


def test_a_late_route_is_sent_straight_to_and_other_requests_take_the_walk() -> None:
    """The top-level index sends a request that a route matches fully straight to it; a
    wrong method, a redirect, a 404 and anything behind a router no pattern can judge (the
    one holding a mount) take FastAPI's own walk, which answers them."""
    app, _ = _app(indexed=True)
    dispatch = app.router.middleware_stack
    walked: list[str] = []
    walk = dispatch._walk

    async def counting_walk(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            walked.append(scope["path"])
        await walk(scope, receive, send)

    dispatch._walk = counting_walk
    with TestClient(app) as client:
        assert client.get("/v1/banks").json() == {"route": "banks"}
        assert client.get("/v1/payments/pay_1/history").json()["route"] == "history"
        assert walked == []
        assert client.get("/late").json() == {"route": "late"}
        assert client.get("/v1/payments").status_code == 405
        assert client.get("/v1/payments/pay_1/", follow_redirects=False).status_code == 307
        assert client.get("/nowhere").status_code == 404
        # The router holding the mount is asked as the walk would ask it, and matches.
        assert client.get("/files/x").text == "a file"
    assert walked == ["/late", "/v1/payments", "/v1/payments/pay_1/", "/nowhere"]


def test_a_route_added_to_the_app_after_indexing_is_indexed() -> None:
    app, _ = _app(indexed=True)
    with TestClient(app) as client:
        assert client.get("/later").status_code == 404

        @app.get("/later")
        async def later() -> dict[str, str]:
            return {"route": "later"}

        assert client.get("/later").json() == {"route": "later"}
