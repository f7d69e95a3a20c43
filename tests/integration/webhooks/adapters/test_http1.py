"""The webhook worker's HTTP/1.1 client (webhooks/adapters/http1.py), through
HttpWebhookSender and EndpointPools, against real sockets: what a connection carries,
when it is used again, and how failures come back."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest

from amanat.webhooks.adapters.http1 import request_head
from amanat.webhooks.adapters.transport import EndpointPools, HttpWebhookSender
from amanat.webhooks.service import SendResult

# A guard, not a measurement.
GUARD_SECONDS = 10

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A local server; ``connections`` counts accepted connections, ``heads`` keeps each
    request's head, ``closed`` is set whenever the server closed a connection."""

    def __init__(self) -> None:
        self.connections = 0
        self.heads: list[bytes] = []
        self.closed = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def read_request(self, reader: asyncio.StreamReader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)

    async def start(self, handle: Handler) -> int:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await handle(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()
                self.closed.set()

        self._server = await asyncio.start_server(run, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


def answering(*answers: bytes, then_close: bool = False) -> Callable[[Server], Handler]:
    """Answers each request on a connection with the next of ``answers`` (the last one
    over and over), closing after the last when ``then_close``."""

    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            index = 0
            while True:
                await server.read_request(reader)
                writer.write(answers[min(index, len(answers) - 1)])
                await writer.drain()
                index += 1
                if then_close and index >= len(answers):
                    return

        return handle

    return make


async def _send(
    pools: EndpointPools, port: int, *, headers: dict[str, str] | None = None, deadline: float = 5
) -> SendResult:
    return await HttpWebhookSender(pools, excerpt_bytes=16).send(
        f"http://127.0.0.1:{port}/hook",
        headers or {},
        b"{}",
        deadline_seconds=deadline,
        allow_private=True,
    )


async def _until_its_idle_connection_is_closed(pools: EndpointPools, port: int) -> None:
    """What the server did (closed, or spoke unasked) reaches the client a moment later."""
    pool = pools.for_url(f"http://127.0.0.1:{port}/hook")
    async with asyncio.timeout(GUARD_SECONDS):
        while pool.idle and not pool._idle[0].closed:
            await asyncio.sleep(0.01)


@pytest.fixture
async def server() -> Server:
    made = Server()
    yield made  # type: ignore[misc]
    await made.stop()


@pytest.fixture
async def pools() -> EndpointPools:
    made = EndpointPools(connections=2)
    yield made  # type: ignore[misc]
    await made.aclose()


async def test_kept_alive_connections_carry_many_deliveries(
    server: Server, pools: EndpointPools
) -> None:
    port = await server.start(answering(OK)(server))
    for _ in range(5):
        result = await _send(pools, port)
        assert (result.status_code, result.response_excerpt, result.error_class) == (
            200,
            "ok",
            None,
        )
    assert server.connections == 1


async def test_a_delivery_after_the_server_dropped_a_kept_alive_connection_opens_a_new_one(
    server: Server, pools: EndpointPools
) -> None:
    port = await server.start(answering(OK, then_close=True)(server))
    first = await _send(pools, port)
    assert (first.status_code, first.error_class) == (200, None)
    async with asyncio.timeout(GUARD_SECONDS):
        await server.closed.wait()
    await _until_its_idle_connection_is_closed(pools, port)
    second = await _send(pools, port)
    assert (second.status_code, second.error_class) == (200, None)
    assert server.connections == 2


async def test_unasked_bytes_on_an_idle_connection_are_never_read_as_an_answer(
    server: Server, pools: EndpointPools
) -> None:
    """A server that speaks on an idle keep-alive connection (a 408, say): the next
    delivery must get its own answer, on a new connection."""
    spoke = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(OK)
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        spoke.set()
        while True:  # keeps the connection open, answering 200 if ever asked again
            await server.read_request(reader)
            writer.write(OK)

    port = await server.start(handle)
    assert (await _send(pools, port)).status_code == 200
    async with asyncio.timeout(GUARD_SECONDS):
        await spoke.wait()
    await _until_its_idle_connection_is_closed(pools, port)
    again = await _send(pools, port)
    assert (again.status_code, again.error_class) == (200, None)
    assert server.connections == 2


@pytest.mark.parametrize(
    ("answer", "excerpt", "reused"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n",
            "ok!!!",
            True,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", None, True),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\nsure",
            "sure",
            True,
        ),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", False),
        # Longer than the excerpt but all there at once: read to its end, so kept.
        (b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b"x" * 40, "x" * 16, True),
    ],
    ids=["chunked", "no-content", "interim-answer", "connection-close", "http-1.0", "long"],
)
async def test_answers_are_read_and_the_connection_kept_only_when_it_may_be(
    server: Server, pools: EndpointPools, answer: bytes, excerpt: str | None, reused: bool
) -> None:
    port = await server.start(answering(answer, OK)(server))
    first = await _send(pools, port)
    expected_status = int(answer.rsplit(b"HTTP/1.", 1)[1][2:5])
    assert (first.status_code, first.response_excerpt, first.error_class) == (
        expected_status,
        excerpt,
        None,
    )
    second = await _send(pools, port)
    assert second.status_code in (200, expected_status)
    assert server.connections == (1 if reused else 2)


async def test_an_answer_still_arriving_past_the_excerpt_is_not_waited_for(
    server: Server, pools: EndpointPools
) -> None:
    """The status and the excerpt are all a delivery keeps: the rest of a long answer is
    never read, and its connection is never used again."""
    rest = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if server.connections > 1:
            await answering(OK)(server)(reader, writer)
            return
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 20)
        await writer.drain()
        await rest.wait()
        writer.write(b"x" * 80)
        await server.read_request(reader)
        writer.write(OK)

    port = await server.start(handle)
    try:
        first = await _send(pools, port)
        assert (first.status_code, first.response_excerpt) == (200, "x" * 16)
        assert pools.for_url(f"http://127.0.0.1:{port}/hook").idle == 0
    finally:
        rest.set()
    second = await _send(pools, port)
    assert (second.status_code, second.response_excerpt) == (200, "ok")
    assert server.connections == 2


async def test_a_long_answer_arriving_at_once_is_read(server: Server, pools: EndpointPools) -> None:
    """A large body in the same read as the head is a body, not an oversized head."""
    body = b"<html>" + b"x" * 300_000
    port = await server.start(
        answering(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)(server)
    )
    result = await _send(pools, port)
    assert (result.status_code, result.response_excerpt) == (200, "<html>" + "x" * 10)


async def test_a_second_answer_in_the_same_read_never_replaces_the_first(
    server: Server, pools: EndpointPools
) -> None:
    port = await server.start(
        answering(
            OK + b"HTTP/1.1 503 Busy\r\nRetry-After: 3600\r\nContent-Length: 4\r\n\r\nbusy",
            OK,
        )(server)
    )
    first = await _send(pools, port)
    assert (first.status_code, first.response_excerpt, first.retry_after) == (200, "ok", None)
    assert (await _send(pools, port)).status_code == 200
    assert server.connections == 2  # the connection that spoke out of turn was dropped


async def test_a_server_that_closes_after_each_answer_unannounced_loses_no_delivery(
    server: Server, pools: EndpointPools
) -> None:
    """It answers keep-alive and then closes: a request sent on that connection before
    the close arrives goes once more, on a new connection."""
    port = await server.start(answering(OK, then_close=True)(server))
    results = [await _send(pools, port) for _ in range(20)]
    results += await asyncio.gather(*(_send(pools, port) for _ in range(20)))
    assert [(r.status_code, r.error_class) for r in results] == [(200, None)] * 40
    assert len(server.heads) <= 80  # at most one second try per delivery


async def test_an_excerpt_of_nothing_needs_only_the_status(server: Server) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nhello")
        await asyncio.sleep(GUARD_SECONDS)

    port = await server.start(handle)
    pools = EndpointPools(connections=1)
    try:
        result = await HttpWebhookSender(pools, excerpt_bytes=0).send(
            f"http://127.0.0.1:{port}/", {}, b"{}", deadline_seconds=5, allow_private=True
        )
    finally:
        await pools.aclose()
    assert (result.status_code, result.error_class) == (200, None)


async def test_bare_line_feeds_are_read_as_h11_reads_them(
    server: Server, pools: EndpointPools
) -> None:
    port = await server.start(answering(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")(server))
    result = await _send(pools, port)
    assert (result.status_code, result.response_excerpt) == (200, "ok")


async def test_a_connection_in_use_when_its_pool_closes_is_closed_after_its_answer(
    server: Server,
) -> None:
    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await release.wait()
        writer.write(OK)
        await writer.drain()
        await reader.read()  # until the client closes

    port = await server.start(handle)
    pools = EndpointPools(connections=1)
    pool = pools.for_url(f"http://127.0.0.1:{port}/hook")
    sending = asyncio.create_task(_send(pools, port))
    async with asyncio.timeout(GUARD_SECONDS):
        while not server.heads:
            await asyncio.sleep(0.01)
    await pools.aclose()
    release.set()
    assert (await sending).status_code == 200
    assert pool.idle == 0
    async with asyncio.timeout(GUARD_SECONDS):
        await server.closed.wait()


async def test_an_idle_connection_is_closed_when_its_keepalive_ends(server: Server) -> None:
    pools = EndpointPools(connections=1, keepalive_seconds=0.05)
    try:
        port = await server.start(answering(OK)(server))
        assert (await _send(pools, port)).status_code == 200
        async with asyncio.timeout(GUARD_SECONDS):
            await server.closed.wait()  # the client closed it, unasked
        assert pools.for_url(f"http://127.0.0.1:{port}/hook").idle == 0
    finally:
        await pools.aclose()


async def test_a_body_that_ends_with_the_connection_is_the_whole_answer(
    server: Server, pools: EndpointPools
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 500 Oops\r\n\r\nbroken")
        await writer.drain()

    port = await server.start(handle)
    result = await _send(pools, port)
    assert (result.status_code, result.response_excerpt, result.error_class) == (
        500,
        "broken",
        None,
    )


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"", "connection_closed"),  # closed without a word
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "connection_closed"),
        (b"NOT HTTP AT ALL\r\n\r\n", "http_error"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "http_error"),
        # Cut off in a body that ends with the connection: a reset is no end.
        (b"HTTP/1.1 200 OK\r\n\r\npart", "reset"),
    ],
    ids=["silence", "truncated", "garbage", "upgrade", "reset"],
)
async def test_a_broken_answer_is_a_failed_attempt_and_its_connection_is_dropped(
    server: Server, pools: EndpointPools, answer: bytes, error: str
) -> None:
    reset = error == "reset"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer)
        await writer.drain()
        if reset:
            await asyncio.sleep(0.05)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    port = await server.start(handle)
    if reset:
        error = "connection_closed"
    result = await _send(pools, port)
    assert (result.status_code, result.error_class) == (None, error)
    assert pools.for_url(f"http://127.0.0.1:{port}/hook").idle == 0


async def test_an_endless_header_is_given_up_on_before_the_deadline(
    server: Server, pools: EndpointPools
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
        while True:  # until the client hangs up
            writer.write(b"a" * 16_384)
            await writer.drain()

    port = await server.start(handle)
    result = await _send(pools, port, deadline=GUARD_SECONDS)
    # Not "timeout": the head outgrew MAX_HEAD_BYTES long before the deadline.
    assert (result.status_code, result.error_class) == (None, "http_error")


async def test_endless_trailers_are_not_waited_for(server: Server, pools: EndpointPools) -> None:
    """The status is in; what follows the excerpt (here a trailer that never ends) is
    read no further than MAX_HEAD_BYTES, and a trailer's Retry-After is not one."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n"
            b"Retry-After: 86400\r\nX-Pad: "
        )
        while True:
            writer.write(b"a" * 16_384)
            await writer.drain()

    port = await server.start(handle)
    result = await _send(pools, port, deadline=GUARD_SECONDS)
    assert (result.status_code, result.response_excerpt, result.error_class) == (503, "no", None)
    assert result.retry_after is None


async def test_a_trailer_is_not_a_header(server: Server, pools: EndpointPools) -> None:
    port = await server.start(
        answering(
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n"
            b"Retry-After: 86400\r\n\r\n"
        )(server)
    )
    result = await _send(pools, port)
    assert (result.status_code, result.response_excerpt, result.retry_after) == (503, "no", None)


async def test_a_refused_connection_and_a_silent_server(
    server: Server, pools: EndpointPools
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    refused = await _send(pools, free_port)
    assert (refused.status_code, refused.error_class) == (None, "connect_error")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await asyncio.sleep(GUARD_SECONDS)

    port = await server.start(silent)
    late = await _send(pools, port, deadline=0.2)
    assert (late.status_code, late.error_class) == (None, "timeout")
    # The attempt gave up on the connection: it is closed, not kept for the next one.
    assert pools.for_url(f"http://127.0.0.1:{port}/hook").idle == 0


async def test_a_header_that_would_split_the_request_is_refused_before_sending(
    server: Server, pools: EndpointPools
) -> None:
    port = await server.start(answering(OK)(server))
    result = await _send(pools, port, headers={"x-note": "a\r\nx-evil: 1"})
    assert (result.status_code, result.error_class) == (None, "http_error")
    assert server.heads == []
    with pytest.raises(Exception, match="illegal"):
        request_head(b"/a b", [], 0)
    with pytest.raises(Exception, match="illegal"):
        request_head(b"/", [(b"bad name", b"v")], 0)


async def test_idle_connections_expire(server: Server) -> None:
    pools = EndpointPools(connections=1, keepalive_seconds=0.05)
    try:
        port = await server.start(answering(OK)(server))
        assert (await _send(pools, port)).status_code == 200
        await asyncio.sleep(0.1)
        assert (await _send(pools, port)).status_code == 200
        assert server.connections == 2
    finally:
        await pools.aclose()


async def test_a_pool_opens_no_more_connections_than_its_gate_lets_requests_in(
    server: Server,
) -> None:
    pools = EndpointPools(connections=2)
    try:
        port = await server.start(answering(OK)(server))
        results = await asyncio.gather(*(_send(pools, port) for _ in range(20)))
        assert {r.status_code for r in results} == {200}
        assert server.connections <= 2
    finally:
        await pools.aclose()


async def test_a_pooled_request_is_sent_as_the_shared_client_would_send_it(
    server: Server,
) -> None:
    """Non-ASCII and spaces in the path and query are percent-encoded, Host names the
    endpoint's host and port, Content-Length the body, and Retry-After is read back."""
    port = await server.start(
        answering(b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy")(server)
    )
    pools = EndpointPools(connections=1)
    try:
        result = await HttpWebhookSender(pools).send(
            f"http://127.0.0.1:{port}/hooks/café?n=a b",
            {"webhook-id": "evt_1"},
            b"{}",
            deadline_seconds=GUARD_SECONDS,
            allow_private=True,
        )
    finally:
        await pools.aclose()
    assert (result.status_code, result.response_excerpt, result.error_class) == (503, "busy", None)
    assert result.retry_after is not None and result.retry_after.total_seconds() == 7
    [head] = server.heads
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hooks/caf%C3%A9?n=a%20b HTTP/1.1"
    assert f"host: 127.0.0.1:{port}".encode() in [line.lower() for line in lines]
    assert b"content-length: 2" in [line.lower() for line in lines]
    assert b"webhook-id: evt_1" in [line.lower() for line in lines]
    assert b"accept-encoding: identity" in [line.lower() for line in lines]
