"""The sandbox rail's engine, driven directly: outcomes, timers, callbacks, faults."""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from tests.support.paths import REPO

from amanat.kernel.clock import FrozenClock, format_timestamp
from amanat.kernel.pakistan import make_iban
from amanat.kernel.rail_signatures import verify
from amanat.sandbox_rail.engine import (
    DuplicateEndToEndId,
    InvalidTransfer,
    RailDown,
    RailEngine,
    RailSettings,
    TransferRequest,
)
from amanat.sandbox_rail.magic import (
    MAGIC_VALUES,
    Outcome,
    final_status,
    magic_for,
    render_markdown_table,
)

SECRET = "rail-callback-secret"
CREDITOR_IBAN = str(make_iban("SCBL", "0000001123456702"))
DEBTOR_IBAN = str(make_iban("HABB", "0000000000000042"))
ROOT = REPO


class Sleeps:
    """An instant ``sleep`` that records what was asked; chosen durations wait for a gate."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.gates: dict[float, asyncio.Event] = {}

    def gate(self, seconds: float) -> asyncio.Event:
        self.gates[seconds] = asyncio.Event()
        return self.gates[seconds]

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        gate = self.gates.get(seconds)
        if gate is not None:
            await gate.wait()
        await asyncio.sleep(0)


class Receiver:
    """Records callbacks; answers with the queued status codes, then 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answers: list[int | Exception] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return httpx.Response(answer)
        return httpx.Response(200)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]

    def seen(self) -> list[tuple[str, int]]:
        return [(event["status"], event["sequence"]) for event in self.events]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@asynccontextmanager
async def rail_engine(
    clock: FrozenClock, sleeps: Sleeps, receive: Any, **settings: Any
) -> AsyncIterator[RailEngine]:
    """A rail on the test clock and sleeps whose callbacks ``receive`` answers."""
    http = httpx.AsyncClient(transport=httpx.MockTransport(receive))
    rail = RailEngine(
        RailSettings(
            **{"callback_secret": SECRET, "admin_token": "admin-token", "settle_delay": 0}
            | settings,
            clock=clock,
            sleep=sleeps,
            http=http,
        )
    )
    yield rail
    await rail.aclose()
    await http.aclose()


@pytest.fixture
async def engine(
    clock: FrozenClock, sleeps: Sleeps, receiver: Receiver
) -> AsyncIterator[RailEngine]:
    async with rail_engine(clock, sleeps, receiver) as rail:
        yield rail


def request(
    amount: int = 150_000,
    *,
    e2e: str = "pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C",
    kind: str = "credit_transfer",
    **overrides: Any,
) -> TransferRequest:
    body: dict[str, Any] = {
        "end_to_end_id": e2e,
        "type": kind,
        "amount": amount,
        "currency": "PKR",
        "creditor": {"iban": CREDITOR_IBAN, "name": "Ayesha Khan"},
        "callback_url": "https://amanat.test/rail/callbacks",
    }
    if kind == "request_to_pay":
        body["debtor"] = {"raast_id": "03001234567"}
    body.update(overrides)
    return TransferRequest.model_validate(body)


async def run(engine: RailEngine, req: TransferRequest) -> dict[str, Any]:
    await engine.submit(req)
    await engine.drain()
    view = await engine.status(req.end_to_end_id)
    assert view is not None
    return view


# --------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------


async def test_a_plain_transfer_is_accepted_then_settled_with_two_signed_callbacks(
    engine: RailEngine, receiver: Receiver, clock: FrozenClock
) -> None:
    submitted = await engine.submit(request())
    assert submitted.response == {
        "end_to_end_id": "pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C",
        "status": "accepted",
        "rail_reference": submitted.response["rail_reference"],
    }
    assert submitted.response["rail_reference"].startswith("RRN")
    assert submitted.hold_seconds == 0
    await engine.drain()
    view = await engine.status("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C")
    assert view == {
        "end_to_end_id": "pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C",
        "type": "credit_transfer",
        "status": "settled",
        "reason_code": None,
        "reason": None,
        "sequence": 2,
        "updated_at": format_timestamp(clock.now()),
    }
    assert receiver.seen() == [("accepted", 1), ("settled", 2)]
    for sent in receiver.requests:
        assert str(sent.url) == "https://amanat.test/rail/callbacks"
        verify(SECRET, sent.headers["Rail-Signature"], sent.content, clock.now())
    first, second = receiver.events
    assert first["event_id"] != second["event_id"]
    assert first["event_id"].startswith("rev_")
    assert set(second) == {
        "event_id",
        "end_to_end_id",
        "status",
        "reason_code",
        "reason",
        "sequence",
        "occurred_at",
    }


@pytest.mark.parametrize(
    ("suffix", "code"), [("01", "AC01"), ("02", "AC06"), ("03", "AB08"), ("04", "AM02")]
)
async def test_refusal_values_reject_a_credit_transfer_and_decline_a_request_to_pay(
    engine: RailEngine, receiver: Receiver, suffix: str, code: str
) -> None:
    amount = 100_000 + int(suffix)
    view = await run(engine, request(amount, e2e="pay_ct"))
    assert (view["status"], view["reason_code"]) == ("rejected", code)
    assert view["reason"]
    view = await run(engine, request(amount, e2e="pay_rtp", kind="request_to_pay"))
    assert (view["status"], view["reason_code"]) == ("declined", code)
    assert receiver.seen() == [("accepted", 1), ("rejected", 2), ("accepted", 1), ("declined", 2)]


async def test_the_amount_suffix_is_the_last_two_digits_of_the_paisa_amount(
    engine: RailEngine,
) -> None:
    assert (await run(engine, request(99_999_901, e2e="a")))["reason_code"] == "AC01"
    assert (await run(engine, request(1, e2e="b")))["reason_code"] == "AC01"
    assert (await run(engine, request(100, e2e="c")))["status"] == "settled"


async def test_request_to_pay_is_approved_by_default_declined_on_21(engine: RailEngine) -> None:
    assert (await run(engine, request(kind="request_to_pay", e2e="a")))["status"] == "approved"
    declined = await run(engine, request(100_021, kind="request_to_pay", e2e="b"))
    assert (declined["status"], declined["reason_code"]) == ("declined", "CUST")


async def test_request_to_pay_values_do_not_apply_to_credit_transfers(engine: RailEngine) -> None:
    assert (await run(engine, request(100_021, e2e="a")))["status"] == "settled"
    assert (await run(engine, request(100_022, e2e="b")))["status"] == "settled"


async def test_no_answer_expires_the_request_at_its_expiry(
    engine: RailEngine, sleeps: Sleeps, clock: FrozenClock, receiver: Receiver
) -> None:
    expires_at = clock.now() + timedelta(minutes=5)
    req = request(100_022, kind="request_to_pay", expires_at=format_timestamp(expires_at))
    view = await run(engine, req)
    assert (view["status"], view["reason_code"]) == ("expired", "NOAS")
    assert 300.0 in sleeps.asked, "the timer waits exactly until expires_at"
    assert receiver.seen() == [("accepted", 1), ("expired", 2)]


async def test_a_request_to_pay_without_expiry_gets_the_default(
    engine: RailEngine, sleeps: Sleeps, clock: FrozenClock
) -> None:
    await run(engine, request(100_022, kind="request_to_pay"))
    transfer = engine.transfer("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C")
    assert transfer is not None
    assert transfer.expires_at == clock.now() + timedelta(seconds=900)
    assert 900.0 in sleeps.asked


async def test_a_request_expiring_before_the_settle_delay_expires(
    clock: FrozenClock, sleeps: Sleeps, receiver: Receiver
) -> None:
    async with rail_engine(clock, sleeps, receiver, settle_delay=60) as rail:
        soon = format_timestamp(clock.now() + timedelta(seconds=10))
        view = await run(rail, request(kind="request_to_pay", expires_at=soon))
    assert view["status"] == "expired"


async def test_timeout_value_holds_only_the_first_answer_but_accepts_at_once(
    engine: RailEngine,
) -> None:
    first = await engine.submit(request(100_005))
    assert first.hold_seconds == 15.0
    assert engine.transfer("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C") is not None, "recorded before the hold"
    again = await engine.submit(request(100_005))
    assert (again.hold_seconds, again.replay) == (0, True)
    assert again.response == first.response
    await engine.drain()
    assert (await engine.status("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C") or {})["status"] == "settled"


async def test_unavailable_value_refuses_twice_without_recording_then_accepts(
    engine: RailEngine,
) -> None:
    for _ in range(2):
        with pytest.raises(RailDown) as refused:
            await engine.submit(request(100_006))
        assert refused.value.headers == {"Retry-After": "1"}
        assert await engine.status("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C") is None
    submitted = await engine.submit(request(100_006))
    assert submitted.response["status"] == "accepted"
    assert (await run(engine, request(100_006)))["status"] == "settled"
    # Another id with the same amount gets its own two refusals.
    with pytest.raises(RailDown):
        await engine.submit(request(100_006, e2e="pay_other"))


async def test_delayed_callback_value_settles_on_time_but_calls_back_late(
    engine: RailEngine, sleeps: Sleeps, receiver: Receiver
) -> None:
    gate = sleeps.gate(10.0)
    await engine.submit(request(100_007))
    for _ in range(20):
        await asyncio.sleep(0)
    assert (await engine.status("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C") or {})["status"] == "settled"
    assert receiver.seen() == [("accepted", 1)], "the final callback is still waiting"
    gate.set()
    await engine.drain()
    assert receiver.seen() == [("accepted", 1), ("settled", 2)]


async def test_duplicate_callback_value_sends_the_same_event_twice(
    engine: RailEngine, receiver: Receiver
) -> None:
    await run(engine, request(100_008))
    assert receiver.seen() == [("accepted", 1), ("settled", 2), ("settled", 2)]
    assert receiver.events[1] == receiver.events[2]


async def test_out_of_order_value_sends_the_stale_accepted_after_settled(
    engine: RailEngine, receiver: Receiver
) -> None:
    await run(engine, request(100_009))
    assert receiver.seen() == [("settled", 2), ("accepted", 1)]


async def test_no_callback_value_is_only_visible_by_enquiry(
    engine: RailEngine, receiver: Receiver
) -> None:
    view = await run(engine, request(100_010))
    assert view["status"] == "settled"
    assert receiver.requests == []


# --------------------------------------------------------------------------------------
# Idempotency and validation
# --------------------------------------------------------------------------------------


async def test_resubmitting_the_same_body_replays_and_never_settles_twice(
    engine: RailEngine, receiver: Receiver
) -> None:
    first = await engine.submit(request())
    await engine.drain()
    spaced = " ".join(CREDITOR_IBAN[i : i + 4] for i in range(0, 24, 4)).lower()
    again = await engine.submit(request(creditor={"iban": spaced, "name": "Ayesha Khan"}))
    assert again.replay
    assert again.response == first.response
    await engine.drain()
    assert receiver.seen() == [("accepted", 1), ("settled", 2)]


async def test_the_same_id_with_another_body_is_a_conflict(engine: RailEngine) -> None:
    await engine.submit(request())
    with pytest.raises(DuplicateEndToEndId) as conflict:
        await engine.submit(request(150_100))
    assert conflict.value.status == 409
    assert conflict.value.body()["error"] == "duplicate_end_to_end_id"


@pytest.mark.parametrize(
    ("overrides", "error", "reason"),
    [
        (
            {"creditor": {"iban": str(make_iban("SCBL", "0000001123456702"))[:-1] + "3"}},
            "invalid_iban",
            "checksum_mismatch",
        ),
        ({"creditor": {"iban": "PK" + "38ZZZZ" + "0000001123456702"}}, "invalid_iban", None),
        ({"creditor": {"raast_id": "0421234567"}}, "invalid_raast_id", "not_mobile"),
        ({"debtor": {"raast_id": "+44 7700 900123"}}, "invalid_raast_id", "wrong_country"),
        ({"callback_url": "ftp://amanat.test/cb"}, "invalid_request", None),
        ({"expires_at": "2030-01-01T00:00:00Z"}, "invalid_request", None),
    ],
)
async def test_bad_accounts_and_fields_are_refused_synchronously(
    engine: RailEngine, overrides: dict[str, Any], error: str, reason: str | None
) -> None:
    with pytest.raises(InvalidTransfer) as refused:
        await engine.submit(request(**overrides))
    assert refused.value.error == error
    if reason is not None:
        assert refused.value.detail["reason"] == reason
    assert await engine.status("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C") is None


async def test_an_unknown_bank_code_is_refused(engine: RailEngine) -> None:
    from amanat.kernel.pakistan import iban_check_digits

    unknown = f"PK{iban_check_digits('ZZZZ', '0000001123456702')}ZZZZ0000001123456702"
    with pytest.raises(InvalidTransfer) as refused:
        await engine.submit(request(creditor={"iban": unknown}))
    assert refused.value.detail == {
        "field": "creditor.iban",
        "reason": "unknown_bank",
        "message": refused.value.detail["message"],
    }


async def test_request_to_pay_needs_a_debtor_and_a_future_expiry(
    engine: RailEngine, clock: FrozenClock
) -> None:
    with pytest.raises(InvalidTransfer, match="invalid_request"):
        await engine.submit(request(kind="request_to_pay", debtor=None))
    past = format_timestamp(clock.now() - timedelta(seconds=1))
    with pytest.raises(InvalidTransfer) as refused:
        await engine.submit(request(kind="request_to_pay", expires_at=past))
    assert refused.value.detail["field"] == "expires_at"


def test_the_wire_model_refuses_floats_extra_fields_and_both_identifiers() -> None:
    from pydantic import ValidationError

    base = request().model_dump()
    for bad in (
        {"amount": 1500.0},
        {"amount": 0},
        {"amount": True},
        {"currency": "USD"},
        {"colour": "red"},
        {"creditor": {"iban": CREDITOR_IBAN, "raast_id": "03001234567"}},
        {"creditor": {"name": "nobody"}},
        {"end_to_end_id": ""},
        {"end_to_end_id": "x" * 65},
        {"end_to_end_id": "has space"},
        {"expires_at": "2030-01-01T00:00:00"},
    ):
        with pytest.raises(ValidationError):
            TransferRequest.model_validate({**base, **bad})


# --------------------------------------------------------------------------------------
# Callback delivery
# --------------------------------------------------------------------------------------


async def test_failed_callbacks_are_retried_with_backoff(
    engine: RailEngine, receiver: Receiver, sleeps: Sleeps
) -> None:
    receiver.answers = [500, httpx.ConnectError("refused")]
    await run(engine, request())
    assert receiver.seen() == [("accepted", 1), ("accepted", 1), ("accepted", 1), ("settled", 2)]
    attempts = [(d.sequence, d.attempt, d.status_code, d.error) for d in engine.deliveries]
    assert attempts == [
        (1, 1, 500, None),
        (1, 2, None, "ConnectError"),
        (1, 3, 200, None),
        (2, 1, 200, None),
    ]
    assert [s for s in sleeps.asked if s in (0.5, 1.0)] == [0.5, 1.0]
    assert [r.headers["Rail-Delivery-Attempt"] for r in receiver.requests] == ["1", "2", "3", "1"]


async def test_delivery_gives_up_after_the_last_attempt_and_keeps_the_order(
    engine: RailEngine, receiver: Receiver
) -> None:
    receiver.answers = [503, 503, 503, 503]
    view = await run(engine, request())
    assert view["status"] == "settled"
    assert receiver.seen() == [("accepted", 1)] * 4 + [("settled", 2)]


async def test_at_most_outbound_concurrency_messages_are_in_flight_each_signed_when_sent(
    clock: FrozenClock, sleeps: Sleeps
) -> None:
    in_flight, most, sent = 0, 0, []
    gate = asyncio.Event()

    async def slow_receiver(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await gate.wait()
        in_flight -= 1
        sent.append(request)
        return httpx.Response(200)

    async with rail_engine(clock, sleeps, slow_receiver, outbound_concurrency=2) as rail:
        for n in range(5):
            await rail.submit(request(e2e=f"pay_01JD8Y7X3M5T2K9Q4R6W8Z0B{n}C"))
        for _ in range(50):
            await asyncio.sleep(0)
        assert (in_flight, most) == (2, 2)
        clock.advance(120)  # the queued ones are signed when they go, not when queued
        gate.set()
        await rail.drain()
    assert most == 2 and len(sent) == 10
    stamps = [verify(SECRET, r.headers["Rail-Signature"], r.content, clock.now()) for r in sent]
    assert stamps.count(int(clock.now().timestamp())) == 8


# --------------------------------------------------------------------------------------
# Faults and lifetime
# --------------------------------------------------------------------------------------


async def test_downtime_ends_by_the_clock_and_reset_clears_everything(
    engine: RailEngine, clock: FrozenClock, sleeps: Sleeps
) -> None:
    assert engine.unavailable_for() is None
    view = engine.set_faults(downtime_seconds=30, latency_ms=250)
    assert view["down"] is True
    assert view["retry_after_seconds"] == 30
    assert view["latency_ms"] == 250
    clock.advance(29.5)
    assert engine.unavailable_for() == 1
    clock.advance(1)
    assert engine.unavailable_for() is None
    await engine.apply_latency()
    assert sleeps.asked == [0.25]
    assert engine.set_faults(reset=True) == {
        "down": False,
        "down_until": None,
        "retry_after_seconds": None,
        "latency_ms": 0,
        "error_rate": 0.0,
    }


async def test_closing_cancels_timers_and_callbacks(receiver: Receiver) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    rail = RailEngine(
        RailSettings(callback_secret=SECRET, admin_token="t", settle_delay=3600, http=http)
    )
    await rail.submit(request())
    await asyncio.sleep(0)
    assert rail.pending_tasks >= 1
    await rail.aclose()
    assert rail.pending_tasks == 0
    assert (await rail.status("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C") or {})["status"] == "accepted"
    await http.aclose()


def test_settings_refuse_empty_secrets_and_negative_delays() -> None:
    with pytest.raises(ValueError, match="callback_secret"):
        RailSettings(callback_secret="", admin_token="t")
    with pytest.raises(ValueError, match="admin_token"):
        RailSettings(callback_secret="s", admin_token="")
    with pytest.raises(ValueError, match="settle_delay"):
        RailSettings(callback_secret="s", admin_token="t", settle_delay=-1)
    with pytest.raises(ValueError, match="outbound_concurrency"):
        RailSettings(callback_secret="s", admin_token="t", outbound_concurrency=0)


# --------------------------------------------------------------------------------------
# The table, the docs and the boundary
# --------------------------------------------------------------------------------------


def test_each_suffix_means_one_thing_per_type() -> None:
    for kind in ("credit_transfer", "request_to_pay"):
        suffixes = [v.amount_suffix for v in MAGIC_VALUES if kind in v.applies_to]
        assert len(suffixes) == len(set(suffixes))
    for value in MAGIC_VALUES:
        assert len(value.amount_suffix) == 2
        assert value.example_amount % 100 == int(value.amount_suffix)
        for kind in value.applies_to:
            assert magic_for(kind, value.example_amount) is value
        assert (value.reason_code is not None) == (not value.succeeds)
    assert magic_for("credit_transfer", 100_099).code == "success"
    assert final_status(magic_for("request_to_pay", 100_022), "request_to_pay") == "expired"
    assert {v.outcome for v in MAGIC_VALUES} == set(Outcome)


def test_the_docs_show_the_table_as_the_code_has_it() -> None:
    doc = (ROOT / "docs" / "sandbox-rail.md").read_text(encoding="utf-8")
    start = doc.index("<!-- magic-table:start -->\n") + len("<!-- magic-table:start -->\n")
    end = doc.index("<!-- magic-table:end -->")
    assert doc[start:end] == render_markdown_table(), "regenerate the table in the docs"


def test_the_rail_imports_nothing_of_amanat_but_domain_rules_and_signatures() -> None:
    allowed = ("amanat.kernel", "amanat.sandbox_rail", "amanat.kernel.rail_signatures")
    package = ROOT / "src" / "amanat" / "sandbox_rail"
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name == "amanat" or name.startswith("amanat."):
                    assert name.startswith(allowed), f"{path.name} imports {name}"


async def test_a_receiver_that_blows_up_is_just_a_failed_delivery(
    engine: RailEngine, receiver: Receiver
) -> None:
    receiver.answers = [RuntimeError("receiver crashed")]
    view = await run(engine, request())
    assert view["status"] == "settled"
    assert [(d.attempt, d.error) for d in engine.deliveries][:2] == [
        (1, "RuntimeError"),
        (2, None),
    ]
    assert receiver.seen() == [("accepted", 1), ("accepted", 1), ("settled", 2)]


async def test_a_request_to_pay_replays_even_after_it_expired(
    engine: RailEngine, clock: FrozenClock
) -> None:
    expires = format_timestamp(clock.now() + timedelta(minutes=1))
    req = request(100_022, kind="request_to_pay", expires_at=expires)
    first = await engine.submit(req)
    await engine.drain()
    clock.advance(minutes=2)
    again = await engine.submit(req)
    assert (again.replay, again.response) == (True, first.response)


async def test_an_unparseable_callback_url_is_refused(engine: RailEngine) -> None:
    with pytest.raises(InvalidTransfer) as refused:
        await engine.submit(request(callback_url="http://[::1"))
    assert refused.value.detail["field"] == "callback_url"
