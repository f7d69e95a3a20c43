"""Webhook rules: endpoints, deliveries, the retry schedule, what a receiver's answer
means, and which addresses may never be called.

Signatures follow Standard Webhooks (https://www.standardwebhooks.com) and are made with
that project's own ``standardwebhooks`` package (webhooks/service.py).
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_URL_LENGTH = 2048

# The Standard Webhooks spec's example schedule; the delay before attempt n+1.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE)
MAX_RETRY_AFTER = timedelta(hours=24)

# Hostnames that name the machine itself or a cloud metadata service.
_FORBIDDEN_HOSTS = frozenset(
    {"localhost", "localhost.localdomain", "metadata", "metadata.google.internal"}
)


# -- endpoints --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    partner_id: str
    url: str
    description: str | None
    enabled_events: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    secret: str  # sealed (encrypted at rest)
    previous_secret: str | None  # sealed; signs too until previous_secret_expires_at
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    def subscribes_to(self, event_type: str) -> bool:
        """Whether its ``enabled_events`` cover the type, enabled or not (a disabled
        endpoint still has events held for it)."""
        return "*" in self.enabled_events or event_type in self.enabled_events

    def wants(self, event_type: str) -> bool:
        return self.enabled and self.subscribes_to(event_type)

    def signs_with_previous(self, now: datetime) -> bool:
        return (
            self.previous_secret is not None
            and self.previous_secret_expires_at is not None
            and now < self.previous_secret_expires_at
        )


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the schedule ran out


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event to one endpoint; its ``event_id`` is the stable ``webhook-id``."""

    id: str
    event_id: str
    endpoint_id: str
    partner_id: str
    event_type: str
    trigger: str  # event | held (queued while the endpoint was disabled) | redeliver | replay
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    event_created_at: datetime
    first_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: str
    attempt: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    error_class: str | None
    response_excerpt: str | None


# -- secrets ----------------------------------------------------------------------------


def format_secret(key: bytes) -> str:
    """``whsec_`` + base64 of the HMAC key: the form Standard Webhooks libraries read."""
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


# -- what an attempt's result means ------------------------------------------------------


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"  # 410: the receiver says the endpoint no longer exists


def verdict(status_code: int | None) -> Verdict:
    if status_code is not None and 200 <= status_code < 300:
        return Verdict.DELIVERED
    if status_code == 410:
        return Verdict.GONE
    return Verdict.RETRY  # network errors, timeouts, 3xx (never followed), 4xx, 5xx


def honours_retry_after(status_code: int | None) -> bool:
    return status_code in (429, 502, 503, 504)


def next_attempt_delay(
    attempts_made: int,
    *,
    jitter: float,
    retry_after: timedelta | None = None,
) -> timedelta | None:
    """The wait before the next attempt after ``attempts_made`` attempts; None: give up.

    ``jitter`` is a factor near 1 (the caller draws it) so that many deliveries failing
    together do not all come back at the same second."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    delay = RETRY_SCHEDULE[attempts_made] * jitter
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def should_disable(failing_since: datetime | None, now: datetime, disable_after: timedelta) -> bool:
    """A streak of failures that has lasted ``disable_after`` disables the endpoint."""
    return failing_since is not None and now - failing_since >= disable_after


# -- where we may send ------------------------------------------------------------------


class UrlRefused(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# IPv6 ranges that carry an IPv4 address a translator or tunnel may deliver to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the low 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local use, never global
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def forbidden_address(address: str) -> bool:
    """Loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved: any
    address that is not globally routable is refused in production. An IPv6 address that
    embeds an IPv4 one (mapped, 6to4, Teredo, NAT64) is judged by that IPv4 address too,
    since a translator on the way would deliver to it."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return True
        embedded = _embedded_ipv4(ip)
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(not v4.is_global or v4.is_multicast for v4 in embedded):
            return True
    return not ip.is_global or ip.is_multicast


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").rstrip(".").lower()


def check_url(url: str, *, production: bool) -> None:
    """Static rules, checked when an endpoint is saved (delivery checks the resolved
    addresses again, see webhooks/adapters/transport.py)."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused("too_long", f"The URL is longer than {MAX_URL_LENGTH} characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("not_http", "The URL must be an absolute http(s) URL.")
    if parts.username or parts.password:
        raise UrlRefused("credentials", "The URL must not carry a user name or password.")
    try:
        _ = parts.port
    except ValueError:
        raise UrlRefused("bad_port", "The URL's port is not a number from 0 to 65535.") from None
    if not production:
        return
    if parts.scheme != "https":
        raise UrlRefused("https_required", "Production endpoints must use https.")
    host = parts.hostname.rstrip(".").lower()
    if host in _FORBIDDEN_HOSTS or host.endswith((".localhost", ".internal", ".local")):
        raise UrlRefused("private_address", f"'{host}' names a local or internal host.")
    try:
        literal = forbidden_address(host)
    except ValueError:
        return  # a hostname: its addresses are checked at save and at every delivery
    if literal:
        raise UrlRefused("private_address", "The URL points at a non-public address.")
