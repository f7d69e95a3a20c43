"""The webhook worker's httpcore network backend on asyncio streams
(webhooks/adapters/asyncio_network.py): what httpcore asks of it, against real sockets."""

from __future__ import annotations

import asyncio
import socket

import httpcore
import pytest

from amanat.webhooks.adapters.asyncio_network import AsyncioBackend, AsyncioStream
from amanat.webhooks.adapters.transport import EndpointPools, HttpWebhookSender

# A guard, not a measurement.
GUARD_SECONDS = 10


async def _server(
    answer: bytes, *, close_after: bool
) -> tuple[asyncio.Server, int, asyncio.Event, list[int]]:
    """A local HTTP/1.1 server: answers every request with ``answer``, closing the
    connection after it when ``close_after`` (a keep-alive the client was not told about
    ends); ``closed`` is set once it has; ``connections`` counts accepted ones."""
    closed = asyncio.Event()
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                writer.write(answer)
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            await writer.wait_closed()
            closed.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port, closed, connections


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_an_idle_connection_the_server_closed_reads_as_readable() -> None:
    server, port, closed, _ = await _server(OK, close_after=True)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=GUARD_SECONDS)
        assert isinstance(stream, AsyncioStream)
        assert stream.get_extra_info("is_readable") is False
        await stream.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert await stream.read(1024, timeout=GUARD_SECONDS) == OK
        async with asyncio.timeout(GUARD_SECONDS):
            await closed.wait()
            # The server's close reaches the client's reader a moment later.
            while not stream.get_extra_info("is_readable"):
                await asyncio.sleep(0.01)
        assert stream.get_extra_info("server_addr")[1] == port
        await stream.aclose()


async def test_an_idle_connection_holding_unasked_bytes_reads_as_readable() -> None:
    """A server that speaks on an idle keep-alive connection (a 408, say): those bytes
    must never be read as the answer to the next request."""
    spoke = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        spoke.set()
        await reader.read()  # keeps the connection open
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=GUARD_SECONDS)
        async with asyncio.timeout(GUARD_SECONDS):
            await spoke.wait()
            while not stream.get_extra_info("is_readable"):
                await asyncio.sleep(0.01)
        await stream.aclose()


async def test_a_delivery_after_the_server_dropped_a_kept_alive_connection_opens_a_new_one() -> (
    None
):
    server, port, closed, connections = await _server(OK, close_after=True)
    pools = EndpointPools(connections=2)
    sender = HttpWebhookSender(pools)
    url = f"http://127.0.0.1:{port}/hook"
    try:
        async with server:
            first = await sender.send(url, {}, b"{}", deadline_seconds=5, allow_private=True)
            assert (first.status_code, first.error_class) == (200, None)
            async with asyncio.timeout(GUARD_SECONDS):
                await closed.wait()
                pool = pools.for_url(url)
                # Wait until the pool sees the closed connection as expired (as it will on
                # the next request); then that request must not use it.
                while any(not c.has_expired() for c in pool.connections):
                    await asyncio.sleep(0.01)
            second = await sender.send(url, {}, b"{}", deadline_seconds=5, allow_private=True)
            assert (second.status_code, second.error_class) == (200, None)
            assert len(connections) == 2
    finally:
        await pools.aclose()


async def test_kept_alive_connections_carry_many_deliveries() -> None:
    server, port, _, connections = await _server(OK, close_after=False)
    pools = EndpointPools(connections=2)
    sender = HttpWebhookSender(pools)
    url = f"http://127.0.0.1:{port}/hook"
    try:
        async with server:
            for _ in range(5):
                result = await sender.send(url, {}, b"{}", deadline_seconds=5, allow_private=True)
                assert result.status_code == 200
            assert len(connections) == 1
            assert isinstance(pools.for_url(url)._network_backend, AsyncioBackend)
    finally:
        await pools.aclose()


async def test_failures_come_back_as_httpcore_errors() -> None:
    backend = AsyncioBackend()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("127.0.0.1", free_port, timeout=GUARD_SECONDS)
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    async with silent:
        port = silent.sockets[0].getsockname()[1]
        stream = await backend.connect_tcp("127.0.0.1", port, timeout=GUARD_SECONDS)
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(10, timeout=0.05)
        await stream.aclose()
    # As transport.py classifies httpcore's error.
    pools = EndpointPools(connections=1)
    try:
        result = await HttpWebhookSender(pools).send(
            f"http://127.0.0.1:{free_port}/", {}, b"", deadline_seconds=5, allow_private=True
        )
        assert result.error_class == "connect_error"
    finally:
        await pools.aclose()


async def test_a_pooled_request_is_sent_as_the_shared_client_would_send_it() -> None:
    """Non-ASCII and spaces in the path and query are percent-encoded, Host names the
    endpoint's host and port, Content-Length the body, and Retry-After is read back."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        await reader.readexactly(2)
        writer.write(b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pools = EndpointPools(connections=1)
    try:
        async with server:
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
    [head] = heads
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hooks/caf%C3%A9?n=a%20b HTTP/1.1"
    assert f"host: 127.0.0.1:{port}".encode() in [line.lower() for line in lines]
    assert b"content-length: 2" in [line.lower() for line in lines]
    assert b"webhook-id: evt_1" in [line.lower() for line in lines]
