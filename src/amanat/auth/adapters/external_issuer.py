"""Verifying access tokens from an external authorization server (a bank's Keycloak, say).

The issuer's JWKS comes from ``jwks_url`` or, when unset, from its RFC 8414 / OpenID
discovery document. The same scope rules apply to these tokens as to ours: the services
layer intersects their scopes with what the client's partner roles allow.
"""

from __future__ import annotations

from typing import Any

import httpx

from amanat.auth.adapters.jose import peek, validate_claims, verify_signature
from amanat.auth.adapters.remote_jwks import RemoteJwks
from amanat.auth.ports import InvalidToken
from amanat.kernel.clock import Clock

ALLOWED_ALGORITHMS = ["ES256", "PS256", "RS256"]


class ExternalIssuer:
    def __init__(
        self,
        issuer: str,
        *,
        audience: str,
        http: httpx.AsyncClient,
        clock: Clock,
        jwks_url: str | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self._audience = audience
        self._http = http
        self._clock = clock
        self._jwks: RemoteJwks | None = RemoteJwks(jwks_url, http) if jwks_url else None

    async def _discover(self) -> RemoteJwks:
        if self._jwks is not None:
            return self._jwks
        for path in (
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ):
            try:
                response = await self._http.get(self.issuer + path, timeout=5.0)
                if response.status_code != 200:
                    continue
                metadata: Any = response.json()
            except (httpx.HTTPError, ValueError):
                continue
            # RFC 8414 §3.3: the document must name exactly the issuer we were told to trust.
            if (
                isinstance(metadata, dict)
                and isinstance(metadata.get("issuer"), str)
                and metadata["issuer"].rstrip("/") == self.issuer
                and isinstance(metadata.get("jwks_uri"), str)
            ):
                self._jwks = RemoteJwks(metadata["jwks_uri"], self._http)
                return self._jwks
        raise InvalidToken("issuer_discovery_failed")

    async def verify(self, token: str) -> dict[str, Any]:
        header, _ = peek(token)
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken("unsupported_alg")
        jwks = await self._discover()
        kid = header.get("kid")
        keyset = await jwks.keyset(kid if isinstance(kid, str) else None)
        claims = verify_signature(token, keyset, [str(alg)])
        validate_claims(
            claims,
            now=int(self._clock.now().timestamp()),
            iss=claims.get("iss"),
            aud=self._audience,
        )
        if str(claims.get("iss", "")).rstrip("/") != self.issuer:
            raise InvalidToken("claims:invalid_iss")
        if not claims.get("jti"):
            # Without a jti a token cannot be revoked individually; refuse rather than guess.
            raise InvalidToken("claims:missing_jti")
        return claims
