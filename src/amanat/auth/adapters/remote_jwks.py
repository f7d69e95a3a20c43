"""Fetching and caching a remote JWKS (an external issuer's, or a client's jwks_uri).

Cached for ``ttl`` seconds; an unknown ``kid`` triggers one early refetch at most every
``min_refetch`` seconds, so a key rotation at the other side is followed without letting
garbage tokens make us hammer their endpoint. Failed fetches count against the same
budget, and while the other side is down the last good keys stay in use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from joserfc.jwk import KeySet

from amanat.auth.adapters.tokens import keyset_from_jwks
from amanat.auth.ports import InvalidToken


class RemoteJwks:
    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        ttl: float = 300.0,
        min_refetch: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._http = http
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._monotonic = monotonic
        self._keyset: KeySet | None = None
        self._kids: set[str] = set()
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _fetch(self) -> None:
        try:
            response = await self._http.get(self.url, timeout=5.0, follow_redirects=False)
            response.raise_for_status()
            document: Any = response.json()
        except (httpx.HTTPError, ValueError):
            raise InvalidToken("jwks_unavailable") from None
        if not isinstance(document, dict):
            raise InvalidToken("bad_jwks")
        keyset = keyset_from_jwks(document)
        self._keyset = keyset
        self._kids = {str(k.get("kid")) for k in document.get("keys", []) if isinstance(k, dict)}
        self._fetched_at = self._monotonic()

    async def keyset(self, kid: str | None) -> KeySet:
        async with self._lock:
            now = self._monotonic()
            age = now - self._fetched_at
            stale = self._keyset is None or age > self._ttl
            unknown = kid is not None and kid not in self._kids and age > self._min_refetch
            # At most one attempt per min_refetch, successful or not: an unreachable or
            # broken JWKS endpoint is not called on every request.
            if (stale or unknown) and now - self._attempted_at >= self._min_refetch:
                self._attempted_at = now
                try:
                    await self._fetch()
                except InvalidToken:
                    if self._keyset is None:
                        raise
                    # Keep the last good keys through an outage of the other side.
            if self._keyset is None:
                raise InvalidToken("jwks_unavailable")
            return self._keyset
