"""Callback signatures shared by the rail (which signs) and amanat (which verifies).

The rail sends ``Rail-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is the
HMAC-SHA256, keyed with the shared secret, of ``"<t>.<raw body>"``. Verifying means: the
header parses, one ``v1`` matches (several are allowed, so the rail can sign with an old
and a new secret while they rotate), and ``t`` is within the tolerance of now, so a
captured callback cannot be replayed later.

This module is the one place the scheme is written down: the sandbox rail imports it
rather than carrying a copy.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "InvalidCallback",
    "InvalidCallbackSignature",
    "compute_signature",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "Rail-Signature"
DEFAULT_TOLERANCE_SECONDS = 300.0
_SCHEME = "v1"


class InvalidCallback(ValueError):
    """A callback that must not be acted on. ``reason`` is stable snake_case."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidCallbackSignature(InvalidCallback):
    """Missing, malformed, wrong (tampered body or other secret) or stale signature.

    ``reason``: ``missing``, ``malformed``, ``mismatch`` or ``stale``.
    """


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise ValueError("the callback signing secret is empty")
    return key


def compute_signature(secret: str | bytes, body: bytes, t: int) -> str:
    """The hex HMAC-SHA256 of ``"<t>.<body>"``."""
    message = str(int(t)).encode("ascii") + b"." + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, t: int) -> str:
    """The ``Rail-Signature`` header value for ``body`` sent at unix time ``t``."""
    return f"t={int(t)},{_SCHEME}={compute_signature(secret, body, t)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not value.isascii() or not value.isdigit() or timestamp is not None:
                raise InvalidCallbackSignature(
                    "The signature timestamp is malformed.", reason="malformed"
                )
            timestamp = int(value)
        elif key == _SCHEME:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidCallbackSignature(
            f"The signature header needs t= and {_SCHEME}=.", reason="malformed"
        )
    return timestamp, signatures


def verify(
    secret: str | bytes,
    header: str | None,
    body: bytes,
    now: datetime | float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Check a ``Rail-Signature`` header against the raw body; return its timestamp.

    ``now`` is a datetime or unix seconds. Raises :class:`InvalidCallbackSignature`.
    """
    if not header:
        raise InvalidCallbackSignature(f"No {SIGNATURE_HEADER} header.", reason="missing")
    timestamp, candidates = _parse(header)
    expected = compute_signature(secret, body, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidCallbackSignature(
            "The signature does not match the body (tampered, or signed with another secret).",
            reason="mismatch",
        )
    now_seconds = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(now_seconds - timestamp) > tolerance:
        raise InvalidCallbackSignature(
            f"The signature timestamp is more than {tolerance:g} s from now.", reason="stale"
        )
    return timestamp
