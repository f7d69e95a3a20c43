"""Small helpers around joserfc shared by our own tokens, client assertions and an
external issuer: read the unverified header and claims safely, verify, map failures."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from amanat.auth.ports import InvalidToken

MAX_TOKEN_BYTES = 8192


def _segment(segment: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed") from None
    if not isinstance(value, dict):
        raise InvalidToken("malformed")
    return value


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims, NOT verified: only for choosing how to verify."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("too_large")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise InvalidToken("malformed")
    return _segment(parts[0]), _segment(parts[1])


def verify_signature(
    token: str, key: ECKey | RSAKey | KeySet, algorithms: list[str]
) -> dict[str, Any]:
    try:
        decoded = jwt.decode(token, key, algorithms=algorithms)
    except (JoseError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        # joserfc trusts the header's shape in places (``"crit": null`` is a TypeError):
        # whatever a forged header makes it trip over is a bad token, never a 500.
        raise InvalidToken(f"bad_signature:{type(exc).__name__}") from None
    return dict(decoded.claims)


def validate_claims(claims: dict[str, Any], *, now: int, leeway: int = 30, **expected: Any) -> None:
    options: dict[str, Any] = {"exp": {"essential": True}}
    for name, value in expected.items():
        options[name] = (
            {"essential": True, "value": value} if value is not None else {"essential": True}
        )
    registry = jwt.JWTClaimsRegistry(now=now, leeway=leeway, **options)
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise InvalidToken(f"claims:{getattr(exc, 'error', type(exc).__name__)}") from None
