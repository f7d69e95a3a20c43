"""An httpcore network backend on asyncio's own streams, for webhook delivery.

httpcore (under httpx) talks to sockets through a network backend; its default goes
through anyio. In the webhook worker's profile that layer cost more than the rest of a
request: on every request httpcore's pool asks each kept-alive connection whether the
server has closed it (``is_readable``), and anyio answers by building the socket's whole
attribute mapping each time; its stream writes add another layer of tasks and events.
httpcore ships backends for anyio and trio only, hence this small one. It keeps
httpcore's contract: its exceptions (which httpx maps to its own), per-call timeouts, TLS
with the server name given (SNI and certificate checks against the name, not the pinned
address; transport.py).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

# httpcore's interface passes ``timeout`` to every call (ruff's ASYNC109 would have the
# caller use asyncio.timeout instead); each method applies it with asyncio.timeout.
# ruff: noqa: ASYNC109


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        # Dropped at once, as anyio's backend does: an orderly close would wait for a TLS
        # peer's close_notify (up to 30 s in asyncio) or for unsent data, holding the
        # socket, and httpcore closes expired connections on a delivery's own path.
        self._writer.transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Idle keep-alive connection: the server closed it (end of stream), or sent
            # something unasked (a 408, say). Either way it must not carry the next
            # request, whose answer would otherwise be read from those bytes. The loop
            # moves what arrives into the reader's buffer at once, so the socket itself
            # never looks readable; StreamReader has no public view of its buffer.
            reader = self._reader
            return bool(
                reader.at_eof() or reader.exception() is not None or getattr(reader, "_buffer", b"")
            )
        names = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }
        name = names.get(info)
        return self._writer.get_extra_info(name) if name else None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock: socket.socket | None = writer.get_extra_info("socket")
        for option in socket_options or ():
            if sock is not None:
                sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are delivered over TCP only")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
