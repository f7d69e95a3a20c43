"""Header limits enforced while the server parses the request, before the app runs.

uvicorn's httptools protocol accepts any number and size of headers: 100,000 headers or one
of 32 MiB are parsed (in the event loop, slowing every other request) before the app could
refuse them. :class:`HeaderLimitedProtocol` counts as the bytes arrive and answers
``431 request_header_fields_too_large`` at once, closing the connection.
``amanat serve`` runs it; ContractMiddleware checks the same limits again for any other
server that hosts the app.

Requests pipelined before the refused one on the same connection are answered first, in
order: the 431 waits until their responses are written (writing it at once put it ahead of
them, and its half-close made their own responses fail with "write() after write_eof()").
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from amanat.platform.http.errors import problem_body
from amanat.platform.http.one_write import HeadWithBody
from amanat.platform.settings import Settings

# Room for the request line (method, target, version) on top of the headers themselves.
REQUEST_LINE_ALLOWANCE = 8192
# How long a refused connection may still send (and have it discarded) before it is closed.
DRAIN_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    max_header_bytes: int
    max_header_count: int


@cache
def configured_limits() -> HeaderLimits:
    """Read once per server process, from the same settings the app reads."""
    http = Settings().http
    return HeaderLimits(http.max_header_bytes, http.max_header_count)


class _HeadersTooLarge(Exception):
    pass


def refusal_bytes(limits: HeaderLimits) -> bytes:
    body = json.dumps(
        problem_body(
            "request_header_fields_too_large",
            status=431,
            detail=f"At most {limits.max_header_count} headers of {limits.max_header_bytes} "
            "bytes in total are accepted.",
            instance=None,
        )
    ).encode()
    return b"".join(
        [
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: application/problem+json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on header count and total size, writing
    each answer's head with its body (one_write.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = configured_limits()
        self._head_open = True
        self._head_bytes = 0
        self._header_bytes = 0
        self._over_limits = False
        self._refused = False
        self._refusal_waiting = False

    def data_received(self, data: bytes) -> None:
        # Fed in pieces no larger than the room left for the head being read: a piece may
        # end that head (the body and any pipelined requests after it are then fed as they
        # come), so only bytes of an unfinished head count against the cap.
        while data and not self._refused and not self.transport.is_closing():
            if not self._head_open:
                super().data_received(data)
                return
            room = self._limits.max_header_bytes + REQUEST_LINE_ALLOWANCE - self._head_bytes
            if room <= 0:
                self._refuse()
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)  # on_headers_complete starts the count afresh
            super().data_received(piece)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if (
            len(self.headers) >= self._limits.max_header_count
            or self._header_bytes > self._limits.max_header_bytes
        ):
            self._over_limits = True
            # httptools turns this into a parser error; send_400_response answers 431.
            raise _HeadersTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._head_bytes = 0
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not before:  # not an upgrade
            HeadWithBody(self.transport, self.cycle)

    def on_message_complete(self) -> None:
        self._head_open = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refusal_waiting and not self._answering():
            self._refusal_waiting = False
            self._send_refusal()

    def send_400_response(self, msg: str) -> None:
        if self._over_limits:
            self._refuse()
            return
        super().send_400_response(msg)

    def _answering(self) -> bool:
        """Whether a request read before the refused one is still being answered (the
        latest cycle is the last of any pipelined ones, so it completes last)."""
        return self.cycle is not None and not self.cycle.response_complete

    def _refuse(self) -> None:
        if self._refused:  # the headers fed last may have been refused already
            return
        self._refused = True
        if self._answering():
            # Nothing more is read from this connection (data_received drops it); the 431
            # follows the last pending response, from on_response_complete.
            self._refusal_waiting = True
            return
        self._send_refusal()

    def _send_refusal(self) -> None:
        transport: asyncio.Transport = self.transport
        if transport.is_closing():
            return
        self._unset_keepalive_if_required()
        transport.write(refusal_bytes(self._limits))
        # Half-close and drop what still arrives (data_received ignores it): closing with
        # unread bytes would send a reset that can destroy the 431 before the client reads
        # it. The connection is closed for good after a grace period.
        if transport.can_write_eof():
            transport.write_eof()
            self.loop.call_later(DRAIN_SECONDS, transport.close)
        else:
            transport.close()
