"""Nothing sensitive reaches a log line, whichever way it is logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from amanat.kernel.ids import MintedId
from amanat.kernel.masking import mask_value
from amanat.platform.observability.logging import (
    BoundOnce,
    _loggable,
    configure_logging,
    get_logger,
    mask_event_dict,
)

IBAN = "PK36SCBL0000001123456702"
IBAN_MASKED = "PK**SCBL************6702"
CNIC = "35202-1234567-3"
CNIC_MASKED = "*****-*******-3"
PHONE = "+923001234567"
PHONE_MASKED = "+92300*****67"
PAN = "4111111111111111"
PAN_MASKED = "411111******1111"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFsaSJ9"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
CLIENT_SECRET = "cs_live_9fKq2LmX7pRzT4vW8yB1"
PASSWORD = "correct-horse-battery-staple"

# Every fragment that must never appear in any output, whatever else happens.
CLEAR_FRAGMENTS = [
    IBAN,
    "0000001123456702",
    CNIC,
    "3520212345673",
    "1234567",
    PHONE,
    "3001234567",
    PAN,
    "4111 1111 1111 1111",
    JWT.split(".")[2],
    "9fKq2LmX7pRzT4vW8yB1",
    PASSWORD,
]

_ROUTED = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "alembic", "sqlalchemy")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it all back afterwards."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved_named = {
        name: (list(lg.handlers), lg.propagate, lg.level)
        for name in _ROUTED
        for lg in [logging.getLogger(name)]
    }
    saved_structlog = structlog.get_config()
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.configure(**saved_structlog)
        for handler in root.handlers[:]:
            if handler not in saved_root[0]:
                root.removeHandler(handler)
                handler.close()
        for handler in saved_root[0]:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(saved_root[1])
        for name, (handlers, propagate, level) in saved_named.items():
            lg = logging.getLogger(name)
            lg.handlers[:] = handlers
            lg.propagate = propagate
            lg.setLevel(level)


def _assert_clean(output: str) -> None:
    leaked = [fragment for fragment in CLEAR_FRAGMENTS if fragment in output]
    assert not leaked, f"clear values in log output: {leaked}\n{output}"


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def json_stream() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(json=True, level="DEBUG", stream=stream)
    return stream


def test_values_under_innocent_keys_are_masked_by_shape(json_stream: io.StringIO) -> None:
    get_logger("amanat.test").info(
        "payment_created",
        beneficiary=IBAN,
        holder=CNIC,
        contact=PHONE,
        instrument=PAN,
        spaced_card="4111 1111 1111 1111",
        header=f"Bearer {JWT}",
        form=f"grant_type=client_credentials&client_secret={CLIENT_SECRET}",
        amount=150000,
    )
    _assert_clean(json_stream.getvalue())
    (line,) = _lines(json_stream)
    assert line["beneficiary"] == IBAN_MASKED
    assert line["holder"] == CNIC_MASKED
    assert line["contact"] == PHONE_MASKED
    assert line["instrument"] == PAN_MASKED
    assert line["spaced_card"] == PAN_MASKED
    assert line["header"] == "Bearer [redacted]"
    assert line["form"] == "grant_type=client_credentials&client_secret=[redacted]"
    assert line["amount"] == 150000
    assert line["event"] == "payment_created"
    assert line["level"] == "info"
    assert line["logger"] == "amanat.test"
    assert line["timestamp"].endswith("Z")


def test_values_under_sensitive_and_personal_keys(json_stream: io.StringIO) -> None:
    get_logger("amanat.test").info(
        "token_issued",
        password=PASSWORD,
        client_secret=CLIENT_SECRET,
        access_token=JWT,
        authorization=f"Bearer {JWT}",
        otp=123456,
        debtor_iban=IBAN,
        cnic=3520212345673,
        msisdn=923001234567,
        card_number=PAN,
        code="invalid_iban",
    )
    _assert_clean(json_stream.getvalue())
    (line,) = _lines(json_stream)
    for key in ("password", "client_secret", "access_token", "authorization", "otp"):
        assert line[key] == "[redacted]"
    assert line["debtor_iban"] == IBAN_MASKED
    assert line["cnic"] == "************3"
    assert line["msisdn"] == "92300*****67"
    assert line["card_number"] == PAN_MASKED
    assert line["code"] == "invalid_iban"


def test_nested_structures(json_stream: io.StringIO) -> None:
    get_logger("amanat.test").info(
        "webhook_delivery",
        request={
            "headers": {"Authorization": f"Bearer {JWT}", "X-Api-Key": "k3y-123"},
            "body": {
                "debtor": {"iban": IBAN, "cnic": CNIC, "phones": [PHONE, "03001234567"]},
                "card": {"pan": PAN},
                "memo": f"refund to {IBAN}",
            },
        },
        attempts=(1, {"note": f"called {PHONE}"}),
    )
    _assert_clean(json_stream.getvalue())
    (line,) = _lines(json_stream)
    headers = line["request"]["headers"]
    assert headers == {"Authorization": "[redacted]", "X-Api-Key": "[redacted]"}
    body = line["request"]["body"]
    assert body["debtor"] == {
        "iban": IBAN_MASKED,
        "cnic": CNIC_MASKED,
        "phones": [PHONE_MASKED, "0300*****67"],
    }
    assert body["card"] == {"pan": PAN_MASKED}
    assert body["memo"] == f"refund to {IBAN_MASKED}"
    assert line["attempts"] == [1, {"note": f"called {PHONE_MASKED}"}]


def test_event_message_and_positional_arguments(json_stream: io.StringIO) -> None:
    log = get_logger("amanat.test")
    log.info(f"paid {IBAN} for {CNIC}")
    log.warning("retrying %s with %s", PHONE, PAN)
    _assert_clean(json_stream.getvalue())
    first, second = _lines(json_stream)
    assert first["event"] == f"paid {IBAN_MASKED} for {CNIC_MASKED}"
    assert second["event"] == f"retrying {PHONE_MASKED} with {PAN_MASKED}"


def _fail_with_secrets() -> None:
    card, phone, password = PAN, PHONE, PASSWORD
    raise ValueError(f"card {card} of {phone} refused; password={password} iban={IBAN}")


def test_exception_message_and_traceback(json_stream: io.StringIO) -> None:
    try:
        _fail_with_secrets()
    except ValueError:
        get_logger("amanat.test").exception("charge_failed", customer=CNIC)
    _assert_clean(json_stream.getvalue())
    (line,) = _lines(json_stream)
    assert line["level"] == "error"
    assert line["customer"] == CNIC_MASKED
    exception = line["exception"]
    assert "Traceback (most recent call last)" in exception
    assert "_fail_with_secrets" in exception
    assert f"card {PAN_MASKED} of {PHONE_MASKED} refused" in exception
    assert "password=[redacted]" in exception
    assert IBAN_MASKED in exception


def test_stdlib_loggers_are_formatted_and_masked(json_stream: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(request_id="req_01JD8X3QZ9K4")
    logging.getLogger("uvicorn.error").warning("client %s sent %s", PHONE, IBAN)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/1.1" %d', "127.0.0.1", "GET", f"/cb?code=Spl7OBeZQQYbYS6&token={JWT}", 200
    )
    try:
        _fail_with_secrets()
    except ValueError:
        logging.getLogger("sqlalchemy.engine").exception("statement failed for %s", CNIC)
    _assert_clean(json_stream.getvalue())
    warning, access, error = _lines(json_stream)
    assert warning["event"] == f"client {PHONE_MASKED} sent {IBAN_MASKED}"
    assert warning["logger"] == "uvicorn.error"
    assert warning["level"] == "warning"
    assert warning["request_id"] == "req_01JD8X3QZ9K4"
    assert "code=[redacted]&token=[redacted]" in access["event"]
    assert error["event"] == f"statement failed for {CNIC_MASKED}"
    assert f"card {PAN_MASKED}" in error["exception"]


def test_value_objects_are_masked_through_their_text() -> None:
    class Iban:
        def __str__(self) -> str:
            return IBAN

    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    get_logger("amanat.test").info("x", destination=Iban(), iban=Iban(), raw=IBAN.encode())
    _assert_clean(stream.getvalue())
    (line,) = _lines(stream)
    assert line["destination"] == line["iban"] == line["raw"] == IBAN_MASKED


def test_console_renderer_is_masked_too() -> None:
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    log = get_logger("amanat.test")
    log.info("payment", iban=IBAN, note=f"from {PHONE}", token=JWT)
    try:
        _fail_with_secrets()
    except ValueError:
        log.exception("failed")
    logging.getLogger("uvicorn.error").info("client %s", CNIC)
    output = stream.getvalue()
    _assert_clean(output)
    assert IBAN_MASKED in output
    assert PHONE_MASKED in output
    assert CNIC_MASKED in output
    assert "\x1b[" not in output, "no colours when the stream is not a terminal"


def test_configure_twice_installs_one_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(json=True, stream=first)
    configure_logging(json=True, stream=second)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_amanat_handler", False)]
    assert len(ours) == 1
    get_logger("amanat.test").info("once", iban=IBAN)
    assert first.getvalue() == ""
    assert len(_lines(second)) == 1


def test_level_filters_and_unknown_level_is_refused() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="warning", stream=stream)
    log = get_logger("amanat.test")
    log.info("hidden")
    log.warning("shown")
    logging.getLogger("uvicorn.error").info("hidden too")
    assert [line["event"] for line in _lines(stream)] == ["shown"]
    with pytest.raises(ValueError, match="Unknown log level"):
        configure_logging(json=True, level="LOUD")


def test_structlog_events_are_written_masked_without_the_standard_library(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """structlog events are rendered and written by structlog itself (the request path's
    cost): a standard-library handler never sees them, and the line is masked."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    with caplog.at_level(logging.INFO):
        get_logger("amanat.test").info("payment %s", "made", iban=IBAN, password=PASSWORD)
    assert not [r for r in caplog.records if r.name == "amanat.test"]
    (line,) = _lines(stream)
    assert line["event"] == "payment made"
    assert line["logger"] == "amanat.test" and line["level"] == "info"
    assert line["iban"] == IBAN_MASKED and line["password"] == "[redacted]"
    _assert_clean(stream.getvalue())


def test_default_stream_is_the_current_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    get_logger("amanat.test").info("to_stderr", phone=PHONE)
    captured = capsys.readouterr()
    _assert_clean(captured.err)
    (line,) = [json.loads(x) for x in captured.err.splitlines() if x.strip()]
    assert line["phone"] == PHONE_MASKED
    assert captured.out == ""


def test_get_logger_without_name_uses_the_calling_module(json_stream: io.StringIO) -> None:
    get_logger().info("named")
    (line,) = _lines(json_stream)
    assert line["logger"] == __name__


_KEYS = st.sampled_from(
    [
        *("event", "path", "method", "status", "code", "note", "amount"),
        *("iban", "debtor_iban", "msisdn", "cnic"),
        *("password", "client_secret", "access_token", "authorization"),
    ]
)
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from([IBAN, CNIC, PHONE, PAN, JWT, CLIENT_SECRET, "invalid_request", "x=1"])
    | st.text(max_size=20)
    | st.text(min_size=201, max_size=260),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=6,
)


@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_the_log_processor_masks_every_value_as_the_policy_does(event: dict[str, Any]) -> None:
    # The processor takes shortcuts (numbers under plain keys, remembered strings); each
    # must give exactly what the masking policy gives, twice in a row.
    expected = {key: mask_value(key, _loggable(value)) for key, value in event.items()}
    for _ in range(2):
        assert mask_event_dict(None, "info", dict(event)) == expected


def test_a_logger_bound_once_follows_every_reconfiguration() -> None:
    logger = BoundOnce("amanat.test")
    first = io.StringIO()
    configure_logging(json=True, stream=first)
    logger.get().info("one", iban=IBAN)
    with structlog.testing.capture_logs() as captured:
        logger.get().info("two", iban=IBAN)
    second = io.StringIO()
    configure_logging(json=True, stream=second)
    logger.get().info("three")
    assert [json.loads(line)["event"] for line in first.getvalue().splitlines()] == ["one"]
    assert [event["event"] for event in captured] == ["two"]
    assert [json.loads(line)["event"] for line in second.getvalue().splitlines()] == ["three"]
    _assert_clean(first.getvalue())


def test_an_id_minted_here_is_logged_as_it_is_and_one_sent_in_is_masked(
    json_stream: io.StringIO,
) -> None:
    # A ULID may by chance hold a run of digits shaped like a phone number.
    shaped = "req_03001234567ABCDEFGHJKMNP"
    log = get_logger("amanat.test")
    structlog.contextvars.bind_contextvars(request_id=MintedId(shaped))
    log.info("minted")
    structlog.contextvars.bind_contextvars(request_id=shaped)
    log.info("sent_in")
    minted, sent_in = _lines(json_stream)
    assert minted["request_id"] == shaped
    assert sent_in["request_id"] != shaped and "3001234567" not in sent_in["request_id"]
    assert mask_value("note", MintedId(shaped)) == shaped
    assert mask_value("iban", MintedId(IBAN)) == IBAN_MASKED, "a personal key masks it anyway"


def test_keys_that_mean_a_record_to_the_formatter_cannot_carry_text_past_the_mask(
    json_stream: io.StringIO,
) -> None:
    log = get_logger("amanat.test")
    log.info("probe", _from_structlog=f"password={PASSWORD} {IBAN}", _record=f"{PHONE}")
    _assert_clean(json_stream.getvalue())
    (line,) = _lines(json_stream)
    assert line["event"] == "probe"


class _CountingStream(io.StringIO):
    """A stream that counts its writes (each a system call on a real stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_a_server_writes_a_loop_turns_lines_together_in_order() -> None:
    import asyncio

    stream = _CountingStream()
    configure_logging(json=True, level="INFO", stream=stream, batch_lines=True)
    log = get_logger("amanat.test")

    async def one_turn() -> None:
        for number in range(5):
            log.info("line", number=number)
        assert stream.getvalue() == ""  # waiting for the loop's next turn
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(one_turn())
    assert [line["number"] for line in _lines(stream)] == [0, 1, 2, 3, 4]
    assert stream.writes == 1

    async def then_a_standard_library_record() -> None:
        log.info("first", iban=IBAN)
        logging.getLogger("uvicorn.error").warning("second")
        assert [line["event"] for line in _lines(stream)][-2:] == ["first", "second"]

    asyncio.run(then_a_standard_library_record())
    log.info("outside any loop")  # written at once
    assert _lines(stream)[-1]["event"] == "outside any loop"
    _assert_clean(stream.getvalue())


def test_a_server_never_holds_more_than_a_bounded_number_of_lines() -> None:
    import asyncio

    from amanat.platform.observability import logging as amanat_logging

    stream = _CountingStream()
    configure_logging(json=True, level="INFO", stream=stream, batch_lines=True)
    log = get_logger("amanat.test")

    async def many() -> None:
        for number in range(amanat_logging._MAX_PENDING_LINES + 1):
            log.info("line", number=number)
        assert len(_lines(stream)) == amanat_logging._MAX_PENDING_LINES

    asyncio.run(many())


def test_lines_still_waiting_are_written_when_the_handler_is_replaced() -> None:
    import asyncio

    stream = _CountingStream()
    configure_logging(json=True, level="INFO", stream=stream, batch_lines=True)

    async def log_and_reconfigure() -> None:
        get_logger("amanat.test").info("waiting")
        configure_logging(json=True, level="INFO", stream=io.StringIO())

    asyncio.run(log_and_reconfigure())
    assert [line["event"] for line in _lines(stream)] == ["waiting"]


def test_the_request_line_is_the_line_structlog_writes() -> None:
    """log_request writes the http_request line itself; it must be the very line the
    structlog pipeline writes, masking and context variables included."""
    from amanat.platform.observability import logging as amanat_logging

    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    structlog.contextvars.bind_contextvars(
        request_id=MintedId("req_01KBR2X8Y9Z0ABCDEFGHJKMNPQ"), client_id="cli_1", iban=IBAN
    )
    path = f"/v1/lookup/{IBAN}/{CNIC}"
    amanat_logging.log_request("POST", path, 201, 12.5)
    get_logger("amanat.http").info(
        "http_request", method="POST", path=path, status=201, duration_ms=12.5
    )
    fast, slow = stream.getvalue().splitlines()
    assert json.loads(fast).pop("timestamp") and json.loads(slow).pop("timestamp")
    without_time = [
        {k: v for k, v in json.loads(x).items() if k != "timestamp"} for x in (fast, slow)
    ]
    assert without_time[0] == without_time[1]
    assert list(json.loads(fast)) == list(json.loads(slow))  # the same key order
    _assert_clean(stream.getvalue())


def test_the_request_line_follows_the_level_and_a_capture() -> None:
    from amanat.platform.observability import logging as amanat_logging

    stream = io.StringIO()
    configure_logging(json=True, level="WARNING", stream=stream)
    amanat_logging.log_request("GET", "/v1/banks", 200, 1.0)
    assert stream.getvalue() == ""
    configure_logging(json=True, level="INFO", stream=stream)
    with structlog.testing.capture_logs() as captured:
        amanat_logging.log_request("GET", "/v1/banks", 200, 1.0)
    assert captured[0]["event"] == "http_request" and captured[0]["status"] == 200
    assert stream.getvalue() == ""
    configure_logging(json=False, level="INFO", stream=stream)  # the console format
    amanat_logging.log_request("GET", "/v1/banks", 200, 1.0)
    assert "http_request" in stream.getvalue() and not stream.getvalue().startswith("{")


def test_a_flush_lost_with_its_loop_never_leaves_later_lines_waiting() -> None:
    import asyncio

    stream = _CountingStream()
    configure_logging(json=True, level="INFO", stream=stream, batch_lines=True)
    log = get_logger("amanat.test")

    async def log_and_crash(event: str) -> None:
        log.info(event)
        raise SystemExit  # out of the loop at once: the flush it scheduled never runs

    first = asyncio.new_event_loop()
    with pytest.raises(SystemExit):
        first.run_until_complete(log_and_crash("first"))
    first.close()
    assert stream.getvalue() == ""

    async def log_and_yield() -> None:
        log.info("second")
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(log_and_yield())
    assert [line["event"] for line in _lines(stream)] == ["first", "second"]


def test_the_request_line_leaves_to_structlog_what_only_structlog_reads() -> None:
    """A context variable under a key structlog's processors give a meaning (exc_info,
    stack_info), or a reconfigured level: the request line goes through structlog."""
    from amanat.platform.observability import logging as amanat_logging

    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    structlog.contextvars.bind_contextvars(stack_info=True)
    amanat_logging.log_request("GET", "/v1/banks", 200, 1.0)
    line = _lines(stream)[-1]
    assert line["event"] == "http_request" and "stack_info" not in line
    assert "stack" in line  # rendered by structlog's StackInfoRenderer
    structlog.contextvars.unbind_contextvars("stack_info")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    amanat_logging.log_request("GET", "/v1/banks", 200, 1.0)
    assert len(_lines(stream)) == 1
