"""The platform's own part of the composition: its services, repositories, jobs and workers.

The composition root builds the process's few long-lived objects (settings, clock,
database, HTTP client) and hands them to :func:`include`, which registers the shared
mechanisms every capability may ask for: the unit of work, data protection, the audit
trail and its sealer, retention, idempotency and rate limits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import structlog

from amanat.platform.access_log import AccessLog, AccessLogRows, SqlAccessLogRepository
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.health import AuditHealth
from amanat.platform.audit.health_store import SqlAuditHealthRepository
from amanat.platform.audit.integrity import AuditIntegrityService
from amanat.platform.audit.ports import SealWitness
from amanat.platform.audit.queries import AuditQueries
from amanat.platform.audit.sealer import AuditSealer
from amanat.platform.audit.seals import Ed25519SealSigner
from amanat.platform.audit.timeline import AuditTimeline
from amanat.platform.audit.timeline_store import SqlAuditHistory
from amanat.platform.audit.witness import FileWitness, HttpWitness
from amanat.platform.crypto.field_cipher import FieldCipher
from amanat.platform.crypto.master_keys import LocalMasterKey, MasterKey, VaultTransitMasterKey
from amanat.platform.idempotency.service import IdempotencyService
from amanat.platform.idempotency.store import IdempotencyRows, SqlIdempotencyRepository
from amanat.platform.idempotency.timeline import IdempotencyTimeline
from amanat.platform.idempotency.timeline_store import SqlIdempotencyHistory
from amanat.platform.invalidation.listener import PostgresChangeFeed
from amanat.platform.invalidation.ports import ChangeFeed, NoChangeFeed
from amanat.platform.jobs.leases import SqlLeaseRepository
from amanat.platform.jobs.outbox_store import SqlOutboxRepository
from amanat.platform.observability.metrics import OUTBOX_PENDING
from amanat.platform.protection.service import PLATFORM_ENCRYPTED_COLUMNS, DataProtectionService
from amanat.platform.protection.store import (
    DataSubjectRows,
    SqlDataKeyRepository,
    SqlSubjectRepository,
)
from amanat.platform.ratelimit.limiter import RateLimiter
from amanat.platform.registry import PeriodicJob, Registry, Services
from amanat.platform.retention.service import RetentionService, load_policies
from amanat.platform.retention.store import SqlRetentionRepository
from amanat.platform.search import SearchService
from amanat.platform.settings import Settings
from amanat.platform.timeline import TimelineService

log = structlog.get_logger("amanat.bootstrap")
WORKER = Actor(type="system", id="worker")


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


def _protection(s: Services) -> DataProtectionService:
    transactions = s.transactions

    async def load_data_key(key_id: str) -> tuple[str | None, str]:
        async with transactions.read() as tx:
            key = await tx.data_keys.get_key(key_id)
        if key is None:
            return None, "missing"
        return key.wrapped_key, key.purpose

    async def load_data_keys(key_ids: list[str]) -> dict[str, tuple[str | None, str]]:
        async with transactions.read() as tx:
            keys = await tx.data_keys.get_keys(key_ids)
        return {key.id: (key.wrapped_key, key.purpose) for key in keys}

    cipher = FieldCipher(master_key_from(s.settings, s.http), load_data_key, load_data_keys)
    columns = [*PLATFORM_ENCRYPTED_COLUMNS, *s.registry.encrypted_columns]
    return DataProtectionService(transactions, s.clock, cipher, columns, feed=s.get(ChangeFeed))


def _audit_integrity(s: Services) -> AuditIntegrityService:
    """Seals go to every configured witness; verify reads the witness file back."""
    settings = s.settings
    signer = Ed25519SealSigner.from_file(
        settings.crypto.audit_seal_key_file, create=not settings.is_production
    )
    witnesses: list[SealWitness] = []
    file_witness = None
    if settings.audit.witness_file is not None:
        file_witness = FileWitness(settings.audit.witness_file)
        witnesses.append(file_witness)
    if settings.audit.witness_url:
        witnesses.append(
            HttpWitness(
                s.http,
                settings.audit.witness_url,
                timeout_seconds=settings.audit.witness_timeout_seconds,
            )
        )
    return AuditIntegrityService(
        s.transactions,
        s.clock,
        signer,
        witnesses,
        read_witness=file_witness.read if file_witness is not None else None,
    )


def _retention(s: Services) -> RetentionService:
    protection = s.get(DataProtectionService)

    async def shred(actor: Actor, subject_id: str) -> None:
        await protection.erase_subject(actor, subject_id, reason="retention period ended")

    return RetentionService(
        s.transactions,
        s.clock,
        shred,
        load_policies(s.settings.retention_file),
    )


def _reencrypt_job(s: Services) -> PeriodicJob:
    protection = s.get(DataProtectionService)

    async def run() -> str:
        moved = await protection.reencrypt(WORKER)
        retired = await protection.retire_unused(WORKER)
        return f"moved {sum(moved.values())}, retired {retired}"

    return PeriodicJob("data_keys.reencrypt", timedelta(minutes=15), run)


def _retention_job(s: Services) -> PeriodicJob:
    retention = s.get(RetentionService)

    async def run() -> str:
        outcomes = await retention.run(WORKER, dry_run=False)
        return ", ".join(f"{o.data_class}={o.done}" for o in outcomes if o.done) or "nothing due"

    return PeriodicJob("retention.run", timedelta(hours=24), run)


def _sealer(s: Services) -> AuditSealer:
    audit = s.settings.audit
    return AuditSealer(
        s.get(AuditIntegrityService),
        every_records=audit.seal_every_records,
        every_seconds=audit.seal_every_seconds,
        chain_every_seconds=audit.chain_every_seconds,
        health=s.get(AuditHealth),
    )


def _audit_health(s: Services) -> AuditHealth:
    return AuditHealth(
        s.transactions,
        s.clock,
        stall_after=timedelta(minutes=s.settings.operations.audit_stall_minutes),
        seal_every=timedelta(seconds=s.settings.audit.seal_every_seconds),
    )


def _change_feed(s: Services) -> ChangeFeed:
    engine = s.transactions.db.engine
    if engine.dialect.name != "postgresql":
        return NoChangeFeed()
    return PostgresChangeFeed(engine)


async def _close_change_feed(s: Services) -> None:
    feed = s.built(ChangeFeed)
    if isinstance(feed, PostgresChangeFeed | NoChangeFeed):
        await feed.close()


async def _write_replay_counts(s: Services) -> None:
    idempotency = s.built(IdempotencyService)
    if idempotency is not None:
        await idempotency.replay_counts.close()


async def _ensure_data_keys(s: Services) -> None:
    from amanat.platform.audit.domain import SYSTEM

    await s.get(DataProtectionService).ensure_keys(SYSTEM)


def _outbox_gauge(s: Services) -> Callable[[], Awaitable[None]]:
    async def update() -> None:
        async with s.transactions.read() as tx:
            OUTBOX_PENDING.set(await tx.outbox.pending_count())

    return update


def include(registry: Registry) -> None:
    registry.add_repository("data_keys", SqlDataKeyRepository)
    registry.add_repository("subjects", SqlSubjectRepository)
    classes = registry.retention_classes  # filled in by every capability's include()
    registry.add_repository("retention", lambda conn: SqlRetentionRepository(conn, classes))
    registry.add_retention_class("data_subjects", DataSubjectRows)
    registry.add_retention_class("idempotency_records", IdempotencyRows)
    registry.add_repository("idempotency", SqlIdempotencyRepository)
    registry.add_repository("access_log", SqlAccessLogRepository)
    registry.add_retention_class("console_access_log", AccessLogRows)
    registry.provide(AccessLog, lambda s: AccessLog(s.transactions, s.clock))
    registry.add_repository("leases", SqlLeaseRepository)
    registry.add_repository("outbox", SqlOutboxRepository)
    registry.provide(ChangeFeed, _change_feed)
    registry.add_shutdown(_close_change_feed)
    registry.add_shutdown(_write_replay_counts)
    registry.provide(DataProtectionService, _protection)
    registry.provide(AuditIntegrityService, _audit_integrity)
    registry.build_eagerly(DataProtectionService)  # the sandbox master key file
    registry.build_eagerly(AuditIntegrityService)  # the audit seal key file
    registry.provide(RetentionService, _retention)
    registry.provide(
        AuditQueries,
        lambda s: AuditQueries(s.transactions, catch_up=s.get(AuditIntegrityService).chain_pending),
    )
    registry.provide(
        IdempotencyService,
        lambda s: IdempotencyService(
            s.transactions,
            s.clock,
            s.get(DataProtectionService),
            contention_retries=s.settings.database.contention_retries,
            read_before_claim=s.settings.database.is_sqlite,
            replay_memo_mb=s.settings.http.replay_memo_mb,
        ),
    )
    registry.provide(
        RateLimiter,
        lambda s: RateLimiter(s.settings.redis_url, s.settings.rate_limit_policies()),
    )
    registry.provide(
        TimelineService,
        lambda s: TimelineService([build(s) for build in s.registry.timeline_sources]),
    )
    registry.provide(
        SearchService,
        lambda s: SearchService(
            [build(s) for build in s.registry.search_sources], s.get(DataProtectionService)
        ),
    )
    registry.add_repository("audit_history", SqlAuditHistory)
    registry.add_repository("idempotency_history", SqlIdempotencyHistory)
    registry.add_timeline_source(lambda s: IdempotencyTimeline(s.transactions))
    registry.add_timeline_source(lambda s: AuditTimeline(s.transactions))
    registry.add_startup(_ensure_data_keys)
    registry.add_periodic(_reencrypt_job)
    registry.add_periodic(_retention_job)
    registry.add_repository("audit_health", SqlAuditHealthRepository)
    registry.provide(AuditHealth, _audit_health)
    registry.add_alert_source(lambda s: s.get(AuditHealth))
    registry.add_worker(_sealer)
    registry.add_gauge(_outbox_gauge)
