"""private_key_jwt (RFC 7523): verify a client's signed assertion with its registered keys.

Registered keys come inline (``jwks``) or from the client's ``jwks_uri``, fetched and
cached per client. Only the FAPI algorithms are accepted.
"""

from __future__ import annotations

from typing import Any

import httpx

from amanat.auth.adapters.jose import peek, verify_signature
from amanat.auth.adapters.remote_jwks import RemoteJwks
from amanat.auth.adapters.tokens import keyset_from_jwks
from amanat.auth.ports import InvalidToken
from amanat.identity.domain import OAuthClient

ASSERTION_ALGORITHMS = ["ES256", "PS256"]


class JwksClientAssertionVerifier:
    def subject(self, assertion: str) -> str | None:
        try:
            _header, claims = peek(assertion)
        except InvalidToken:
            return None
        sub = claims.get("sub")
        return sub if isinstance(sub, str) else None

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._remote: dict[str, RemoteJwks] = {}

    async def verify(self, assertion: str, client: OAuthClient) -> dict[str, Any]:
        header, _ = peek(assertion)
        alg = header.get("alg")
        if alg not in ASSERTION_ALGORITHMS:
            raise InvalidToken("unsupported_alg")
        kid = header.get("kid")
        if client.jwks is not None:
            keyset = keyset_from_jwks(dict(client.jwks))
        elif client.jwks_uri:
            remote = self._remote.get(client.id)
            if remote is None or remote.url != client.jwks_uri:
                remote = self._remote[client.id] = RemoteJwks(client.jwks_uri, self._http)
            keyset = await remote.keyset(kid if isinstance(kid, str) else None)
        else:
            raise InvalidToken("no_registered_keys")
        return verify_signature(assertion, keyset, [str(alg)])
