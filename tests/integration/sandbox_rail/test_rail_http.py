"""The sandbox rail over HTTP: the protocol of docs/sandbox-rail.md, end to end in-process.

The rail app is driven through ``httpx.ASGITransport``; its callbacks go to a tiny
recording ASGI app (also over ``ASGITransport``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from amanat.kernel.clock import FrozenClock, format_timestamp
from amanat.kernel.pakistan import iban_check_digits, make_iban
from amanat.kernel.rail_signatures import InvalidCallbackSignature, verify
from amanat.sandbox_rail import RailEngine, RailSettings, create_rail_app

SECRET = "rail-callback-secret"
ADMIN = {"Rail-Admin-Token": "let-me-in"}
IBAN = str(make_iban("MEZN", "0000000012345678"))
CALLBACK_URL = "http://amanat.test/rail/callbacks"


class Recorder:
    """A receiving app that checks each callback's signature and records it."""

    def __init__(self, clock: FrozenClock) -> None:
        self.events: list[dict[str, Any]] = []
        self.rejected = 0
        self.app = FastAPI()

        @self.app.post("/rail/callbacks")
        async def receive(request: Request) -> Response:
            body = await request.body()
            try:
                verify(SECRET, request.headers.get("Rail-Signature"), body, clock.now())
            except InvalidCallbackSignature:
                self.rejected += 1
                return Response(status_code=401)
            self.events.append(json.loads(body))
            return Response(status_code=204)

    def seen(self) -> list[tuple[str, int]]:
        return [(event["status"], event["sequence"]) for event in self.events]


class Sleeps:
    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def recorder(clock: FrozenClock) -> Recorder:
    return Recorder(clock)


@pytest.fixture
async def rail(clock: FrozenClock, sleeps: Sleeps, recorder: Recorder) -> AsyncIterator[FastAPI]:
    callbacks = httpx.AsyncClient(transport=httpx.ASGITransport(app=recorder.app))
    app = create_rail_app(
        RailSettings(
            callback_secret=SECRET,
            admin_token=ADMIN["Rail-Admin-Token"],
            settle_delay=0,
            clock=clock,
            sleep=sleeps,
            http=callbacks,
        )
    )
    async with app.router.lifespan_context(app):
        yield app
    await callbacks.aclose()


@pytest.fixture
async def client(rail: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=rail)
    async with httpx.AsyncClient(transport=transport, base_url="http://rail.test") as http:
        yield http


def engine_of(app: FastAPI) -> RailEngine:
    engine = app.state.rail_engine
    assert isinstance(engine, RailEngine)
    return engine


def body(amount: Any = 250_000, e2e: str = "pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C", **extra: Any) -> Any:
    payload: dict[str, Any] = {
        "end_to_end_id": e2e,
        "type": "credit_transfer",
        "amount": amount,
        "currency": "PKR",
        "creditor": {"iban": IBAN, "name": "Bilal Ahmed"},
        "debtor": {"raast_id": "0300-1234567"},
        "callback_url": CALLBACK_URL,
    }
    payload.update(extra)
    return {k: v for k, v in payload.items() if v is not None}


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_submit_enquire_and_receive_signed_callbacks(
    client: httpx.AsyncClient, rail: FastAPI, recorder: Recorder, clock: FrozenClock
) -> None:
    response = await client.post("/v1/transfers", json=body())
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["end_to_end_id"] == "pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C"
    assert accepted["status"] == "accepted"
    assert accepted["rail_reference"].startswith("RRN")
    await engine_of(rail).drain()
    status = await client.get("/v1/transfers/pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C")
    assert status.status_code == 200
    assert status.json() == {
        "end_to_end_id": "pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C",
        "type": "credit_transfer",
        "status": "settled",
        "reason_code": None,
        "reason": None,
        "sequence": 2,
        "updated_at": format_timestamp(clock.now()),
    }
    assert recorder.seen() == [("accepted", 1), ("settled", 2)]
    assert recorder.rejected == 0


async def test_unknown_transfer_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/transfers/pay_nobody")
    assert (response.status_code, response.json()) == (404, {"error": "unknown_transfer"})


async def test_refusal_arrives_by_callback_and_enquiry(
    client: httpx.AsyncClient, rail: FastAPI, recorder: Recorder
) -> None:
    assert (await client.post("/v1/transfers", json=body(100_002))).status_code == 202
    await engine_of(rail).drain()
    status = (await client.get("/v1/transfers/pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C")).json()
    assert (status["status"], status["reason_code"]) == ("rejected", "AC06")
    assert recorder.events[-1]["reason_code"] == "AC06"


async def test_request_to_pay_is_approved(
    client: httpx.AsyncClient, rail: FastAPI, recorder: Recorder, clock: FrozenClock
) -> None:
    expires = format_timestamp(clock.now() + timedelta(minutes=10))
    response = await client.post(
        "/v1/transfers", json=body(type="request_to_pay", expires_at=expires)
    )
    assert response.status_code == 202
    await engine_of(rail).drain()
    assert recorder.seen() == [("accepted", 1), ("approved", 2)]


async def test_resubmission_is_idempotent_and_a_changed_body_conflicts(
    client: httpx.AsyncClient, rail: FastAPI, recorder: Recorder
) -> None:
    first = await client.post("/v1/transfers", json=body())
    await engine_of(rail).drain()
    # Same content, other spelling: keys reordered, Raast ID in another accepted form.
    same = dict(reversed(list(body(debtor={"raast_id": "+923001234567"}).items())))
    again = await client.post("/v1/transfers", json=same)
    assert (again.status_code, again.json()) == (202, first.json())
    await engine_of(rail).drain()
    assert recorder.seen() == [("accepted", 1), ("settled", 2)], "no second credit"
    conflict = await client.post("/v1/transfers", json=body(amount=250_001))
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "duplicate_end_to_end_id"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (body(amount=2500.5), "invalid_request"),
        (body(amount=0), "invalid_request"),
        (body(currency="USD"), "invalid_request"),
        (body(type="direct_debit"), "invalid_request"),
        (body(colour="blue"), "invalid_request"),
        (body(creditor={"iban": IBAN, "raast_id": "03001234567"}), "invalid_request"),
        (body(creditor={"iban": "PK00TEST"}), "invalid_iban"),
        (body(creditor={"raast_id": "021-1234567"}), "invalid_raast_id"),
        ({"end_to_end_id": "pay_x"}, "invalid_request"),
        ([1, 2, 3], "invalid_request"),
    ],
)
async def test_invalid_submissions_are_400(
    client: httpx.AsyncClient, payload: Any, error: str
) -> None:
    response = await client.post("/v1/transfers", json=payload)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert "detail" in response.json()


async def test_an_iban_of_an_unknown_bank_is_400(client: httpx.AsyncClient) -> None:
    unknown = f"PK{iban_check_digits('QQQQ', '0000000012345678')}QQQQ0000000012345678"
    response = await client.post("/v1/transfers", json=body(creditor={"iban": unknown}))
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_iban",
        "detail": {
            "field": "creditor.iban",
            "reason": "unknown_bank",
            "message": response.json()["detail"]["message"],
        },
    }


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/transfers", content=b'{"end_to_end_id": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


async def test_unavailable_value_gives_503_twice_then_202(
    client: httpx.AsyncClient, rail: FastAPI
) -> None:
    for _ in range(2):
        refused = await client.post("/v1/transfers", json=body(100_006))
        assert refused.status_code == 503
        assert refused.json() == {"error": "rail_unavailable"}
        assert refused.headers["Retry-After"] == "1"
    assert (await client.post("/v1/transfers", json=body(100_006))).status_code == 202


async def test_timeout_value_holds_the_first_answer(
    client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    assert (await client.post("/v1/transfers", json=body(100_005))).status_code == 202
    assert sleeps.asked.count(15.0) == 1
    assert (await client.post("/v1/transfers", json=body(100_005))).status_code == 202
    assert sleeps.asked.count(15.0) == 1, "a replay answers at once"


async def test_admin_needs_the_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/faults")).status_code == 401
    wrong = await client.get("/admin/faults", headers={"Rail-Admin-Token": "guess"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "unauthorized"})
    refused = await client.post("/admin/faults", json={"downtime_seconds": 60})
    assert refused.status_code == 401
    assert (await client.get("/admin/faults", headers=ADMIN)).json()["down"] is False


async def test_downtime_makes_v1_unavailable_until_it_ends(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    set_ = await client.post("/admin/faults", json={"downtime_seconds": 45}, headers=ADMIN)
    assert set_.status_code == 200
    assert set_.json()["down"] is True
    for response in (
        await client.post("/v1/transfers", json=body()),
        await client.post("/v1/transfers", json={"not": "even valid"}),
        await client.get("/v1/transfers/pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C"),
    ):
        assert response.status_code == 503
        assert response.json() == {"error": "rail_unavailable"}
        assert response.headers["Retry-After"] == "45"
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/admin/faults", headers=ADMIN)).json()["retry_after_seconds"] == 45
    clock.advance(46)
    assert (await client.post("/v1/transfers", json=body())).status_code == 202


async def test_reset_ends_downtime_and_latency_delays_answers(
    client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    await client.post("/admin/faults", json={"downtime_seconds": 600}, headers=ADMIN)
    reset = await client.post(
        "/admin/faults", json={"reset": True, "latency_ms": 750}, headers=ADMIN
    )
    assert reset.json() == {
        "down": False,
        "down_until": None,
        "retry_after_seconds": None,
        "latency_ms": 750,
        "error_rate": 0.0,
    }
    assert (await client.get("/v1/transfers/pay_x")).status_code == 404
    assert sleeps.asked == [0.75]
    await client.get("/healthz")
    assert sleeps.asked == [0.75], "only /v1 is slowed"


async def test_invalid_fault_bodies_are_400(client: httpx.AsyncClient) -> None:
    for bad in ({"downtime_seconds": -1}, {"latency_ms": "fast"}, {"chaos": True}):
        response = await client.post("/admin/faults", json=bad, headers=ADMIN)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


async def test_callback_failures_are_retried_and_never_block_submission(
    clock: FrozenClock, sleeps: Sleeps
) -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(502 if len(calls) == 1 else 200)

    callbacks = httpx.AsyncClient(transport=httpx.MockTransport(flaky))
    app = create_rail_app(
        RailSettings(
            callback_secret=SECRET,
            admin_token="a",
            settle_delay=0,
            clock=clock,
            sleep=sleeps,
            http=callbacks,
        )
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client,
    ):
        assert (await client.post("/v1/transfers", json=body())).status_code == 202
        await engine_of(app).drain()
        deliveries = [(d.sequence, d.status_code) for d in engine_of(app).deliveries]
        assert deliveries == [(1, 502), (1, 200), (2, 200)]
    await callbacks.aclose()


async def test_shutdown_cancels_pending_timers() -> None:
    app = create_rail_app(RailSettings(callback_secret=SECRET, admin_token="a", settle_delay=3600))
    engine = engine_of(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client,
    ):
        assert (await client.post("/v1/transfers", json=body(100_010))).status_code == 202
        assert engine.pending_tasks == 1
    assert engine.pending_tasks == 0


async def test_mounted_under_a_prefix_it_still_gates_v1(clock: FrozenClock) -> None:
    rail = create_rail_app(
        RailSettings(callback_secret=SECRET, admin_token="a", settle_delay=3600, clock=clock)
    )
    host = FastAPI()
    host.mount("/sandbox-rail", rail)
    engine = engine_of(rail)
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
        assert (await client.get("/sandbox-rail/healthz")).status_code == 200
        accepted = await client.post("/sandbox-rail/v1/transfers", json=body(100_010))
        assert accepted.status_code == 202
        engine.set_faults(downtime_seconds=5)
        down = await client.get("/sandbox-rail/v1/transfers/pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C")
        assert (down.status_code, down.headers["Retry-After"]) == (503, "5")
    await engine.aclose()  # a mounted app's lifespan is the host's job
    assert engine.pending_tasks == 0


async def test_unknown_routes_and_ids_answer_in_the_rail_error_shape(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/v1/nothing-here")
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found"})
    wrong = await client.delete("/v1/transfers/pay_1")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "method_not_allowed"})
    slash = await client.post("/v1/transfers", json=body(e2e="pay/01"))
    assert (slash.status_code, slash.json()["error"]) == (400, "invalid_request")


async def test_the_title_fetch_names_a_holder_or_no_one(client: httpx.AsyncClient) -> None:
    first = await client.get("/v1/titles", params={"iban": "PK66HABB0000001234567890"})
    again = await client.get("/v1/titles", params={"iban": "PK66HABB0000001234567890"})
    assert first.status_code == 200
    assert first.json() == again.json()  # deterministic: the same holder every time
    assert first.json()["title"].isupper()
    nobody = await client.get("/v1/titles", params={"raast_id": "+923001230000"})
    assert nobody.status_code == 404
    assert nobody.json()["error"] == "unknown_account"
    assert (await client.get("/v1/titles")).status_code == 400
