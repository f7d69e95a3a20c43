"""Standard Webhooks signatures, made and checked with the ``standardwebhooks`` package.

Signing uses the package as it is, or :class:`Signer`, which makes the same signature
without the package's per-call work (decoding the secret from base64, re-encoding the body
from text); a test checks the two agree byte for byte. Checking adds one thing the
package's own verifier lacks: a clock and a tolerance passed in (its verifier reads the
wall clock and fixes five minutes), because receivers whose clocks drift need a wider
window, and tests travel in time. The comparison of signatures is the package's HMAC and
``hmac.compare_digest``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import OrderedDict
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


class Signer:
    """Standard Webhooks signatures for the deliverer: each secret's HMAC key is decoded
    once (bounded cache, in memory only), and the body is signed as the bytes it is."""

    _PREFIX = "whsec_"

    def __init__(self, remember: int = 4096) -> None:
        self._keys: OrderedDict[str, bytes] = OrderedDict()
        self._remember = remember

    def _key(self, secret: str) -> bytes:
        key = self._keys.get(secret)
        if key is None:
            encoded = secret.removeprefix(self._PREFIX)
            # As the package does: padding added in case the secret is unpadded base64.
            key = self._keys[secret] = base64.b64decode(encoded + "==")
            if len(self._keys) > self._remember:
                self._keys.popitem(last=False)
        return key

    def header(self, secrets: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
        """:func:`signature_header`, the same bytes."""
        signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
        return " ".join(
            "v1," + base64.b64encode(hmac.digest(self._key(s), signed, hashlib.sha256)).decode()
            for s in secrets
        )


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
