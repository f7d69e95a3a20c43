"""Access tokens: ES256 JWTs in the RFC 9068 profile, signed by a key ring kept in the
database so every API process signs and verifies with the same keys.

Each process caches the ring and reloads it every ``refresh_seconds`` or when it meets an
unknown ``kid`` (at most once a second), so a rotation done anywhere is picked up quickly
and a token signed by a brand-new key verifies everywhere.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from amanat.auth.adapters.jose import peek, validate_claims, verify_signature
from amanat.auth.domain import KeyStatus, SigningKey
from amanat.auth.ports import InvalidToken
from amanat.auth.signing_keys import SIGNER_STALENESS, VERIFY_LEEWAY
from amanat.kernel.clock import Clock

VERIFY_LEEWAY_SECONDS = int(VERIFY_LEEWAY.total_seconds())

ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"


class EcKeyMaterial:
    """Makes P-256 signing keys; the private half is encrypted when a passphrase is set."""

    def __init__(self, passphrase: str | None) -> None:
        self._passphrase = passphrase

    def generate(self, now: datetime) -> SigningKey:
        kid = f"{now:%Y%m%d}-{secrets.token_hex(4)}"
        key = ECKey.generate_key(
            "P-256", parameters={"kid": kid, "use": "sig", "alg": ALGORITHM}, private=True
        )
        pem = key.as_pem(private=True, password=self._passphrase).decode("ascii")
        return SigningKey(
            kid=kid,
            alg=ALGORITHM,
            private_pem=pem,
            encrypted=self._passphrase is not None,
            public_jwk=dict(key.as_dict(private=False)),
            status=KeyStatus.ACTIVE,
            created_at=now,
        )


class KeyRing:
    def __init__(
        self,
        load: Callable[[], Awaitable[list[SigningKey]]],
        clock: Clock,
        passphrase: str | None,
        refresh_seconds: float = 30.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._clock = clock
        self._passphrase = passphrase
        self._refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._keys: list[SigningKey] = []
        self._private: dict[str, ECKey] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(
        self, *, force: bool = False, min_age: float = 0.0, max_age: float | None = None
    ) -> None:
        limit = self._refresh_seconds if max_age is None else max_age
        if not force and self._monotonic() - self._loaded_at < limit:
            return  # fresh: every token check asks, and most need not queue on the lock
        async with self._lock:
            age = self._monotonic() - self._loaded_at
            if not force and age < limit:
                return
            if force and age < min_age:
                return
            keys = await self._load()
            for key in keys:
                if key.kid not in self._private and key.status is not KeyStatus.RETIRED:
                    password = self._passphrase if key.encrypted else None
                    self._private[key.kid] = ECKey.import_key(
                        key.private_pem,
                        parameters={"kid": key.kid, "alg": key.alg},
                        password=password,
                    )
            self._keys = keys
            self._loaded_at = self._monotonic()

    async def signer(self) -> ECKey:
        # A demoted key keeps verifying for the token lifetime plus SIGNER_STALENESS plus
        # the verifier's leeway; that only holds if no process signs with a ring older
        # than SIGNER_STALENESS, whatever refresh_seconds is configured to.
        await self.refresh(max_age=min(self._refresh_seconds, SIGNER_STALENESS.total_seconds()))
        active = [k for k in self._keys if k.status is KeyStatus.ACTIVE]
        if not active:
            await self.refresh(force=True)
            active = [k for k in self._keys if k.status is KeyStatus.ACTIVE]
            if not active:
                raise RuntimeError("no active signing key: run `amanat keys rotate`")
        return self._private[active[-1].kid]

    async def verifier(self, kid: str) -> ECKey | None:
        await self.refresh()
        key = self._find(kid)
        if key is None:
            await self.refresh(force=True, min_age=1.0)
            key = self._find(kid)
        return key

    def _find(self, kid: str) -> ECKey | None:
        now = self._clock.now()
        for key in self._keys:
            if key.kid == kid and key.verifies_at(now):
                return self._private.get(kid)
        return None

    async def public_jwks(self) -> dict[str, Any]:
        await self.refresh()
        now = self._clock.now()
        return {"keys": [dict(k.public_jwk) for k in self._keys if k.verifies_at(now)]}


class ExternalVerifier(Protocol):
    """Verifies tokens from another issuer (see external_issuer.py)."""

    issuer: str

    async def verify(self, token: str) -> dict[str, Any]: ...


VERIFIED_CACHE_SIZE = 4096
"""Tokens whose signature check each process remembers (about 1 KiB each)."""


class JwtAccessTokenCodec:
    def __init__(
        self,
        ring: KeyRing,
        *,
        issuer: str,
        audience: str,
        clock: Clock,
        external: ExternalVerifier | None = None,
    ) -> None:
        self._ring = ring
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._external = external
        # token -> (the key its signature verified with, its claims, whether every claim
        # held too: then later uses check only the key and the expiry)
        self._verified: dict[str, tuple[ECKey, dict[str, Any], bool]] = {}

    async def sign(self, claims: dict[str, Any]) -> str:
        key = await self._ring.signer()
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": TOKEN_TYPE}
        return jwt.encode(header, claims, key)

    async def verify(self, token: str) -> dict[str, Any]:
        cached = self._verified.get(token)
        if cached is not None and cached[2]:
            # A token accepted before (only ours, and only once every claim held): its
            # issuer, audience, "not before" and "issued at" held then and cannot stop
            # holding as time moves on; its key must still be the ring's, and it must not
            # have expired (the same comparison as joserfc's).
            remembered_key, remembered, _ = cached
            expires = remembered.get("exp")
            remembered_kid = remembered_key.kid
            if (
                isinstance(expires, int)
                and isinstance(remembered_kid, str)
                and await self._ring.verifier(remembered_kid) is remembered_key
                and int(self._clock.now().timestamp()) < expires + VERIFY_LEEWAY_SECONDS
            ):
                return dict(remembered)
        header, unverified = peek(token)
        if self._external is not None and unverified.get("iss") == self._external.issuer:
            return await self._external.verify(token)
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unsupported_alg")
        if header.get("typ") != TOKEN_TYPE:
            raise InvalidToken("wrong_typ")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("missing_kid")
        key = await self._ring.verifier(kid)
        if key is None:
            raise InvalidToken("unknown_kid")
        claims = self._signature_checked(token, key)
        validate_claims(
            claims,
            now=int(self._clock.now().timestamp()),
            leeway=VERIFY_LEEWAY_SECONDS,
            iss=self._issuer,
            aud=self._audience,
            jti=None,
            client_id=None,
        )
        remembered_signature = self._verified.get(token)
        if remembered_signature is not None and remembered_signature[0] is key:
            self._verified[token] = (key, remembered_signature[1], True)
        return claims

    def _signature_checked(self, token: str, key: ECKey) -> dict[str, Any]:
        """The token's claims once its signature verifies with ``key``.

        A partner presents the same token for up to its whole lifetime, and the ES256 check
        is the costliest step of every authenticated request (~0.2 ms), so its result is
        remembered for the exact token string and the exact key object. The ring lookup
        above still runs on every request (a retired key stops a cached token at once).
        Once the claims (issuer, audience, times) have held too, :meth:`verify` remembers
        the token as accepted and from then on checks only its key and its expiry, the
        claims that can change their answer as time passes.
        """
        cached = self._verified.get(token)
        if cached is not None and cached[0] is key:
            return dict(cached[1])
        claims = verify_signature(token, key, [ALGORITHM])
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            # Oldest first: dicts keep insertion order, and a token in use is re-added soon.
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (key, dict(claims), False)
        return claims

    async def jwks(self) -> dict[str, Any]:
        return await self._ring.public_jwks()


def keyset_from_jwks(jwks: dict[str, Any]) -> KeySet:
    try:
        return KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise InvalidToken(f"bad_jwks:{type(exc).__name__}") from None
