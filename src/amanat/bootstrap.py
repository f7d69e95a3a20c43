"""Composition root: builds the adapters from settings and wires them into services.

Everything with a lifetime (engine, key ring, HTTP client, rate-limit storage) is created
here once per process and handed to the edges in a :class:`Container`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import httpx
import structlog

from amanat.auth.adapters.client_assertions import JwksClientAssertionVerifier
from amanat.auth.adapters.external_issuer import ExternalIssuer
from amanat.auth.adapters.tokens import EcKeyMaterial, JwtAccessTokenCodec, KeyRing
from amanat.auth.service import OAuthConfig, OAuthService
from amanat.identity.adapters.client_secrets import ClientSecretHasher
from amanat.identity.adapters.passwords import Argon2Hasher
from amanat.identity.services.operators import OperatorService
from amanat.identity.services.partners import PartnerService
from amanat.kernel.clock import Clock, SystemClock
from amanat.payments.adapters.breaker import CircuitBreaker
from amanat.payments.adapters.raast_http import RaastHttpAdapter
from amanat.payments.service import PaymentsConfig, PaymentService
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.integrity import AuditIntegrityService
from amanat.platform.audit.seals import Ed25519SealSigner
from amanat.platform.audit.witness import FileWitness, HttpWitness
from amanat.platform.crypto.field_cipher import FieldCipher
from amanat.platform.crypto.master_keys import LocalMasterKey, MasterKey, VaultTransitMasterKey
from amanat.platform.db.database import Database
from amanat.platform.db.engine import create_engine
from amanat.platform.db.ports import SealWitness
from amanat.platform.db.transactions import SqlTransactions
from amanat.platform.keys.service import SigningKey, SigningKeyService
from amanat.platform.protection.service import DataProtectionService
from amanat.platform.ratelimit.limiter import LimiterLockout, RateLimiter
from amanat.platform.retention.service import RetentionService, load_policies
from amanat.platform.settings import Settings
from amanat.webhooks.adapters.transport import HttpWebhookSender, SystemResolver
from amanat.webhooks.events_service import EventService
from amanat.webhooks.service import WebhooksConfig, WebhookService

log = structlog.get_logger("amanat.bootstrap")


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
    protection: DataProtectionService
    audit_integrity: AuditIntegrityService
    retention: RetentionService
    payments: PaymentService
    rail: RaastHttpAdapter
    rail_callback_url: str
    events: EventService
    webhooks: WebhookService
    webhook_sender: HttpWebhookSender
    webhook_http: httpx.AsyncClient

    async def close(self) -> None:
        await self.http.aclose()
        await self.webhook_http.aclose()
        await self.rate_limiter.close()
        await self.db.dispose()


def master_key_from(settings: Settings, http: httpx.AsyncClient) -> MasterKey:
    crypto = settings.crypto
    if crypto.vault_address and crypto.vault_token:
        return VaultTransitMasterKey(
            http,
            address=crypto.vault_address,
            token=crypto.vault_token.get_secret_value(),
            key_name=crypto.vault_transit_key,
            mount=crypto.vault_transit_mount,
        )
    if crypto.master_key is not None:
        return LocalMasterKey.from_base64(crypto.master_key.get_secret_value())
    if crypto.master_key_file is not None:
        key, _ = LocalMasterKey.from_file(crypto.master_key_file, create=False)
        return key
    if settings.is_production:
        raise RuntimeError("production needs a configured master key")
    key, created = LocalMasterKey.from_file(crypto.sandbox_master_key_file, create=True)
    if created:
        log.warning(
            "sandbox_master_key_created",
            path=str(crypto.sandbox_master_key_file),
            note="a local key file protects sandbox data only; production needs a "
            "configured master key",
        )
    return key


def audit_integrity_service(
    settings: Settings,
    transactions: SqlTransactions,
    clock: Clock,
    signer: Ed25519SealSigner,
    http: httpx.AsyncClient,
) -> AuditIntegrityService:
    """Seals go to every configured witness; verify reads the witness file back."""
    witnesses: list[SealWitness] = []
    file_witness = None
    if settings.audit.witness_file is not None:
        file_witness = FileWitness(settings.audit.witness_file)
        witnesses.append(file_witness)
    if settings.audit.witness_url:
        witnesses.append(
            HttpWitness(
                http,
                settings.audit.witness_url,
                timeout_seconds=settings.audit.witness_timeout_seconds,
            )
        )
    return AuditIntegrityService(
        transactions,
        clock,
        signer,
        witnesses,
        read_witness=file_witness.read if file_witness is not None else None,
    )


def build_container(
    settings: Settings, *, clock: Clock | None = None, http: httpx.AsyncClient | None = None
) -> Container:
    clock = clock or SystemClock()
    db = Database(
        create_engine(settings.database),
        write_wait_seconds=settings.database.sqlite_busy_timeout_ms / 1000,
    )
    transactions = SqlTransactions(db)
    http = http or httpx.AsyncClient(follow_redirects=False, timeout=10.0)
    passwords = Argon2Hasher()
    client_secrets = ClientSecretHasher(passwords)
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
        client_secrets,
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

    async def load_data_key(key_id: str) -> tuple[str | None, str]:
        async with transactions.read() as tx:
            key = await tx.data_keys.get_key(key_id)
        if key is None:
            return None, "missing"
        return key.wrapped_key, key.purpose

    cipher = FieldCipher(master_key_from(settings, http), load_data_key)
    protection = DataProtectionService(transactions, clock, cipher)
    seal_signer = Ed25519SealSigner.from_file(
        settings.crypto.audit_seal_key_file, create=not settings.is_production
    )

    async def shred(actor: Actor, subject_id: str) -> None:
        await protection.erase_subject(actor, subject_id, reason="retention period ended")

    events = EventService(transactions, clock, protection)
    payments = PaymentService(
        transactions,
        clock,
        protection,
        PaymentsConfig(
            default_limit=settings.payments.default_per_transaction_limit,
            balance_shards=settings.payments.balance_shards,
            collection_ttl=timedelta(seconds=settings.payments.collection_ttl_seconds),
            enquire_after=timedelta(seconds=settings.payments.enquire_after_seconds),
            sandbox_hold=timedelta(seconds=settings.payments.sandbox_hold_seconds),
            sandbox=not settings.is_production,
        ),
        events,
    )
    public = settings.http.public_url.rstrip("/")
    rail = RaastHttpAdapter(
        http,
        settings.rail.base_url or f"{public}/sandbox-rail",
        settings.rail.secret.get_secret_value(),
        timeout_seconds=settings.rail.timeout_seconds,
        breaker=CircuitBreaker(),
        clock=clock,
    )
    hooks = settings.webhooks
    resolver = SystemResolver()
    webhook_http = httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,  # never route partner deliveries through an ambient proxy
        limits=httpx.Limits(
            max_connections=hooks.concurrency, max_keepalive_connections=hooks.concurrency
        ),
    )
    webhooks = WebhookService(
        transactions,
        clock,
        protection,
        events,
        resolver,
        WebhooksConfig(
            production=settings.is_production,
            timeout=timedelta(seconds=hooks.timeout_seconds),
            rotation_overlap=timedelta(hours=hooks.rotation_overlap_hours),
            disable_after=timedelta(days=hooks.disable_after_days),
            held_for=timedelta(days=hooks.held_events_days),
        ),
    )
    rate_limiter = RateLimiter(settings.redis_url, settings.rate_limit_policies())
    return Container(
        events=events,
        webhooks=webhooks,
        webhook_http=webhook_http,
        webhook_sender=HttpWebhookSender(
            webhook_http, resolver, excerpt_bytes=hooks.response_excerpt_bytes
        ),
        rail=rail,
        rail_callback_url=settings.rail.callback_url or f"{public}/rails/raast/callbacks",
        payments=payments,
        protection=protection,
        audit_integrity=audit_integrity_service(settings, transactions, clock, seal_signer, http),
        retention=RetentionService(
            transactions, clock, shred, load_policies(settings.retention_file)
        ),
        settings=settings,
        db=db,
        clock=clock,
        transactions=transactions,
        http=http,
        key_ring=key_ring,
        oauth=oauth,
        partners=PartnerService(transactions, clock, client_secrets),
        operators=OperatorService(
            transactions,
            clock,
            passwords,
            protection,
            sign_in_lockout=LimiterLockout(rate_limiter),
            email_failures=LimiterLockout(rate_limiter, "login_email_failures"),
        ),
        signing_keys=SigningKeyService(transactions, clock, EcKeyMaterial(passphrase), ttl),
        rate_limiter=rate_limiter,
    )
