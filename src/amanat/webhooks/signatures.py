"""Standard Webhooks signatures, made and checked with the ``standardwebhooks`` package.

Signing uses the package as it is. Checking adds one thing the package's own verifier
lacks: a clock and a tolerance passed in (its verifier reads the wall clock and fixes
five minutes), because receivers whose clocks drift need a wider window, and tests travel
in time. The comparison of signatures is the package's HMAC and ``hmac.compare_digest``.
"""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook


class SignatureError(ValueError):
    pass


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    return Webhook(secret).sign(webhook_id, datetime.fromtimestamp(timestamp, UTC), body.decode())


def signature_header(secrets: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """One signature per live secret, space-separated (the spec's form for rotation)."""
    return " ".join(sign(secret, webhook_id, timestamp, body) for secret in secrets)


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> None:
    """Check a delivery as a receiver should; raises :class:`SignatureError`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    webhook_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    offered = lowered.get("webhook-signature")
    if not webhook_id or not stamp or not offered:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer") from None
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        raise SignatureError("webhook-timestamp is outside the tolerance")
    try:
        expected = base64.b64decode(sign(secret, webhook_id, timestamp, body).split(",", 1)[1])
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("the secret or the body is malformed") from None
    for candidate in offered.split(" "):
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            offered_bytes = base64.b64decode(value, validate=True)
        except ValueError:
            continue
        if hmac.compare_digest(offered_bytes, expected):
            return
    raise SignatureError("no signature matches")
