"""Detached JWS message signatures (``x-jws-signature``) as OBIE v3.1.11 profiles them:
the TPP signs each payment-initiation request body with a key it registered (its
client's ``jwks`` or ``jwks_uri``); the bank signs each answer with its own signing key,
published at ``/.well-known/jwks.json``.

joserfc does the cryptography and the detached-payload handling; what is written here is
OBIE's profile of the protected header: ``typ`` JOSE, ``cty`` application/json, and the
critical claims ``http://openbanking.org.uk/iat`` (not in the future, at most a day old),
``…/iss`` (the TPP's client id at this bank) and ``…/tan`` (the trust anchor). Accepted
algorithms: PS256 (OBIE's) and ES256 (FAPI's); the bank signs with its own key's ES256.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Any

import httpx
import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

from amanat.auth.adapters.remote_jwks import RemoteJwks
from amanat.auth.adapters.tokens import KeyRing, keyset_from_jwks
from amanat.auth.ports import InvalidToken
from amanat.identity.domain import OAuthClient
from amanat.kernel.clock import Clock
from amanat.openbanking.errors import SignatureRefused

OB_IAT = "http://openbanking.org.uk/iat"
OB_ISS = "http://openbanking.org.uk/iss"
OB_TAN = "http://openbanking.org.uk/tan"
CRITICAL = [OB_IAT, OB_ISS, OB_TAN]
ALGORITHMS = ["PS256", "ES256"]
TRUST_ANCHOR = "openbanking.org.uk"
MAX_AGE = timedelta(hours=24)  # a retried request keeps its first signature
MAX_SKEW = timedelta(minutes=5)
MAX_SIGNATURE_BYTES = 8192

_REGISTRY = JWSRegistry(
    header_registry={
        OB_IAT: HeaderParameter("OBIE signing time", "int", True),
        OB_ISS: HeaderParameter("OBIE signer", "str", True),
        OB_TAN: HeaderParameter("OBIE trust anchor", "str", True),
    },
    algorithms=ALGORITHMS,
)


def _refuse(code: str, message: str) -> SignatureRefused:
    return SignatureRefused(message, path="x-jws-signature", obie_code=f"UK.OBIE.Signature.{code}")


def _header(segment: str) -> dict[str, Any]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise _refuse("Malformed", "The JWS protected header is not base64url JSON.") from None
    if not isinstance(value, dict):
        raise _refuse("Malformed", "The JWS protected header is not a JSON object.")
    return value


class MessageSignatures:
    """Verifies TPPs' request signatures and signs the bank's answers."""

    def __init__(self, ring: KeyRing, http: httpx.AsyncClient, clock: Clock, issuer: str) -> None:
        self._ring = ring
        self._http = http
        self._clock = clock
        self._issuer = issuer
        self._remote: dict[str, RemoteJwks] = {}

    async def _keys_of(self, client: OAuthClient, kid: str) -> KeySet:
        try:
            if client.jwks is not None:
                return keyset_from_jwks(dict(client.jwks))
            if client.jwks_uri:
                remote = self._remote.get(client.id)
                if remote is None or remote.url != client.jwks_uri:
                    remote = self._remote[client.id] = RemoteJwks(client.jwks_uri, self._http)
                return await remote.keyset(kid)
        except InvalidToken as exc:
            raise _refuse(
                "Invalid", f"The client's registered keys cannot be used ({exc})."
            ) from None
        raise _refuse(
            "Invalid",
            "This client has registered no signing keys (jwks or jwks_uri); payment requests "
            "must be signed.",
        )

    async def verify(self, client: OAuthClient, signature: str | None, body: bytes) -> None:
        if not signature:
            raise _refuse("Missing", "Payment requests need an x-jws-signature header.")
        if len(signature) > MAX_SIGNATURE_BYTES:
            raise _refuse("Malformed", "x-jws-signature is too long.")
        parts = signature.split(".")
        if len(parts) != 3 or parts[1] != "" or not parts[0] or not parts[2]:
            raise _refuse("Malformed", "x-jws-signature is a detached JWS: header..signature.")
        header = _header(parts[0])
        if header.get("alg") not in ALGORITHMS:
            raise _refuse("Invalid", f"alg must be one of {', '.join(ALGORITHMS)}.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _refuse("MissingClaim", "The JWS header needs the signing key's kid.")
        crit = header.get("crit")
        if not isinstance(crit, list) or sorted(map(str, crit)) != sorted(CRITICAL):
            raise _refuse("InvalidClaim", f"crit must name exactly {CRITICAL}.")
        if header.get("typ", "JOSE") != "JOSE" or header.get("cty", "application/json") not in (
            "application/json",
            "json",
        ):
            raise _refuse("InvalidClaim", "typ must be JOSE and cty application/json.")
        missing = [name for name in CRITICAL if name not in header]
        if missing:
            raise _refuse("MissingClaim", f"The JWS header needs {', '.join(missing)}.")
        iat = header[OB_IAT]
        now = self._clock.now().timestamp()
        if (
            not isinstance(iat, int)
            or isinstance(iat, bool)
            or iat > now + MAX_SKEW.total_seconds()
            or iat < now - MAX_AGE.total_seconds()
        ):
            raise _refuse("InvalidClaim", f"{OB_IAT} must be a recent NumericDate.")
        if header[OB_ISS] != client.id:
            raise _refuse("InvalidClaim", f"{OB_ISS} must be your client id at this bank.")
        if header[OB_TAN] != TRUST_ANCHOR:
            raise _refuse("InvalidClaim", f"{OB_TAN} must be {TRUST_ANCHOR}.")
        keys = await self._keys_of(client, kid)
        try:
            jws.deserialize_compact(
                signature, keys, algorithms=ALGORITHMS, registry=_REGISTRY, payload=body
            )
        except (JoseError, ValueError, TypeError, KeyError, AttributeError, IndexError):
            raise _refuse("Invalid", "The signature does not match the body.") from None

    async def sign(self, body: bytes) -> str:
        key = await self._ring.signer()
        header = {
            "alg": "ES256",
            "kid": key.kid,
            "typ": "JOSE",
            "cty": "application/json",
            OB_IAT: int(self._clock.now().timestamp()),
            OB_ISS: self._issuer,
            OB_TAN: TRUST_ANCHOR,
            "crit": CRITICAL,
        }
        compact = jws.serialize_compact(header, body, key, registry=_REGISTRY)
        protected, _payload, signature = compact.split(".")
        return f"{protected}..{signature}"
