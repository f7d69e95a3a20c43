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
* Idle connections are closed after :data:`KEEPALIVE_SECONDS`; a pool keeps at most
  as many connections as its gate lets requests in. A request that finds its kept-alive
  connection closed by the server before any byte of an answer goes once more on a new
  connection (the race of a server's idle timeout), never twice.
* Failures raise httpcore's exception classes (``ConnectError``; ``ReadError`` and
  ``RemoteProtocolError`` for a connection that broke; ``ProtocolError`` for an answer
  that is not HTTP/1.1; ``LocalProtocolError`` for a request it would not send), so
  transport.py classifies them as it classifies httpx's.
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
# for one event), nor what follows the excerpt (chunk framing, trailers): an endpoint
# streaming an endless header would otherwise grow the parser's buffers (and burn CPU
# joining them) until the attempt's deadline.
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


class _Unasked(Exception):
    """A second answer began on a connection whose answer was complete."""


class _Connection(asyncio.Protocol):
    """One connection and, while a request is out, its answer as it is parsed."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.closed = False
        self.idle_since = 0.0
        self.expiry: asyncio.TimerHandle | None = None
        self.answered_before = False  # has carried a whole answer: a kept-alive connection
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._limit = 0
        self._status = 0
        self._retry_after: str | None = None
        self._framed = False
        self._close_after = False
        self._excerpt = bytearray()
        self._received = 0
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
        if exc is None and self._headers_done and not self._framed:
            # A body without length or chunks ends with the connection: that is its end.
            # (A reset, exc set, is a broken answer, not an end.)
            self._complete = True
            self._resolve()
            return
        waiter.set_exception(
            httpcore.RemoteProtocolError("the server closed the connection before answering")
            if exc is None
            else httpcore.ReadError(str(exc) or type(exc).__name__)
        )

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done() or self._parser is None:
            # Nobody asked: these bytes must never be taken for the next answer.
            self.close()
            return
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserUpgrade, httptools.HttpParserError) as exc:
            if self._complete:  # bytes after a whole answer: the answer stands
                self._reusable = False
                self._resolve()
            elif isinstance(exc, httptools.HttpParserUpgrade):
                self._fail(httpcore.ProtocolError("the server switched protocols"))
            else:
                self._fail(httpcore.ProtocolError(f"malformed answer: {exc}"))
            return
        if self._complete:
            self._resolve()
        elif not self._headers_done:
            if self._received > MAX_HEAD_BYTES:
                self._fail(httpcore.ProtocolError("the answer's head is too large"))
        elif len(self._excerpt) >= self._limit or self._received > MAX_HEAD_BYTES + self._limit:
            # The excerpt is full, or what follows it (chunk framing, trailers) goes on
            # and on: the status is known, the rest is never read.
            self._resolve()

    # -- httptools callbacks (an exception raised here stops the parser)

    def on_message_begin(self) -> None:
        if self._complete:
            raise _Unasked

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._headers_done:
            return  # a trailer: never read as a header (RFC 9110, 6.5.1)
        name = name.lower()
        if name == b"retry-after" and self._retry_after is None:
            self._retry_after = value.decode("latin-1")
        elif name == b"content-length" or (
            name == b"transfer-encoding" and value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
        ):
            self._framed = True
        elif name == b"connection" and b"close" in value.lower():
            self._close_after = True

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._status = self._parser.get_status_code()
        if self._status >= 200:
            self._headers_done = True
            self._received = 0  # from here on, the body and what frames it
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
        self._complete = True
        self._reusable = self._parser.should_keep_alive() and not self._close_after

    # -- the exchange

    async def exchange(self, data: bytes, limit: int) -> Answer:
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            raise httpcore.ReadError("the connection is closed")
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        parser = self._parser = httptools.HttpResponseParser(self)
        # Answers with bare LF line ends, as h11 (under httpx) reads them.
        parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
        self._limit = limit
        self._status = 0
        self._retry_after = None
        self._framed = self._close_after = self._headers_done = False
        self._complete = self._reusable = False
        self._excerpt = bytearray()
        self._received = 0
        transport.write(data)
        try:
            answer = await self._waiter
        finally:
            self._waiter = None
            self._parser = None
        self.answered_before = True
        return answer

    @property
    def received_any(self) -> bool:
        """Whether any byte of the current (or last) answer arrived."""
        return self._received > 0 or self._headers_done

    @property
    def usable(self) -> bool:
        transport = self._transport
        return not self.closed and transport is not None and not transport.is_closing()

    @property
    def reusable(self) -> bool:
        return self._reusable and self.usable

    def _resolve(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if not self._complete:  # cut short: the rest is never read
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
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
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
        self._closed = False
        self.gate = asyncio.Semaphore(connections)
        self.opened = 0

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def post(self, origin: Origin, head: bytes, body: bytes, limit: int) -> Answer:
        connection = self._take(origin)
        if connection is not None:
            try:
                return await self._exchange(connection, head + body, limit)
            except (httpcore.NetworkError, httpcore.RemoteProtocolError):
                # A kept-alive connection the server closed as the request went out (its
                # idle timeout, or a close after its last answer without saying so), no
                # byte of an answer received: the request goes once more on a new
                # connection, as browsers and urllib3 do. The receiver may have seen the
                # first one; webhook-id is how receivers tell, as with any retry.
                if connection.received_any:
                    raise
        return await self._exchange(await self._connect(origin), head + body, limit)

    async def _exchange(self, connection: _Connection, data: bytes, limit: int) -> Answer:
        answered = False
        try:
            answer = await connection.exchange(data, limit)
            answered = True
        finally:
            if answered and connection.reusable and not self._closed:
                self._keep(connection)
            else:
                connection.close()
        return answer

    def _keep(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        connection.expiry = asyncio.get_running_loop().call_later(
            self._keepalive, self._expire, connection
        )
        self._idle.append(connection)

    def _expire(self, connection: _Connection) -> None:
        connection.expiry = None
        if connection in self._idle:
            self._idle.remove(connection)
        connection.close()

    def _take(self, origin: Origin) -> _Connection | None:
        stale = time.monotonic() - self._keepalive
        idle = self._idle
        while idle:
            connection = idle.pop()  # the most recently used: the likeliest still open
            if connection.expiry is not None:
                connection.expiry.cancel()
                connection.expiry = None
            fresh = connection.usable and connection.idle_since >= stale
            if fresh and connection.origin == origin:
                return connection
            connection.close()  # gone, expired, or another address now (DNS changed)
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
        """Closes the idle connections now, and those still carrying a request when
        their answer is in."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
