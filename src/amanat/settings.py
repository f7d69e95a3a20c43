"""Settings, read from the environment in one place.

Every knob is an ``AMANAT_`` environment variable (nested groups use ``__``, e.g.
``AMANAT_DATABASE__URL``). ``production_problems`` lists everything that makes a
configuration unsafe for production; the CLI refuses to start while the list is not empty.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class DatabaseSettings(BaseModel):
    url: str = "sqlite+aiosqlite:///var/amanat.db"
    # A fixed pool: SQLAlchemy closes an overflow connection as soon as the pool is full
    # again, so under a fluctuating load overflow meant a new connection (a PostgreSQL
    # backend started, the driver set up) many times a second. docs/configuration.md.
    pool_size: int = Field(default=20, ge=1, le=200)
    max_overflow: int = Field(default=0, ge=0, le=200)
    pool_timeout_seconds: float = Field(default=10.0, gt=0)
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)
    echo: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class AuthSettings(BaseModel):
    issuer: str = "http://127.0.0.1:8000"
    audience: str | None = None  # defaults to the issuer
    access_token_ttl_seconds: int = Field(default=300, ge=30, le=86_400)
    refresh_token_ttl_days: int = Field(default=90, ge=1, le=365)
    signing_key_passphrase: SecretStr | None = None
    key_refresh_seconds: float = Field(default=30.0, gt=0)
    external_issuer: str | None = None
    external_jwks_url: str | None = None
    external_audience: str | None = None
    sandbox_credentials_file: Path = Path("var/sandbox-credentials.json")

    @property
    def effective_audience(self) -> str:
        return self.audience or self.issuer


class CryptoSettings(BaseModel):
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    sandbox_master_key_file: Path = Path("var/master.key")
    vault_address: str | None = None
    vault_token: SecretStr | None = None
    vault_transit_key: str = "amanat"
    vault_transit_mount: str = "transit"
    audit_seal_key_file: Path = Path("var/audit-seal.key")
    export_recipients: list[str] = Field(default_factory=list)

    @property
    def has_master_key(self) -> bool:
        return bool(
            self.master_key or self.master_key_file or (self.vault_address and self.vault_token)
        )


class ObservabilitySettings(BaseModel):
    log_level: str = "INFO"
    log_json: bool | None = None
    debug: bool = False


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    public_url: str = "http://127.0.0.1:8000"


class PaymentsSettings(BaseModel):
    default_per_transaction_limit: int = Field(default=100_000_000, ge=1)  # PKR 1,000,000
    balance_shards: int = Field(default=8, ge=1, le=64)
    collection_ttl_seconds: int = Field(default=900, ge=60)
    enquire_after_seconds: float = Field(default=30.0, gt=0)
    sandbox_hold_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Sandbox only: how long a payment whose amount ends in 11 (the "
        "held_pending test value) stays pending, not yet sent to the rail, so cancelling it "
        "can be tried.",
    )


class RailSettings(BaseModel):
    base_url: str | None = None  # default: the in-process sandbox rail at /sandbox-rail
    callback_url: str | None = None  # default: <public_url>/rails/raast/callbacks
    secret: SecretStr = SecretStr("sandbox-rail-shared-secret")
    admin_token: SecretStr = SecretStr("sandbox-rail-admin")
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    mount_sandbox: bool = True
    sandbox_state_file: Path = Field(
        default=Path("var/sandbox-rail.db"),
        description="Where the sandbox rail keeps its transfers (a SQLite file of its own, "
        "never amanat's database), so a restart of the sandbox forgets no payment the rail "
        "accepted.",
    )
    # The platform's own account that Raast request-to-pay collections are paid into.
    collection_iban: str = "PK46HABB0000009990000001"


class WorkerSettings(BaseModel):
    embedded: bool = False  # run the scheduler inside the API process (make run does)
    audit_seal_minutes: int = Field(default=10, ge=1, le=1440)
    tick_seconds: float = Field(default=5.0, gt=0, le=300)
    job_lease_seconds: float = Field(
        default=60.0,
        ge=10,
        le=3600,
        description="How long a worker holds a rail job it claimed; a job of a worker that "
        "died is taken over by another after this. Keep it well above the rail timeout.",
    )
    sweep_every_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="How often the payments sweeper looks for payments in flight that no "
        "job will move on (after a crash) and queues the job they need.",
    )
    stranded_after_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="How long a payment in flight (pending, processing, awaiting approval) "
        "must have been unchanged, with no job left for it, before the sweeper re-queues it.",
    )


class WebhookSettings(BaseModel):
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)  # per attempt, whole call
    rotation_overlap_hours: float = Field(default=24.0, ge=0, le=168)
    disable_after_days: float = Field(default=5.0, gt=0, le=30)  # of failures in a row
    concurrency: int = Field(default=64, ge=1, le=1000)  # attempts in flight per worker
    per_endpoint_concurrency: int = Field(default=8, ge=1, le=100)
    response_excerpt_bytes: int = Field(default=512, ge=0, le=1024)


class SandboxSettings(BaseModel):
    seed: bool = True
    initial_balance_minor: int = Field(default=1_000_000_000, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AMANAT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    env: Environment = Environment.SANDBOX
    redis_url: str | None = None
    retention_file: Path | None = None
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    crypto: CryptoSettings = CryptoSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    http: HttpSettings = HttpSettings()
    sandbox: SandboxSettings = SandboxSettings()
    worker: WorkerSettings = WorkerSettings()
    payments: PaymentsSettings = PaymentsSettings()
    rail: RailSettings = RailSettings()
    webhooks: WebhookSettings = WebhookSettings()

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    def production_problems(self) -> list[str]:
        """Every reason this configuration must not serve production traffic."""
        if not self.is_production:
            return []
        problems: list[str] = []
        if self.database.is_sqlite:
            problems.append(
                "AMANAT_DATABASE__URL points at SQLite; production needs PostgreSQL "
                "(postgresql+asyncpg://...)."
            )
        if self.observability.debug:
            problems.append("AMANAT_OBSERVABILITY__DEBUG is on; turn debug off in production.")
        if not self.crypto.has_master_key:
            problems.append(
                "No encryption master key: set AMANAT_CRYPTO__MASTER_KEY_FILE (or "
                "AMANAT_CRYPTO__MASTER_KEY, or AMANAT_CRYPTO__VAULT_ADDRESS and "
                "AMANAT_CRYPTO__VAULT_TOKEN) to a key the sandbox never used."
            )
        if not self.crypto.audit_seal_key_file.exists():
            problems.append(
                f"The audit seal key {self.crypto.audit_seal_key_file} does not exist: create "
                "an Ed25519 key (amanat audit init-seal-key) and keep a copy of its public "
                "half outside the database."
            )
        if self.rail.mount_sandbox:
            problems.append(
                "AMANAT_RAIL__MOUNT_SANDBOX is on: the sandbox rail must not run in production."
            )
        if self.rail.secret.get_secret_value() == "sandbox-rail-shared-secret":
            problems.append(
                "AMANAT_RAIL__SECRET is the sandbox default: set the secret agreed "
                "with the rail operator."
            )
        if not self.crypto.export_recipients:
            problems.append(
                "AMANAT_CRYPTO__EXPORT_RECIPIENTS is empty: exports must be encrypted for at "
                'least one age recipient (JSON list, e.g. ["age1..."]).'
            )
        if self.auth.signing_key_passphrase is None:
            problems.append(
                "Token signing keys would be stored unencrypted: set "
                "AMANAT_AUTH__SIGNING_KEY_PASSPHRASE."
            )
        if self.auth.access_token_ttl_seconds > 900:
            problems.append(
                "AMANAT_AUTH__ACCESS_TOKEN_TTL_SECONDS is above 900; production tokens must "
                "be short-lived."
            )
        if not self.http.public_url.startswith("https://"):
            problems.append("AMANAT_HTTP__PUBLIC_URL must be an https:// URL in production.")
        if not self.auth.issuer.startswith("https://"):
            problems.append("AMANAT_AUTH__ISSUER must be an https:// URL in production.")
        if self.sandbox.seed:
            problems.append(
                "AMANAT_SANDBOX__SEED is on; sandbox partners and keys must not "
                "exist in production."
            )
        return problems

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret replaced, for ``amanat config show``."""
        data = self.model_dump(mode="json")
        data["database"]["url"] = _mask_url(self.database.url)
        if self.redis_url:
            data["redis_url"] = _mask_url(self.redis_url)
        return data


def _mask_url(url: str) -> str:
    """Hide the password in ``scheme://user:password@host/db``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:[redacted]@{host}" if ":" in creds else url


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
