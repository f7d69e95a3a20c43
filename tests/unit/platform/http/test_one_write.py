"""A response's head leaves with its body (platform/http/one_write.py), driven through
uvicorn's own request cycle: the bytes on the wire are exactly uvicorn's, in the same
order; only the number of writes changes, and never for a chunked answer, a HEAD answer
or ``100 Continue``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.server import ServerState

from amanat.platform.http.header_limits import HeaderLimitedProtocol
from amanat.platform.http.one_write import HeadWithBody


class RecordingTransport:
    """What reaches the socket: one entry per write system call, and a close."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")

    def writelines(self, parts: Any) -> None:
        self.writes.append(b"".join(parts))
        self.events.append("write")

    def close(self) -> None:
        self.closed = True
        self.events.append("close")

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...


def _cycle(
    method: str = "GET", *, held: bool = True, expect_100_continue: bool = False
) -> tuple[RequestResponseCycle, RecordingTransport, list[int]]:
    transport = RecordingTransport()
    completed: list[int] = []
    cycle = RequestResponseCycle(
        scope={"type": "http", "method": method, "path": "/", "http_version": "1.1"},  # type: ignore[typeddict-item]
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=expect_100_continue,
        keep_alive=True,
        on_response=lambda: completed.append(1),
    )
    if held:
        HeadWithBody(transport, cycle)  # type: ignore[arg-type]
    return cycle, transport, completed


def _start(length: int | None, status: int = 200) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


def _body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def test_a_response_of_known_length_is_one_write() -> None:
    cycle, transport, completed = _cycle()
    await cycle.send(_start(11))
    assert transport.writes == []  # the head waits for its body
    await cycle.send(_body(b'{"ok":true}'))
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 11" in head
    assert body == b'{"ok":true}'
    assert completed == [1]


async def test_an_empty_body_of_known_length_is_one_write() -> None:
    cycle, transport, completed = _cycle()
    await cycle.send(_start(0, status=204))
    await cycle.send(_body(b""))
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\n")
    assert completed == [1]


async def test_a_head_answer_is_written_though_no_body_follows() -> None:
    cycle, transport, completed = _cycle("HEAD")
    await cycle.send(_start(11))
    assert len(transport.writes) == 1  # not held: no body write will come
    await cycle.send(_body(b""))
    assert len(transport.writes) == 1 and b"content-length: 11" in transport.writes[0]
    assert completed == [1]


async def test_a_streamed_answer_starts_at_once() -> None:
    cycle, transport, _ = _cycle()
    await cycle.send(_start(None))
    assert len(transport.writes) == 1  # chunked: the client sees the head now
    assert b"transfer-encoding: chunked" in transport.writes[0]
    await cycle.send(_body(b"first", more=True))
    await cycle.send(_body(b""))
    assert len(transport.writes) == 3


async def test_a_body_in_pieces_takes_the_head_with_the_first_piece() -> None:
    cycle, transport, completed = _cycle()
    await cycle.send(_start(10))
    await cycle.send(_body(b"01234", more=True))
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\n01234")
    await cycle.send(_body(b"56789"))
    assert transport.writes[1] == b"56789"
    assert completed == [1]


async def test_a_held_head_is_written_before_the_connection_closes() -> None:
    # An app that fails after starting its answer: uvicorn closes the connection.
    cycle, transport, _ = _cycle()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(_start(11))
        raise RuntimeError("failed after the head")

    await cycle.run_asgi(app)  # type: ignore[arg-type]
    assert transport.events == ["write", "close"]
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")


async def test_100_continue_is_never_held() -> None:
    cycle, transport, _ = _cycle("POST", expect_100_continue=True)
    cycle.more_body = False
    cycle.message_event.set()  # the body has arrived
    await cycle.receive()
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


_answers = st.tuples(
    st.sampled_from(["GET", "POST", "HEAD"]),
    st.sampled_from([200, 201, 404, 422]),  # 204 and 304 carry no body
    st.booleans(),  # declares its length
    st.lists(st.binary(max_size=40), min_size=1, max_size=4),
)


@settings(max_examples=200, deadline=None)
@given(answer=_answers)
def test_the_bytes_on_the_wire_are_uvicorns_own(answer: tuple[str, int, bool, list[bytes]]) -> None:
    method, status, sized, pieces = answer

    async def played(held: bool) -> tuple[bytes, int, list[int]]:
        cycle, transport, completed = _cycle(method, held=held)
        await cycle.send(_start(sum(map(len, pieces)) if sized else None, status))
        for i, piece in enumerate(pieces):
            await cycle.send(_body(piece, more=i < len(pieces) - 1))
        return b"".join(transport.writes), len(transport.writes), completed

    wire, writes, completed = asyncio.run(played(held=True))
    plain_wire, plain_writes, plain_completed = asyncio.run(played(held=False))
    assert wire == plain_wire
    assert completed == plain_completed == [1]
    held_one = sized and method != "HEAD"
    assert writes == (plain_writes - 1 if held_one else plain_writes)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_the_end_of_an_answer_leaves_nothing_held(method: str) -> None:
    cycle, transport, completed = _cycle(method)
    await cycle.send(_start(3))
    await cycle.send(_body(b"abc"))
    wrapper = cycle.transport
    assert isinstance(wrapper, HeadWithBody)
    wrapper.flush()  # nothing left: no second copy of the head
    assert sum(w.count(b"HTTP/1.1") for w in transport.writes) == 1
    assert completed == [1]


async def test_a_held_head_is_dropped_not_raised_when_the_client_has_gone() -> None:
    cycle, transport, _ = _cycle()
    await cycle.send(_start(11))
    transport.closed = True  # the client went away (connection_lost closed it)
    cycle.transport.close()  # as run_asgi does when the app then fails
    assert transport.writes == []


async def test_amanat_serve_s_protocol_writes_each_answer_through_it() -> None:
    # log_config=None: uvicorn leaves the process's logging as the other tests set it.
    config = Config(app=_app, http=HeaderLimitedProtocol, lifespan="off", log_config=None)
    protocol = HeaderLimitedProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert protocol.cycle is not None
    assert isinstance(protocol.cycle.transport, HeadWithBody)
    for _ in range(20):
        if transport.writes:
            break
        await asyncio.sleep(0)
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\nhi")


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"hi"})
