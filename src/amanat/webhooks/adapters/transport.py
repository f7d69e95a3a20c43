"""Sending one webhook attempt over HTTP, safely.

* One deadline covers the whole attempt (DNS, connect, TLS, response); redirects are never
  followed (a 3xx is a failed attempt).
* Only the first bytes of the response are kept.
* Outside the sandbox the host is resolved here, every address is checked against the
  non-public ranges, and the request goes to the checked address (the original host in
  ``Host`` and in TLS SNI and certificate checks). So a name that resolves to a public
  address when the endpoint is saved and to 169.254.169.254 a minute later (DNS
  rebinding) is refused at delivery time.
* Each endpoint URL has its own small keep-alive pool (:class:`EndpointPools`), so a
  connection opened (and its certificate checked) for one name never carries another's.
* Pooled requests go through http1.py, a thin HTTP/1.1 client on httptools' parser: a
  delivery needs a method, a URL, a few headers and a body, and httpcore with httpx's
  models around it cost the worker more than claiming, signing and recording together.
  httpx's client stays for the shared-client mode (tests, a custom trust store).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from amanat.webhooks.adapters.http1 import KEEPALIVE_SECONDS, EndpointPool, Origin, request_head
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
    """The failure's class as attempts record it, from httpx's exceptions (the shared
    client) or httpcore's (the pools)."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException | httpcore.TimeoutException):
        return "timeout"
    if isinstance(exc, BlockedAddress):
        return "blocked_address"
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
        return "dns_error"
    if isinstance(exc, httpx.ConnectError | httpcore.ConnectError):
        return "ssl_error" if "SSL" in str(exc) or "certificate" in str(exc) else "connect_error"
    if isinstance(
        exc,
        httpx.RemoteProtocolError
        | httpx.ReadError
        | httpx.WriteError
        | httpcore.RemoteProtocolError
        | httpcore.ReadError
        | httpcore.WriteError,
    ):
        return "connection_closed"
    if isinstance(exc, httpx.HTTPError | httpcore.ProtocolError | httpcore.NetworkError):
        return "http_error"
    if isinstance(exc, httpcore.UnsupportedProtocol):
        return "http_error"
    return type(exc).__name__[:64]


class EndpointPools:
    """A connection pool per endpoint URL (http1.py), each keeping at most
    ``connections`` (the deliverer's per-endpoint limit) behind a gate that lets no more
    requests in than that.

    Per endpoint, not per origin: endpoints on one host each keep their own few
    connections, and a slow endpoint's requests never wait for another's. The TLS context
    is made once and shared (each pool would load the CA bundle again). The least recently
    used pools beyond ``remember`` are closed after ``grace_seconds``, once attempts still
    using them are over."""

    def __init__(
        self,
        *,
        connections: int,
        remember: int = 512,
        grace_seconds: float = 60.0,
        verify: ssl.SSLContext | str | bool = True,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._tls = (
            verify
            if isinstance(verify, ssl.SSLContext)
            else httpx.create_ssl_context(verify=verify)
        )
        self._remember = remember
        self._grace = grace_seconds
        self._keepalive = keepalive_seconds
        self._pools: OrderedDict[tuple[str, str, int | None, str, str], EndpointPool] = (
            OrderedDict()
        )
        self._retiring: set[asyncio.Task[None]] = set()
        self._connections = connections

    def for_url(self, url: str) -> EndpointPool:
        parts = urlsplit(url)
        key = (parts.scheme, (parts.hostname or "").lower(), parts.port, parts.path, parts.query)
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        pool = self._pools[key] = EndpointPool(
            self._tls, self._connections, keepalive_seconds=self._keepalive
        )
        if len(self._pools) > self._remember:
            _, oldest = self._pools.popitem(last=False)
            task = asyncio.get_running_loop().create_task(self._retire(oldest))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return pool

    async def _retire(self, pool: EndpointPool) -> None:
        await asyncio.sleep(self._grace)
        pool.close()

    async def aclose(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            pool.close()


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL as the request sends it: where to connect, the request target and the Host
    header."""

    scheme: str
    host: str
    port: int
    target: bytes
    host_header: bytes


_DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=4096)
def _request_target(target: str) -> _Target:
    """Parsed by httpx, as its client sends it: a path or query with non-ASCII characters
    or spaces is percent-encoded, an international host name is IDNA-encoded and a
    default port is left out of Host."""
    url = httpx.URL(target)
    scheme = url.scheme
    if scheme not in _DEFAULT_PORTS:
        raise httpcore.UnsupportedProtocol(f"webhooks are sent over http or https, not {scheme!r}")
    host = url.raw_host
    header = b"[" + host + b"]" if b":" in host else host  # an IPv6 literal
    if url.port is not None:
        header += b":" + str(url.port).encode()
    return _Target(
        scheme=scheme,
        host=host.decode("ascii"),
        port=url.port or _DEFAULT_PORTS[scheme],
        target=url.raw_path,
        host_header=header,
    )


class HttpWebhookSender:
    def __init__(
        self,
        client: httpx.AsyncClient | EndpointPools,
        resolver: AddressResolver | None = None,
        *,
        excerpt_bytes: int = 512,
        address_forbidden: Callable[[str], bool] = forbidden_address,
    ) -> None:
        # One client for every endpoint (tests, a custom trust store) or a pool per endpoint.
        self._shared = client if isinstance(client, httpx.AsyncClient) else None
        self._pools = client if isinstance(client, EndpointPools) else None
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
        # As the URL names it, IDNA-encoded and without a default port (no raw non-ASCII).
        host_header = _request_target(url).host_header.decode("ascii")
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        if self._pools is not None:
            return pinned, {"host": host_header}, extensions
        # One client for every origin pools connections by the URL's host, here the
        # address: a kept-alive connection, set up (SNI, certificate) for one name, would
        # otherwise carry the next delivery to any other name at the same address.
        return pinned, {"host": host_header, "connection": "close"}, extensions

    async def _exchange(
        self,
        pool: EndpointPool | None,
        target: str,
        headers: dict[str, str],
        body: bytes,
        extensions: dict[str, str],
        deadline_seconds: float,
    ) -> tuple[int, str | None, bytes]:
        """POST; the status, the Retry-After header and the first bytes of the answer."""
        if pool is None:
            return await self._exchange_shared(target, headers, body, extensions, deadline_seconds)
        parsed = _request_target(target)
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        if "host" not in headers:
            raw.append((b"host", parsed.host_header))
        origin = Origin(
            host=parsed.host,
            port=parsed.port,
            tls=parsed.scheme == "https",
            server_name=extensions.get("sni_hostname", parsed.host),
        )
        answer = await pool.post(
            origin, request_head(parsed.target, raw, len(body)), body, self._excerpt
        )
        return answer.status, answer.retry_after, answer.excerpt

    async def _exchange_shared(
        self,
        target: str,
        headers: dict[str, str],
        body: bytes,
        extensions: dict[str, str],
        deadline_seconds: float,
    ) -> tuple[int, str | None, bytes]:
        assert self._shared is not None
        request = self._shared.build_request(
            "POST",
            target,
            content=body,
            headers=headers,
            extensions=extensions,
            timeout=deadline_seconds,
        )
        response = await self._shared.send(request, stream=True, follow_redirects=False)
        try:
            excerpt = await self._first_bytes(response.aiter_raw())
        finally:
            await response.aclose()
        return response.status_code, response.headers.get("retry-after"), bytes(excerpt)

    async def _first_bytes(self, chunks: AsyncIterator[bytes]) -> bytearray:
        """The answer's first ``excerpt_bytes`` (or a little more); the rest is not read."""
        excerpt = bytearray()
        async for chunk in chunks:
            excerpt += chunk
            if len(excerpt) >= self._excerpt:
                break
        return excerpt

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
                # identity: the excerpt is of the answer as sent, never compressed
                sent = {**headers, "accept-encoding": "identity", **extra}
                if self._pools is None:
                    status, retry_after, excerpt = await self._exchange(
                        None, target, sent, body, extensions, deadline_seconds
                    )
                else:
                    pool = self._pools.for_url(url)
                    async with pool.gate:
                        status, retry_after, excerpt = await self._exchange(
                            pool, target, sent, body, extensions, deadline_seconds
                        )
        except Exception as exc:  # noqa: BLE001 - every failure is an attempt outcome
            return SendResult(status_code=None, latency_ms=elapsed(), error_class=_error_class(exc))
        return SendResult(
            status_code=status,
            latency_ms=elapsed(),
            response_excerpt=_excerpt(bytes(excerpt[: self._excerpt])),
            retry_after=_retry_after(retry_after),
        )
