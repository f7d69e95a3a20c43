"""Sending one webhook attempt over HTTP, safely.

* One deadline covers the whole attempt (DNS, connect, TLS, response); redirects are never
  followed (a 3xx is a failed attempt).
* Only the first bytes of the response are kept.
* Outside the sandbox the host is resolved here, every address is checked against the
  non-public ranges, and the request goes to the checked address (the original host in
  ``Host`` and in TLS SNI and certificate checks). So a name that resolves to a public
  address when the endpoint is saved and to 169.254.169.254 a minute later (DNS
  rebinding) is refused at delivery time.
* Each endpoint origin (scheme, host, port) has its own small keep-alive pool
  (:class:`OriginClients`): httpcore looks over every connection of a pool on each
  request, so a few connections per origin cost less than one pool of many, and a
  connection opened (and its certificate checked) for one name never carries another's.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from amanat.webhooks.domain.endpoints import forbidden_address
from amanat.webhooks.service import AddressResolver, SendResult


class SystemResolver:
    async def resolve(self, host: str) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return sorted({str(info[4][0]) for info in infos})


class BlockedAddress(Exception):
    pass


# Far beyond any wait the schedule honours (it caps Retry-After at a day), small enough
# that no header value can overflow a timedelta.
_RETRY_AFTER_CEILING = timedelta(days=365)


def _retry_after(value: str | None) -> timedelta | None:
    """``Retry-After`` as seconds or an HTTP date; None when absent or unreadable. Whatever
    the receiver sends, this never raises."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return timedelta(seconds=min(int(value), int(_RETRY_AFTER_CEILING.total_seconds())))
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000": the date is in UTC
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(timedelta(seconds=max(seconds, 0)), _RETRY_AFTER_CEILING)


def _excerpt(raw: bytes) -> str | None:
    # NUL is not storable in a PostgreSQL text column; show it as the replacement character.
    return raw.decode("utf-8", "replace").replace("\x00", "\ufffd") or None


def _error_class(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, BlockedAddress):
        return "blocked_address"
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
        return "dns_error"
    if isinstance(exc, httpx.ConnectError):
        return "ssl_error" if "SSL" in str(exc) or "certificate" in str(exc) else "connect_error"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "connection_closed"
    if isinstance(exc, httpx.HTTPError):
        return "http_error"
    return type(exc).__name__[:64]


class OriginClients:
    """An HTTP client per endpoint origin, each with at most ``connections`` kept alive.

    The TLS context is made once and shared (each client would load the CA bundle
    again). The least recently used clients beyond ``remember`` are closed after
    ``grace_seconds``, once attempts still using them are over."""

    def __init__(
        self,
        *,
        connections: int,
        remember: int = 512,
        grace_seconds: float = 60.0,
        verify: ssl.SSLContext | str | bool = True,
    ) -> None:
        self._limits = httpx.Limits(
            max_connections=connections, max_keepalive_connections=connections
        )
        self._tls = (
            verify
            if isinstance(verify, ssl.SSLContext)
            else httpx.create_ssl_context(verify=verify)
        )
        self._remember = remember
        self._grace = grace_seconds
        self._clients: OrderedDict[tuple[str, str, int | None], httpx.AsyncClient] = OrderedDict()
        self._retiring: set[asyncio.Task[None]] = set()

    def for_url(self, url: str) -> httpx.AsyncClient:
        parts = urlsplit(url)
        origin = (parts.scheme, (parts.hostname or "").lower(), parts.port)
        client = self._clients.get(origin)
        if client is not None:
            self._clients.move_to_end(origin)
            return client
        client = self._clients[origin] = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # never route partner deliveries through an ambient proxy
            verify=self._tls,
            limits=self._limits,
        )
        if len(self._clients) > self._remember:
            _, oldest = self._clients.popitem(last=False)
            task = asyncio.get_running_loop().create_task(self._retire(oldest))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return client

    async def _retire(self, client: httpx.AsyncClient) -> None:
        await asyncio.sleep(self._grace)
        await client.aclose()

    async def aclose(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()


class HttpWebhookSender:
    def __init__(
        self,
        client: httpx.AsyncClient | OriginClients,
        resolver: AddressResolver | None = None,
        *,
        excerpt_bytes: int = 512,
        address_forbidden: Callable[[str], bool] = forbidden_address,
    ) -> None:
        # One client for every origin (tests, a custom trust store) or one per origin.
        self._shared = client if isinstance(client, httpx.AsyncClient) else None
        self._per_origin = client if isinstance(client, OriginClients) else None
        self._resolver = resolver or SystemResolver()
        self._excerpt = excerpt_bytes
        self._forbidden = address_forbidden  # replaceable in tests, to reach 127.0.0.1

    async def _pinned(self, url: str) -> tuple[str, dict[str, str], dict[str, str]]:
        """The URL rewritten to a checked address, the Host header and the SNI name."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        addresses = await self._resolver.resolve(host)
        if not addresses or any(self._forbidden(a) for a in addresses):
            raise BlockedAddress(host)
        address = addresses[0]
        netloc = f"[{address}]" if ":" in address else address
        if parts.port:
            netloc += f":{parts.port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        host_header = parts.netloc.rsplit("@", 1)[-1]
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        if self._per_origin is not None:
            return pinned, {"host": host_header}, extensions
        # One client for every origin pools connections by the URL's host, here the
        # address: a kept-alive connection, set up (SNI, certificate) for one name, would
        # otherwise carry the next delivery to any other name at the same address.
        return pinned, {"host": host_header, "connection": "close"}, extensions

    def _client_for(self, url: str) -> httpx.AsyncClient:
        assert self._per_origin is not None
        return self._per_origin.for_url(url)

    async def send(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        deadline_seconds: float,
        allow_private: bool,
    ) -> SendResult:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            async with asyncio.timeout(deadline_seconds):
                target = url
                extra: dict[str, str] = {}
                extensions: dict[str, str] = {}
                if not allow_private:
                    target, extra, extensions = await self._pinned(url)
                client = self._shared or self._client_for(url)
                request = client.build_request(
                    "POST",
                    target,
                    content=body,
                    # identity: the excerpt is of the answer as sent, never compressed
                    headers={**headers, "accept-encoding": "identity", **extra},
                    extensions=extensions,
                    timeout=deadline_seconds,
                )
                response = await client.send(request, stream=True, follow_redirects=False)
                try:
                    excerpt = bytearray()
                    async for chunk in response.aiter_raw():
                        excerpt += chunk
                        if len(excerpt) >= self._excerpt:
                            break
                finally:
                    await response.aclose()
        except Exception as exc:  # noqa: BLE001 - every failure is an attempt outcome
            return SendResult(status_code=None, latency_ms=elapsed(), error_class=_error_class(exc))
        return SendResult(
            status_code=response.status_code,
            latency_ms=elapsed(),
            response_excerpt=_excerpt(bytes(excerpt[: self._excerpt])),
            retry_after=_retry_after(response.headers.get("retry-after")),
        )
