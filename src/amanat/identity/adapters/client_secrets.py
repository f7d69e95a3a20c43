"""Hashing of OAuth client secrets: SHA-256, because amanat generates every secret.

A client secret is ``cs_`` plus 32 random bytes (``services.partners.new_client_secret``);
partners cannot choose one. With 256 bits of entropy there is nothing for a slow hash to
protect: a leaked digest cannot be searched, whatever the hash costs. Password hashes
(argon2) exist for secrets people choose, and operator passwords keep theirs.

argon2 here cost about 40 ms of CPU and 19 MiB per token request. It capped
``POST /oauth/token`` at 40-60/s on two cores and was the largest part of the API
process's memory peak.

Digests written before this change are argon2 (``$argon2id$...``). They still verify, with
argon2, and the OAuth service stores the SHA-256 digest in their place at the client's
first successful authentication (``needs_rehash``).
"""

from __future__ import annotations

import hashlib
import hmac

from amanat.identity.adapters.passwords import Argon2Hasher

_SCHEME = "sha256$"
_LEGACY_PREFIX = "$argon2"


def _digest(secret: str) -> str:
    return _SCHEME + hashlib.sha256(secret.encode()).hexdigest()


class ClientSecretHasher:
    def __init__(self, legacy: Argon2Hasher | None = None) -> None:
        self._legacy = legacy or Argon2Hasher()

    async def hash(self, secret: str) -> str:
        return _digest(secret)

    def needs_rehash(self, hashed: str) -> bool:
        return not hashed.startswith(_SCHEME)

    async def verify(self, hashed: str, secret: str) -> bool:
        if hashed.startswith(_LEGACY_PREFIX):
            return await self._legacy.verify(hashed, secret)
        if not hashed.startswith(_SCHEME):
            return False
        return hmac.compare_digest(hashed.encode(), _digest(secret).encode())
