"""Composition root: builds the adapters from settings and wires them into services.

Everything with a lifetime (engine, key ring, HTTP client, rate-limit storage) is created
here once per process and handed to the edges in a :class:`Container`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import httpx

from amanat.adapters.crypto.client_assertions import JwksClientAssertionVerifier
from amanat.adapters.crypto.external_issuer import ExternalIssuer
from amanat.adapters.crypto.passwords import Argon2Hasher
from amanat.adapters.crypto.tokens import EcKeyMaterial, JwtAccessTokenCodec, KeyRing
from amanat.adapters.db.engine import create_engine
from amanat.adapters.db.transactions import SqlTransactions
from amanat.adapters.db.uow import Database
from amanat.adapters.ratelimit import RateLimiter
from amanat.domain.clock import Clock, SystemClock
from amanat.services.oauth import OAuthConfig, OAuthService
from amanat.services.operators import OperatorService
from amanat.services.partners import PartnerService
from amanat.services.signing_keys import SigningKey, SigningKeyService
from amanat.settings import Settings


@dataclass
class Container:
    settings: Settings
    db: Database
    clock: Clock
    transactions: SqlTransactions
    http: httpx.AsyncClient
    key_ring: KeyRing
    oauth: OAuthService
    partners: PartnerService
    operators: OperatorService
    signing_keys: SigningKeyService
    rate_limiter: RateLimiter

    async def close(self) -> None:
        await self.http.aclose()
        await self.rate_limiter.close()
        await self.db.dispose()


def build_container(
    settings: Settings, *, clock: Clock | None = None, http: httpx.AsyncClient | None = None
) -> Container:
    clock = clock or SystemClock()
    db = Database(create_engine(settings.database))
    transactions = SqlTransactions(db)
    http = http or httpx.AsyncClient(follow_redirects=False, timeout=10.0)
    hasher = Argon2Hasher()
    passphrase = (
        settings.auth.signing_key_passphrase.get_secret_value()
        if settings.auth.signing_key_passphrase
        else None
    )
    ttl = timedelta(seconds=settings.auth.access_token_ttl_seconds)

    async def load_keys() -> list[SigningKey]:
        async with transactions.read() as tx:
            return await tx.signing_keys.list_keys()

    key_ring = KeyRing(
        load_keys, clock, passphrase, refresh_seconds=settings.auth.key_refresh_seconds
    )
    issuer = settings.auth.issuer.rstrip("/")
    audience = settings.auth.effective_audience
    external = None
    if settings.auth.external_issuer:
        external = ExternalIssuer(
            settings.auth.external_issuer,
            http=http,
            clock=clock,
            audience=settings.auth.external_audience or audience,
            jwks_url=settings.auth.external_jwks_url,
        )
    codec = JwtAccessTokenCodec(
        key_ring, issuer=issuer, audience=audience, clock=clock, external=external
    )
    oauth = OAuthService(
        transactions,
        clock,
        hasher,
        codec,
        JwksClientAssertionVerifier(http),
        OAuthConfig(
            issuer=issuer,
            audience=audience,
            token_endpoint=f"{issuer}/oauth/token",
            access_token_ttl=ttl,
            refresh_token_ttl=timedelta(days=settings.auth.refresh_token_ttl_days),
            mode=settings.env.value,
        ),
    )
    return Container(
        settings=settings,
        db=db,
        clock=clock,
        transactions=transactions,
        http=http,
        key_ring=key_ring,
        oauth=oauth,
        partners=PartnerService(transactions, clock, hasher),
        operators=OperatorService(transactions, clock, hasher),
        signing_keys=SigningKeyService(transactions, clock, EcKeyMaterial(passphrase), ttl),
        rate_limiter=RateLimiter(settings.redis_url),
    )
