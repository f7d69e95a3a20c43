"""Kept-alive HTTP/1.1 connections for webhook attempts, parsed by httptools.

A webhook attempt is one small POST whose answer matters for its status, its
``Retry-After`` and the first few hundred bytes of its body. Through httpcore (the engine
under httpx) that cost the worker about 0.4 ms of CPU per delivery, more than claiming,
signing and recording it together: h11 parses every answer in pure Python, the pool
examines its connections on every request, and each request passes a dozen layers of
awaits and cancellation shields. Here a connection is an :class:`asyncio.Protocol`, the
request goes out in one write, and the answer is parsed as it arrives by httptools
(llhttp, in C: uvicorn's parser, so nothing new is installed). httpx stays the client for
everything else; no client library offers a pool this thin, which is why this exists.

What it promises (tests/integration/webhooks/test_http1.py):

* One request at a time per connection. A connection is used again only after an answer
  that allows it: complete, ``keep-alive``, its body read to the end. Anything else (an
  answer cut short at the excerpt's size, a ``Connection: close``, a body that ends with
  the connection, a cancelled or failed attempt) closes it.
* Bytes that arrive on an idle connection (a 408, say) and a close by the server make
  it unusable at once: they can never be read as the next request's answer.
* Idle connections are dropped after :data:`KEEPALIVE_SECONDS`; a pool keeps at most
  as many connections as its gate lets requests in.
* Failures raise httpcore's exception classes (``ConnectError``, ``ReadError``,
  ``RemoteProtocolError``, ``LocalProtocolError``), so transport.py classifies them as
  it classifies httpx's.
* The deadline is the caller's (transport.py wraps the attempt in ``asyncio.timeout``).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from dataclasses import dataclass
from typing import cast

import httpcore
import httptools

# How long an idle kept-alive connection is reused (httpx's default).
KEEPALIVE_SECONDS = 5.0

# An answer's status line and headers may not exceed this (h11, under httpx, allows 16 KiB
# for one event): an endpoint streaming an endless header would otherwise grow the
# parser's buffers until the attempt's deadline.
MAX_HEAD_BYTES = 64 * 1024

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Field values: visible characters, spaces, tabs and obs-text; never CR, LF or NUL.
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    retry_after: str | None
    excerpt: bytes


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a connection goes: the address (or, for a private endpoint, the name) to
    connect to, and for TLS the name the certificate must carry."""

    host: str
    port: int
    tls: bool
    server_name: str | None


def request_head(target: bytes, headers: list[tuple[bytes, bytes]], body_length: int) -> bytes:
    """``POST`` with ``headers`` in their order and the body's ``Content-Length``.
    A name that is not a token or a value with CR, LF or NUL is refused: it would let a
    header split the request."""
    if not target.startswith(b"/") or b" " in target or _FIELD_VALUE.fullmatch(target) is None:
        raise httpcore.LocalProtocolError("illegal request target")
    parts = [b"POST ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if _TOKEN.fullmatch(name) is None or _FIELD_VALUE.fullmatch(value) is None:
            raise httpcore.LocalProtocolError(f"illegal header {name!r}")
        parts += (name, b": ", value, b"\r\n")
    parts += (b"content-length: ", str(body_length).encode(), b"\r\n\r\n")
    return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One connection and, while a request is out, its answer as it is parsed."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.closed = False
        self.idle_since = 0.0
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._limit = 0
        self._status = 0
        self._retry_after: str | None = None
        self._framed = False
        self._close_after = False
        self._excerpt = bytearray()
        self._head_bytes = 0
        self._headers_done = False
        self._complete = False
        self._reusable = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport instances, but behave as one.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed and self._status >= 200:
            # A body without length or chunks ends with the connection: that is its end.
            self._complete = True
            self._resolve()
            return
        waiter.set_exception(
            httpcore.RemoteProtocolError("the server closed the connection before answering")
            if exc is None
            else httpcore.ReadError(str(exc))
        )

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done() or self._parser is None:
            # Nobody asked: these bytes must never be taken for the next answer.
            self.close()
            return
        if not self._headers_done:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail(httpcore.RemoteProtocolError("the answer's head is too large"))
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpcore.RemoteProtocolError("the server switched protocols"))
            return
        except httptools.HttpParserError as exc:
            if self._complete:  # bytes after a whole answer: the answer stands
                self._reusable = False
                self._resolve()
            else:
                self._fail(httpcore.RemoteProtocolError(f"malformed answer: {exc}"))
            return
        if self._complete or len(self._excerpt) >= self._limit > 0:
            self._resolve()

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self._complete:  # a second answer nobody asked for
            self._reusable = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"retry-after" and self._retry_after is None:
            self._retry_after = value.decode("latin-1")
        elif name == b"content-length" or (
            name == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self._framed = True
        elif name == b"connection" and b"close" in value.lower():
            self._close_after = True

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._status = self._parser.get_status_code()
        if self._status >= 200:
            self._headers_done = True
            if self._status in (204, 304):
                self._framed = True

    def on_body(self, body: bytes) -> None:
        room = self._limit - len(self._excerpt)
        if room > 0:
            self._excerpt += body[:room]

    def on_message_complete(self) -> None:
        assert self._parser is not None
        if self._status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            self._retry_after = None
            self._framed = self._close_after = False
            return
        if not self._complete:
            self._complete = True
            self._reusable = self._parser.should_keep_alive() and not self._close_after

    # -- the exchange

    async def exchange(self, data: bytes, limit: int) -> Answer:
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            raise httpcore.ReadError("the connection is closed")
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._limit = limit
        self._status = 0
        self._retry_after = None
        self._framed = self._close_after = self._headers_done = False
        self._complete = self._reusable = False
        self._excerpt = bytearray()
        self._head_bytes = 0
        transport.write(data)
        try:
            return await self._waiter
        finally:
            self._waiter = None
            self._parser = None

    @property
    def reusable(self) -> bool:
        return self._reusable and not self.closed

    def _resolve(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if not self._complete:  # cut short at the excerpt's size: the rest is never read
            self._reusable = False
        waiter.set_result(Answer(self._status, self._retry_after, bytes(self._excerpt)))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        self._reusable = False
        if self._transport is not None:
            # Dropped at once: an orderly TLS close could wait for the peer's close_notify.
            self._transport.abort()


class EndpointPool:
    """The connections of one endpoint URL, and the gate that lets at most
    ``connections`` requests (so connections) in at a time."""

    def __init__(
        self,
        tls: ssl.SSLContext,
        connections: int,
        *,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._tls = tls
        self._keepalive = keepalive_seconds
        self._idle: list[_Connection] = []
        self.gate = asyncio.Semaphore(connections)
        self.opened = 0

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def post(self, origin: Origin, head: bytes, body: bytes, limit: int) -> Answer:
        connection = self._take(origin) or await self._connect(origin)
        answered = False
        try:
            answer = await connection.exchange(head + body, limit)
            answered = True
        finally:
            if answered and connection.reusable:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
        return answer

    def _take(self, origin: Origin) -> _Connection | None:
        stale = time.monotonic() - self._keepalive
        idle = self._idle
        while idle and (idle[0].closed or idle[0].idle_since < stale):
            idle.pop(0).close()
        while idle:
            connection = idle.pop()
            fresh = not connection.closed and connection.idle_since >= stale
            if fresh and connection.origin == origin:
                return connection
            connection.close()  # another address now (DNS changed), or gone
        return None

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(origin),
                origin.host,
                origin.port,
                ssl=self._tls if origin.tls else None,
                server_hostname=origin.server_name if origin.tls else None,
            )
        except OSError as exc:  # refused, unreachable, a name that does not resolve, TLS
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        self.opened += 1
        return connection

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
