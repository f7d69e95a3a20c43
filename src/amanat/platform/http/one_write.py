"""A response's head and body leave in one write, not two.

uvicorn's httptools protocol writes the status line and headers when the app sends
``http.response.start``, and the body when it sends ``http.response.body``: two writes to
the socket, so two ``send`` system calls, for every answer. In the bench's profiles those two
writes were about a tenth of the API's CPU on a replay. :class:`HeadWithBody` stands in for
the connection in one request's cycle and holds the head of a response whose length is
declared (``content-length``, not a HEAD request) until its body follows, then writes both
together (``writelines``: one ``writev`` under uvloop, no copy of the body).

Nothing else is held: a chunked response, ``100 Continue`` and a HEAD answer are written
as uvicorn writes them (a streamed answer that declares its length waits for its first
piece). uvicorn always follows a sized head with a body write (an empty one too), so a
held head goes out with it; a close before that (an app that fails after starting its
answer) writes the head first, as uvicorn would have, unless the connection is already
gone. The cycle is let go once its head is written, so a finished request is freed at
once, as under plain uvicorn. uvicorn has no setting for this, and its protocol is
already subclassed here for the header limits (header_limits.py), so this is a few lines
on that subclass rather than a fork.
"""

from __future__ import annotations

import asyncio
from typing import Any


class HeadWithBody:
    """The connection as one request's cycle (``RequestResponseCycle``) sees it."""

    __slots__ = ("_cycle", "_held", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle: Any = cycle  # None once the head is written
        self._held: bytes | None = None
        cycle.transport = self

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
            return
        cycle = self._cycle
        if cycle is not None and cycle.response_started:
            # The first write once the answer has started is its head.
            self._cycle = None
            if cycle.chunked_encoding is False and cycle.scope["method"] != "HEAD":
                self._held = data
                return
        self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        self._held = None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
