"""Auth's part of the app: the authorization server, its keys, and their jobs."""

from __future__ import annotations

from datetime import timedelta

from amanat.auth import problems, tables
from amanat.auth.access_cache import AccessCache
from amanat.auth.adapters.client_assertions import JwksClientAssertionVerifier
from amanat.auth.adapters.external_issuer import ExternalIssuer
from amanat.auth.adapters.tokens import EcKeyMaterial, JwtAccessTokenCodec, KeyRing
from amanat.auth.domain import SigningKey
from amanat.auth.keys_store import SqlSigningKeyRepository
from amanat.auth.ports import SigningKeyRing
from amanat.auth.routes import authorize, operator_keys, token
from amanat.auth.service import OAuthConfig, OAuthService
from amanat.auth.signing_keys import SigningKeyService
from amanat.auth.store import OAuthArtifactRows, SqlTokenRepository, stored_jti
from amanat.identity.adapters.client_secrets import ClientSecretHasher
from amanat.platform.audit.domain import SYSTEM, Actor
from amanat.platform.invalidation.ports import ChangeFeed, NoChangeFeed
from amanat.platform.registry import PeriodicJob, Registry, Services

WORKER = Actor(type="system", id="worker")


def _passphrase(s: Services) -> str | None:
    phrase = s.settings.auth.signing_key_passphrase
    return phrase.get_secret_value() if phrase else None


def _key_ring(s: Services) -> KeyRing:
    transactions = s.transactions

    async def load_keys() -> list[SigningKey]:
        async with transactions.read() as tx:
            keys: list[SigningKey] = await tx.signing_keys.list_keys()
            return keys

    return KeyRing(
        load_keys, s.clock, _passphrase(s), refresh_seconds=s.settings.auth.key_refresh_seconds
    )


def _access_cache(s: Services) -> AccessCache | None:
    """Only where a change feed can keep it exact (PostgreSQL); SQLite reads per request."""
    feed = s.get(ChangeFeed)
    return None if isinstance(feed, NoChangeFeed) else AccessCache(feed, s.clock)


def _oauth(s: Services) -> OAuthService:
    auth = s.settings.auth
    issuer = auth.issuer.rstrip("/")
    audience = auth.effective_audience
    external = None
    if auth.external_issuer:
        external = ExternalIssuer(
            auth.external_issuer,
            http=s.http,
            clock=s.clock,
            audience=auth.external_audience or audience,
            jwks_url=auth.external_jwks_url,
        )
    codec = JwtAccessTokenCodec(
        s.get(KeyRing), issuer=issuer, audience=audience, clock=s.clock, external=external
    )
    return OAuthService(
        s.transactions,
        s.clock,
        s.get(ClientSecretHasher),
        codec,
        JwksClientAssertionVerifier(s.http),
        OAuthConfig(
            issuer=issuer,
            audience=audience,
            token_endpoint=f"{issuer}/oauth/token",
            access_token_ttl=timedelta(seconds=auth.access_token_ttl_seconds),
            refresh_token_ttl=timedelta(days=auth.refresh_token_ttl_days),
            mode=s.settings.env.value,
        ),
        cache=_access_cache(s),
        stored_jti=stored_jti,
    )


def _signing_keys(s: Services) -> SigningKeyService:
    return SigningKeyService(
        s.transactions,
        s.clock,
        EcKeyMaterial(_passphrase(s)),
        timedelta(seconds=s.settings.auth.access_token_ttl_seconds),
    )


def _retire_job(s: Services) -> PeriodicJob:
    keys, ring = s.get(SigningKeyService), s.get(KeyRing)

    async def run() -> str:
        retired = await keys.retire_expired(WORKER)
        if retired:
            await ring.refresh(force=True)
        return f"retired {retired}" if retired else "none due"

    return PeriodicJob("signing_keys.retire", timedelta(minutes=5), run)


async def _ensure_signing_key(s: Services) -> None:
    await s.get(SigningKeyService).ensure_active(SYSTEM)


def include(registry: Registry) -> None:
    registry.add_problems(*problems.PROBLEMS)
    registry.add_tables(tables.TABLES)
    registry.add_repository("tokens", SqlTokenRepository)
    registry.add_repository("signing_keys", SqlSigningKeyRepository)
    registry.add_retention_class("oauth_artifacts", OAuthArtifactRows)
    registry.provide(KeyRing, _key_ring)
    registry.provide(SigningKeyRing, lambda s: s.get(KeyRing))
    registry.provide(OAuthService, _oauth)
    registry.provide(SigningKeyService, _signing_keys)
    registry.add_routes(token.router, authorize.router, operator_keys.router)
    registry.add_startup(_ensure_signing_key)
    registry.add_periodic(_retire_job)
