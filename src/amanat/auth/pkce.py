"""PKCE (RFC 7636), S256 only: the plain method offers no protection and is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from amanat.kernel.errors import InvalidInput

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def check_challenge(challenge: str | None, method: str | None) -> str:
    if method != "S256":
        raise InvalidInput("code_challenge_method must be S256.", code="invalid_request")
    if not challenge or not _CHALLENGE.fullmatch(challenge):
        raise InvalidInput(
            "code_challenge must be the 43-character base64url SHA-256 of the verifier.",
            code="invalid_request",
        )
    return challenge


def verifier_matches(verifier: str | None, challenge: str) -> bool:
    if not verifier or not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)
