"""amanat's rail adapter against the sandbox rail (in-process), plus signatures and breaker.

Every test value of docs/sandbox-rail.md is checked for what amanat can observe: the
submission's result, the status enquiry and the verified callbacks, in arrival order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from amanat.kernel.clock import FrozenClock
from amanat.kernel.pakistan import make_iban
from amanat.kernel.rail_signatures import sign, verify
from amanat.payments.adapters.breaker import CircuitBreaker
from amanat.payments.adapters.raast_http import RaastHttpAdapter
from amanat.payments.rail import (
    Acceptance,
    InvalidCallback,
    InvalidCallbackSignature,
    RailAlreadyHolds,
    RailCallback,
    RailRejected,
    RailTimeout,
    RailUnavailable,
    Submission,
)
from amanat.sandbox_rail import MAGIC_VALUES, MagicValue, RailEngine, RailSettings, create_rail_app
from amanat.sandbox_rail.magic import final_status

SECRET = "shared-callback-secret"
BASE = "http://rail.test"
CREDITOR = {"iban": str(make_iban("UNIL", "0000000099887766")), "name": "Sana Malik"}
DEBTOR = {"raast_id": "+923331234567"}


# --------------------------------------------------------------------------------------
# Harness: rail app ⇄ adapter, callbacks to a receiver that verifies with the adapter
# --------------------------------------------------------------------------------------


class Sleeps:
    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


class EnforceTimeouts(httpx.AsyncBaseTransport):
    """``ASGITransport`` ignores timeouts; this applies the request's read timeout."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            return await asyncio.wait_for(self.inner.handle_async_request(request), timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("read timed out", request=request) from None


class Counting(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return await self.inner.handle_async_request(request)


@dataclass
class Harness:
    adapter: RaastHttpAdapter
    engine: RailEngine
    sleeps: Sleeps
    clock: FrozenClock
    callbacks: list[RailCallback] = field(default_factory=list)

    def seen(self) -> list[tuple[str, int]]:
        return [(callback.status, callback.sequence) for callback in self.callbacks]


def receiver(harness: Callable[[], Harness]) -> FastAPI:
    app = FastAPI()

    @app.post("/rail/callbacks")
    async def receive(request: Request) -> Response:
        h = harness()
        try:
            callback = h.adapter.verify_callback(request.headers, await request.body())
        except InvalidCallback:
            return Response(status_code=400)
        h.callbacks.append(callback)
        return Response(status_code=204)

    return app


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    clock = FrozenClock()
    sleeps = Sleeps()
    holder: list[Harness] = []
    callbacks_http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=receiver(lambda: holder[0]))
    )
    rail = create_rail_app(
        RailSettings(
            callback_secret=SECRET,
            admin_token="admin",
            settle_delay=0,
            clock=clock,
            sleep=sleeps,
            http=callbacks_http,
        )
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rail))
    # Why 10 s: no test here relies on the deadline firing (the rail's holds go through
    # the fake sleeps); 1 s could fire on a slow, shared machine.
    adapter = RaastHttpAdapter(http, BASE, SECRET, timeout_seconds=10, clock=clock)
    holder.append(Harness(adapter, rail.state.rail_engine, sleeps, clock))
    async with rail.router.lifespan_context(rail):
        yield holder[0]
    await http.aclose()
    await callbacks_http.aclose()


def submission(
    amount: int = 500_000,
    *,
    e2e: str = "pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C",
    kind: str = "credit_transfer",
) -> Submission:
    return Submission(
        end_to_end_id=e2e,
        kind="request_to_pay" if kind == "request_to_pay" else "credit_transfer",
        amount=amount,
        currency="PKR",
        creditor=CREDITOR,
        debtor=DEBTOR,
        callback_url="http://amanat.test/rail/callbacks",
        expires_at=None,
    )


# --------------------------------------------------------------------------------------
# Every test value, as amanat sees it
# --------------------------------------------------------------------------------------


def _expected_callbacks(value: MagicValue, final: str) -> list[tuple[str, int]]:
    return {
        "delayed_callback": [("accepted", 1), (final, 2)],
        "duplicate_callback": [("accepted", 1), (final, 2), (final, 2)],
        "out_of_order": [(final, 2), ("accepted", 1)],
        "no_callback": [],
    }.get(value.code, [("accepted", 1), (final, 2)])


CASES = [
    pytest.param(value, kind, id=f"{value.amount_suffix}-{value.code}-{kind}")
    for value in MAGIC_VALUES
    for kind in ("credit_transfer", "request_to_pay")
    if kind in value.applies_to
]


@pytest.mark.parametrize(("value", "kind"), CASES)
async def test_every_magic_value_is_observable(
    harness: Harness, value: MagicValue, kind: str
) -> None:
    sub = submission(value.example_amount, kind=kind)
    if value.code == "unavailable_twice":
        for _ in range(2):
            with pytest.raises(RailUnavailable) as unavailable:
                await harness.adapter.submit(sub)
            assert unavailable.value.retry_after == 1.0
        assert await harness.adapter.status(sub.end_to_end_id) is None, "nothing recorded"
    acceptance = await harness.adapter.submit(sub)
    assert acceptance.end_to_end_id == sub.end_to_end_id
    await harness.engine.drain()

    final = final_status(value, kind)
    status = await harness.adapter.status(sub.end_to_end_id)
    assert status is not None
    assert (status.status, status.reason_code, status.sequence) == (final, value.reason_code, 2)
    assert status.is_terminal
    assert harness.seen() == _expected_callbacks(value, final)
    if harness.callbacks:
        assert {c.end_to_end_id for c in harness.callbacks} == {sub.end_to_end_id}
    if value.code == "duplicate_callback":
        assert harness.callbacks[1].event_id == harness.callbacks[2].event_id
    if value.code == "delayed_callback":
        assert 10.0 in harness.sleeps.asked
    if value.code == "submission_timeout":
        assert 15.0 in harness.sleeps.asked


async def test_timeout_value_maps_to_rail_timeout_and_a_retry_finds_it() -> None:
    clock = FrozenClock()
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    callbacks = httpx.AsyncClient(transport=httpx.MockTransport(record))
    rail = create_rail_app(
        RailSettings(
            callback_secret=SECRET,
            admin_token="a",
            settle_delay=0,
            # Far beyond the hasty deadline below: only the held answer may time out.
            timeout_hold_seconds=30,
            clock=clock,
            http=callbacks,
        )
    )
    http = httpx.AsyncClient(transport=EnforceTimeouts(httpx.ASGITransport(app=rail)))
    # Why 1 s: the submission must reach the rail (which records it, then holds its
    # answer) before the deadline; the cancelled hold ends the wait, so the test still
    # takes about a second. 20 ms left a loaded machine no room to get there.
    hasty = RaastHttpAdapter(http, BASE, SECRET, timeout_seconds=1.0, clock=clock)
    # Why 5 s: the enquiry and the resubmit are not held and must not time out.
    adapter = RaastHttpAdapter(http, BASE, SECRET, timeout_seconds=5, clock=clock)
    async with rail.router.lifespan_context(rail):
        with pytest.raises(RailTimeout):
            await hasty.submit(submission(100_005))
        engine = rail.state.rail_engine
        await engine.drain()
        status = await adapter.status("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C")
        assert status is not None
        assert status.status == "settled", "the rail took it although the answer never came"
        again = await adapter.submit(submission(100_005))
        assert again.rail_reference.startswith("RRN")
        assert [adapter.verify_callback(r.headers, r.content).status for r in seen] == [
            "accepted",
            "settled",
        ]
    await http.aclose()
    await callbacks.aclose()


async def test_duplicate_submission_is_idempotent(harness: Harness) -> None:
    first = await harness.adapter.submit(submission())
    await harness.engine.drain()
    second = await harness.adapter.submit(submission())
    await harness.engine.drain()
    assert first == second
    assert harness.seen() == [("accepted", 1), ("settled", 2)]


async def test_an_id_the_rail_already_holds_is_never_a_refusal(harness: Harness) -> None:
    """409 duplicate_end_to_end_id: the transfer exists and may move money, so the caller
    must enquire (a RailTimeout), never fail the payment and release its hold."""
    await harness.adapter.submit(submission())
    with pytest.raises(RailAlreadyHolds) as conflict:
        await harness.adapter.submit(submission(500_100))
    assert isinstance(conflict.value, RailTimeout)
    assert not isinstance(conflict.value, RailRejected)


async def test_synchronous_refusals_map_to_rail_rejected(harness: Harness) -> None:
    bad = Submission(
        end_to_end_id="pay_bad",
        kind="credit_transfer",
        amount=1000,
        currency="PKR",
        creditor={"iban": "PK00SCBL0000000000000000"},
        debtor=None,
        callback_url="http://amanat.test/rail/callbacks",
        expires_at=None,
    )
    with pytest.raises(RailRejected) as invalid:
        await harness.adapter.submit(bad)
    assert (invalid.value.code, invalid.value.status_code) == ("invalid_iban", 400)
    assert invalid.value.reason is not None and "creditor.iban" in invalid.value.reason
    assert harness.adapter.breaker.state == "closed", "a refusal means the rail is up"


async def test_request_to_pay_with_expiry_expires(harness: Harness) -> None:
    sub = Submission(
        end_to_end_id="pay_rtp",
        kind="request_to_pay",
        amount=100_022,
        currency="PKR",
        creditor=CREDITOR,
        debtor=DEBTOR,
        callback_url="http://amanat.test/rail/callbacks",
        expires_at=harness.clock.now() + timedelta(minutes=3),
    )
    await harness.adapter.submit(sub)
    await harness.engine.drain()
    assert 180.0 in harness.sleeps.asked
    assert harness.seen() == [("accepted", 1), ("expired", 2)]
    assert harness.callbacks[-1].reason_code == "NOAS"


async def test_status_of_an_unknown_transfer_is_none(harness: Harness) -> None:
    assert await harness.adapter.status("pay_never_sent") is None


async def test_downtime_maps_to_rail_unavailable_with_retry_after(harness: Harness) -> None:
    harness.engine.set_faults(downtime_seconds=20)
    with pytest.raises(RailUnavailable) as down:
        await harness.adapter.submit(submission())
    assert down.value.retry_after == 20.0
    with pytest.raises(RailUnavailable):
        await harness.adapter.status("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C")


# --------------------------------------------------------------------------------------
# Transport failures, classified
# --------------------------------------------------------------------------------------


def adapter_on(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: object
) -> RaastHttpAdapter:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return RaastHttpAdapter(http, BASE, SECRET, **kwargs)  # type: ignore[arg-type]


def raising(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    return handler


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ConnectError, RailUnavailable),
        (httpx.ConnectTimeout, RailUnavailable),
        (httpx.PoolTimeout, RailUnavailable),
        (httpx.ReadTimeout, RailTimeout),
        (httpx.WriteTimeout, RailTimeout),
        (httpx.RemoteProtocolError, RailTimeout),
        (httpx.ReadError, RailTimeout),
    ],
)
async def test_transport_failures_say_whether_the_rail_may_have_acted(
    failure: type[httpx.TransportError], expected: type[Exception]
) -> None:
    adapter = adapter_on(raising(failure))
    with pytest.raises(expected):
        await adapter.submit(submission())


@pytest.mark.parametrize("status_code", [500, 502, 503, 504, 429])
async def test_server_errors_are_unavailable(status_code: int) -> None:
    adapter = adapter_on(
        lambda request: httpx.Response(status_code, headers={"Retry-After": "7"}, text="oops")
    )
    with pytest.raises(RailUnavailable) as unavailable:
        await adapter.submit(submission())
    assert unavailable.value.retry_after == 7.0


async def test_an_unreadable_acceptance_is_an_unknown_outcome() -> None:
    adapter = adapter_on(lambda request: httpx.Response(202, text="<html>ok</html>"))
    with pytest.raises(RailTimeout):
        await adapter.submit(submission())


async def test_the_adapter_sends_the_protocol_body() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(202, json={"end_to_end_id": "pay_1", "rail_reference": "RRN1"})

    adapter = adapter_on(handler, timeout_seconds=2.5)
    clock = FrozenClock()
    sub = Submission(
        "pay_1", "request_to_pay", 700, "PKR", CREDITOR, DEBTOR, "https://a.test/cb", clock.now()
    )
    assert await adapter.submit(sub) == Acceptance("pay_1", "RRN1")
    assert json.loads(sent[0].content) == {
        "end_to_end_id": "pay_1",
        "type": "request_to_pay",
        "amount": 700,
        "currency": "PKR",
        "creditor": CREDITOR,
        "debtor": DEBTOR,
        "callback_url": "https://a.test/cb",
        "expires_at": "2026-11-24T08:15:30.123Z",
    }
    assert str(sent[0].url) == "http://rail.test/v1/transfers"
    assert sent[0].extensions["timeout"]["read"] == 2.5


# --------------------------------------------------------------------------------------
# Callback signatures
# --------------------------------------------------------------------------------------

BODY = (
    b'{"event_id":"rev_01","end_to_end_id":"pay_1","status":"settled","reason_code":null,'
    b'"reason":null,"sequence":2,"occurred_at":"2026-11-24T08:15:30.123Z"}'
)


@pytest.fixture
def verifier() -> tuple[RaastHttpAdapter, FrozenClock]:
    clock = FrozenClock()
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    return RaastHttpAdapter(http, BASE, SECRET, clock=clock), clock


def now_t(clock: FrozenClock) -> int:
    return int(clock.now().timestamp())


def test_a_good_signature_verifies_and_parses(
    verifier: tuple[RaastHttpAdapter, FrozenClock],
) -> None:
    adapter, clock = verifier
    callback = adapter.verify_callback({"Rail-Signature": sign(SECRET, BODY, now_t(clock))}, BODY)
    assert (callback.event_id, callback.status, callback.sequence) == ("rev_01", "settled", 2)
    assert callback.is_terminal
    lower = adapter.verify_callback({"rail-signature": sign(SECRET, BODY, now_t(clock))}, BODY)
    assert lower == callback


def test_a_tampered_body_is_refused(verifier: tuple[RaastHttpAdapter, FrozenClock]) -> None:
    adapter, clock = verifier
    header = sign(SECRET, BODY, now_t(clock))
    with pytest.raises(InvalidCallbackSignature) as refused:
        adapter.verify_callback({"Rail-Signature": header}, BODY.replace(b"settled", b"rejected"))
    assert refused.value.reason == "mismatch"


def test_another_secret_is_refused(verifier: tuple[RaastHttpAdapter, FrozenClock]) -> None:
    adapter, clock = verifier
    with pytest.raises(InvalidCallbackSignature) as refused:
        adapter.verify_callback(
            {"Rail-Signature": sign("not-the-secret", BODY, now_t(clock))}, BODY
        )
    assert refused.value.reason == "mismatch"


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_a_timestamp_outside_five_minutes_is_refused(
    verifier: tuple[RaastHttpAdapter, FrozenClock], skew: int
) -> None:
    adapter, clock = verifier
    header = sign(SECRET, BODY, now_t(clock) + skew)
    with pytest.raises(InvalidCallbackSignature) as refused:
        adapter.verify_callback({"Rail-Signature": header}, BODY)
    assert refused.value.reason == "stale"


def test_a_timestamp_within_tolerance_passes(
    verifier: tuple[RaastHttpAdapter, FrozenClock],
) -> None:
    adapter, clock = verifier
    header = sign(SECRET, BODY, now_t(clock))
    clock.advance(299)
    adapter.verify_callback({"Rail-Signature": header}, BODY)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"Rail-Signature": ""}, "missing"),
        ({"Rail-Signature": "v1=abcdef"}, "malformed"),
        ({"Rail-Signature": "t=1795508130"}, "malformed"),
        ({"Rail-Signature": "t=soon,v1=abcdef"}, "malformed"),
        ({"Rail-Signature": "garbage"}, "malformed"),
    ],
)
def test_missing_or_malformed_headers_are_refused(
    verifier: tuple[RaastHttpAdapter, FrozenClock], headers: dict[str, str], reason: str
) -> None:
    adapter, _ = verifier
    with pytest.raises(InvalidCallbackSignature) as refused:
        adapter.verify_callback(headers, BODY)
    assert refused.value.reason == reason


def test_any_matching_v1_is_enough_during_rotation() -> None:
    t = 1_795_508_130
    old, new = sign("old-secret", BODY, t), sign(SECRET, BODY, t)
    header = f"{new},{old.split(',')[1]}"
    assert verify(SECRET, header, BODY, float(t)) == t
    assert verify("old-secret", header, BODY, float(t)) == t


def test_a_signed_but_malformed_payload_is_invalid_not_forged(
    verifier: tuple[RaastHttpAdapter, FrozenClock],
) -> None:
    adapter, clock = verifier
    for body in (b"[]", b"not json", b'{"event_id":"rev_1","status":"paid"}'):
        header = sign(SECRET, body, now_t(clock))
        with pytest.raises(InvalidCallback) as refused:
            adapter.verify_callback({"Rail-Signature": header}, body)
        assert not isinstance(refused.value, InvalidCallbackSignature)
        assert refused.value.reason == "malformed_payload"


# --------------------------------------------------------------------------------------
# Circuit breaker
# --------------------------------------------------------------------------------------


def state(breaker: CircuitBreaker) -> str:
    """Read the state afresh (mypy would keep a narrowed literal across clock moves)."""
    return breaker.state


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_after_consecutive_failures_and_recovers_through_half_open() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    breaker.before_call()
    breaker.record_success()
    assert breaker.consecutive_failures == 0, "a success resets the count"
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(RailUnavailable, match="circuit open") as fast:
        breaker.before_call()
    assert fast.value.retry_after == 30
    clock.t = 1029.9
    assert breaker.state == "open"
    clock.t = 1030.0
    assert state(breaker) == "half_open"
    breaker.before_call()  # the one trial
    with pytest.raises(RailUnavailable):
        breaker.before_call()  # everyone else still waits
    breaker.record_failure()
    assert breaker.state == "open", "a failed trial opens it again"
    clock.t += 30
    breaker.before_call()
    breaker.record_success()
    assert state(breaker) == "closed"
    breaker.before_call()


def test_a_released_trial_lets_the_next_call_try() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    clock.t += 5
    breaker.before_call()
    breaker.release()
    breaker.before_call()
    assert breaker.state == "half_open"


async def test_the_adapter_trips_the_breaker_and_stops_calling() -> None:
    clock = FakeClock()
    answers = [httpx.Response(503, json={"error": "rail_unavailable"})]
    transport = Counting(httpx.MockTransport(lambda r: answers[-1]))
    breaker = CircuitBreaker(clock=clock)
    adapter = RaastHttpAdapter(
        httpx.AsyncClient(transport=transport), BASE, SECRET, breaker=breaker
    )
    for _ in range(5):
        with pytest.raises(RailUnavailable):
            await adapter.submit(submission())
    assert (adapter.breaker.state, transport.calls) == ("open", 5)
    with pytest.raises(RailUnavailable, match="circuit open"):
        await adapter.status("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C")
    assert transport.calls == 5, "an open circuit does not call the rail"
    clock.t += 30
    assert adapter.breaker.state == "half_open"
    answers.append(httpx.Response(404, json={"error": "unknown_transfer"}))
    assert await adapter.status("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C") is None
    assert (adapter.breaker.state, transport.calls) == ("closed", 6)


async def test_timeouts_count_towards_the_breaker() -> None:
    clock = FakeClock()
    adapter = adapter_on(
        raising(httpx.ReadTimeout), breaker=CircuitBreaker(failure_threshold=2, clock=clock)
    )
    for _ in range(2):
        with pytest.raises(RailTimeout):
            await adapter.submit(submission())
    assert adapter.breaker.state == "open"


async def test_the_title_fetch_through_the_adapter(harness: Harness) -> None:
    title = await harness.adapter.account_title(iban="PK66HABB0000001234567890", raast_id=None)
    assert title and title.isupper()
    assert await harness.adapter.account_title(iban=None, raast_id="+923001230000") is None
