"""Settings, read from the environment in one place.

Every knob is an ``AMANAT_`` environment variable (nested groups use ``__``, e.g.
``AMANAT_DATABASE__URL``). ``production_problems`` lists everything that makes a
configuration unsafe for production; the CLI refuses to start while the list is not empty.
"""

from __future__ import annotations

import ipaddress
from datetime import date, time
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from amanat.platform.ratelimit.limiter import DEFAULT_POLICIES, Policy, parse_policy


class Environment(StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class DatabaseSettings(BaseModel):
    url: str = Field(
        default="sqlite+aiosqlite:///var/amanat.db",
        description="Database URL; production needs `postgresql+asyncpg://user:pass@host/db`.",
    )
    # A fixed pool: SQLAlchemy closes an overflow connection as soon as the pool is full
    # again, so under a fluctuating load overflow meant a new connection (a PostgreSQL
    # backend started, the driver set up) many times a second. docs/configuration.md.
    pool_size: int = Field(
        default=20, ge=1, le=200, description="Connections each process keeps open (see Sizing)."
    )
    max_overflow: int = Field(
        default=0,
        ge=0,
        le=200,
        description="Extra short-lived connections above the pool; keep 0 and raise the pool.",
    )
    pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a request waits for a pooled connection before its 503.",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=10_000, ge=0, description="How long a SQLite writer waits for the lock."
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")
    statement_timeout_ms: int = Field(
        default=15_000,
        ge=0,
        description="PostgreSQL: the longest one statement may run before the server "
        "cancels it (0: no limit). The request then answers 503 with Retry-After.",
    )
    lock_timeout_ms: int = Field(
        default=5_000,
        ge=0,
        description="PostgreSQL: the longest one statement may wait for a row or table "
        "lock (0: no limit). A unit of work that times out is retried, then answers 503.",
    )
    idle_in_transaction_timeout_ms: int = Field(
        default=30_000,
        ge=0,
        description="PostgreSQL: a session that sits idle inside an open transaction this "
        "long is ended by the server, releasing its locks (0: no limit).",
    )
    contention_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="How many more times an idempotent write is run after a deadlock, "
        "serialization failure or lock timeout before it answers 503 with Retry-After.",
    )
    migration_url: str | None = Field(
        default=None,
        description="Database URL `amanat migrate` and `amanat db create-roles` connect with: "
        "the schema owner's credentials. Empty: the same as `url`. In production set `url` to "
        "the application role (see `app_role`) and this to the owner, so the running service "
        "can never drop the audit triggers or delete audit rows.",
    )
    app_role: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL role the application runs as. When set, `amanat migrate` "
        "grants it SELECT, INSERT, UPDATE, DELETE on ordinary tables but only SELECT and "
        "INSERT on `audit_log` and `audit_seals` (and SELECT, UPDATE on the `audit_head` row); "
        "`amanat db create-roles` creates it if absent. Ignored on SQLite.",
    )

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class AuthSettings(BaseModel):
    issuer: str = Field(
        default="",
        description="Token `iss` and base of the OAuth endpoints in discovery; unset: the "
        "public URL. Set it only when tokens must name another issuer.",
    )
    audience: str | None = Field(default=None, description="Token `aud`; unset: the issuer.")
    access_token_ttl_seconds: int = Field(
        default=300, ge=30, le=86_400, description="Access-token lifetime (production: <= 900)."
    )
    refresh_token_ttl_days: int = Field(
        default=90, ge=1, le=365, description="Refresh-token lifetime (authorization-code grant)."
    )
    signing_key_passphrase: SecretStr | None = Field(
        default=None, description="Encrypts token-signing keys at rest (required in production)."
    )
    key_refresh_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often a process reloads the signing keys (sees a rotation).",
    )
    external_issuer: str | None = Field(
        default=None, description="Also trust tokens from this external authorization server."
    )
    external_jwks_url: str | None = Field(
        default=None,
        description="The external issuer's JWKS; unset: found through its discovery document.",
    )
    external_audience: str | None = Field(
        default=None, description="The `aud` the external issuer's tokens carry; unset: ours."
    )
    sandbox_credentials_file: Path = Field(
        default=Path("var/sandbox-credentials.json"),
        description="Where the sandbox seed keeps the credentials it printed (mode 0600).",
    )

    @property
    def effective_audience(self) -> str:
        return self.audience or self.issuer


class CryptoSettings(BaseModel):
    master_key: SecretStr | None = Field(
        default=None, description="Base64 of 32 random bytes: the field-encryption master key."
    )
    master_key_file: Path | None = Field(
        default=None, description="A file holding the master key (base64); production needs one."
    )
    sandbox_master_key_file: Path = Field(
        default=Path("var/master.key"),
        description="Sandbox only: the master key generated on first start when none is set.",
    )
    vault_address: str | None = Field(
        default=None, description="HashiCorp Vault address: its transit engine wraps data keys."
    )
    vault_token: SecretStr | None = Field(default=None, description="Token for Vault.")
    vault_transit_key: str = Field(default="amanat", description="Vault transit key name.")
    vault_transit_mount: str = Field(default="transit", description="Vault transit mount.")
    audit_seal_key_file: Path = Field(
        default=Path("var/audit-seal.key"),
        description="Ed25519 key that signs audit seals (generated in the sandbox).",
    )
    export_recipients: list[str] = Field(
        default_factory=list,
        description='age recipients exports are encrypted for (`["age1..."]`).',
    )

    @property
    def has_master_key(self) -> bool:
        return bool(
            self.master_key or self.master_key_file or (self.vault_address and self.vault_token)
        )


class ObservabilitySettings(BaseModel):
    log_level: str = Field(default="INFO", description="Log level (DEBUG, INFO, WARNING...).")
    log_json: bool | None = Field(
        default=None,
        description="JSON log lines; unset: in production or when stderr is not a terminal.",
    )
    debug: bool = Field(default=False, description="Debug mode; refused in production.")


class HttpSettings(BaseModel):
    host: str = Field(default="127.0.0.1", description="Address `amanat serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `amanat serve` binds.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger request bodies get 413."
    )
    max_upload_bytes: int = Field(
        default=52_428_800,
        ge=1024,
        le=209_715_200,
        description="Larger uploaded files (a bank statement sent to "
        "`POST /operator/v1/reconciliation/imports`) get 413.",
    )
    max_header_bytes: int = Field(
        default=16_384,
        ge=1024,
        description="Most bytes a request's headers may take in total (names and "
        "values); a request over it is answered 431 before it is read further.",
    )
    max_header_count: int = Field(
        default=100,
        ge=10,
        description="Most header fields one request may carry; more is answered 431.",
    )
    replay_memo_mb: int = Field(
        default=16,
        ge=0,
        le=4096,
        description="Memory each process may give to the completed idempotency keys it "
        "remembers, so a retry of one is answered without the database (a payout's key "
        "takes about 2 KB; answers stay sealed; 0: every retry reads the database).",
    )
    public_url: str = Field(
        default="",
        description="The URL clients reach the server at: token issuer and audience, "
        "OAuth discovery, problem `type` URLs, sandbox redirect and rail callback URLs, "
        "the `make run` banner, cookies' `Secure` flag. Unset: `http://<host>:<port>`.",
    )

    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            'Addresses or networks (JSON list, e.g. ["10.0.0.5", "10.1.0.0/16"]) of the '
            "reverse proxies whose X-Forwarded-For and X-Forwarded-Proto headers are "
            "believed. Empty (the default): the headers are ignored and the client address "
            "is the TCP peer's."
        ),
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"AMANAT_HTTP__TRUSTED_PROXIES: {entry[:60]!r} is not an IP address or "
                    "network (e.g. 10.0.0.5 or 10.1.0.0/16)"
                ) from None
        return [entry.strip() for entry in value]

    @model_validator(mode="after")
    def _derive_public_url(self) -> HttpSettings:
        # The address clients use, so moving the port alone moves every URL a client sees.
        self.public_url = (self.public_url or _url_of(self.host, self.port)).rstrip("/")
        return self


def _url_of(host: str, port: int) -> str:
    """``http://host:port`` as a client would type it; a wildcard bind means this machine."""
    if host in {"", "0.0.0.0"}:  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class PaymentsSettings(BaseModel):
    default_per_transaction_limit: int = Field(
        default=100_000_000,
        ge=1,
        description="Largest payout or collection in paisa (PKR 1,000,000) for partners "
        "without their own limit (`POST /operator/v1/partners/{id}/limits`); a request is "
        "judged by the limit in force when its token was checked.",
    )
    balance_shards: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Rows each partner balance is spread over, so payouts do not queue on one row.",
    )
    collection_ttl_seconds: int = Field(
        default=900, ge=60, description="How long a collection request stays payable."
    )
    enquire_after_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A submitted payment without a rail answer this long gets a status enquiry.",
    )
    sandbox_hold_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Sandbox only: how long a payment whose amount ends in 11 (the "
        "held_pending test value) stays pending, not yet sent to the rail, so cancelling it "
        "can be tried.",
    )


class RailSettings(BaseModel):
    base_url: str | None = Field(
        default=None,
        description="The Raast rail's base URL; unset: the sandbox rail at "
        "`<public URL>/sandbox-rail`.",
    )
    callback_url: str | None = Field(
        default=None,
        description="Where the rail sends results; unset: `<public URL>/rails/raast/callbacks`.",
    )
    secret: SecretStr = Field(
        default=SecretStr("sandbox-rail-shared-secret"),
        description="Shared secret signing rail requests and callbacks (production: the "
        "one agreed with the rail operator).",
    )
    admin_token: SecretStr = Field(
        default=SecretStr("sandbox-rail-admin"),
        description="Bearer token of the sandbox rail's admin endpoints.",
    )
    timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="One rail call, start to finish."
    )
    mount_sandbox: bool = Field(
        default=True,
        description="Serve the sandbox rail at `/sandbox-rail` (refused in production).",
    )
    sandbox_state_file: Path = Field(
        default=Path("var/sandbox-rail.db"),
        description="Where the sandbox rail keeps its transfers (a SQLite file of its own, "
        "never amanat's database), so a restart of the sandbox forgets no payment the rail "
        "accepted.",
    )
    # The platform's own account that Raast request-to-pay collections are paid into.
    collection_iban: str = Field(
        default="PK46HABB0000009990000001",
        description="The platform's own account that Raast collections are paid into.",
    )


class SettlementSettings(BaseModel):
    cutoff: time = Field(
        default=time(17, 0),
        description="Asia/Karachi time at which each business day's settlement cycle "
        "closes; money that moves later belongs to the next business day.",
    )
    holidays: list[date] = Field(
        default_factory=list,
        max_length=400,
        description="Extra dates banks are closed (the Eids, Ashura, Eid Milad-un-Nabi as "
        'announced, any other closure), as a JSON list: `["2026-03-20"]`. Weekends and '
        "the fixed-date public holidays are built in (docs/settlement-and-reconciliation.md).",
    )
    weekend: list[int] = Field(
        default_factory=lambda: [5, 6],
        max_length=7,
        description="Days banks are closed every week, as ISO weekday numbers less one "
        "(0 Monday … 6 Sunday): Saturday and Sunday by default.",
    )

    @field_validator("weekend")
    @classmethod
    def _weekend_days(cls, value: list[int]) -> list[int]:
        if any(not 0 <= day <= 6 for day in value) or len(set(value)) == 7:
            raise ValueError("weekend days are 0 (Monday) to 6 (Sunday), and not all seven")
        return sorted(set(value))

    collection_fee_bps: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="Fee on each settled collection, in basis points of its amount, "
        "charged at the cycle's close.",
    )
    payout_fee: int = Field(
        default=0,
        ge=0,
        le=100_000,
        description="Fee per settled payout or refund, in paisa, charged at the cycle's close.",
    )
    close_after_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="How long after a cut-off the worker closes the cycle, so payments "
        "the rail settled just before it have reached amanat.",
    )


class DisputeSettings(BaseModel):
    """Disputes' deadlines and evidence limits. Deadlines count Pakistan business days
    (Asia/Karachi) on the settlement calendar: its weekend and holidays."""

    respond_within_business_days: int = Field(
        default=7,
        ge=1,
        le=60,
        description="Business days after a dispute opens that the merchant has to answer it "
        "(`respond_by_date`); a dispute still unanswered after that date is lost.",
    )
    decide_within_business_days: int = Field(
        default=30,
        ge=1,
        le=120,
        description="Business days after a dispute opens by which it should be decided "
        "(`decide_by_date`); one under review past that date is a critical alert.",
    )
    evidence_max_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        le=50 * 1024 * 1024,
        description="Largest evidence file accepted (PDF, PNG, JPEG or plain text); keep "
        "it at or below `AMANAT_HTTP__MAX_UPLOAD_BYTES`.",
    )
    max_evidence_files: int = Field(
        default=10, ge=1, le=100, description="Most evidence files one dispute may hold."
    )
    warn_days_before_deadline: int = Field(
        default=2,
        ge=0,
        le=30,
        description="A dispute awaiting the merchant's answer this many business days or "
        "fewer before its `respond_by_date` raises a warning alert.",
    )

    @model_validator(mode="after")
    def _decision_after_response(self) -> DisputeSettings:
        if self.decide_within_business_days < self.respond_within_business_days:
            raise ValueError(
                "decide_within_business_days must not be shorter than respond_within_business_days"
            )
        return self


class AuditSettings(BaseModel):
    chain_every_seconds: float = Field(
        default=0.05,
        gt=0,
        le=60,
        description="How often the worker's sequencer looks for committed audit records to "
        "chain (a cheap read when there are none). Records reach the chain within about this "
        "long after their transaction commits; readers of the trail and `amanat audit "
        "verify` chain what is waiting first.",
    )
    seal_every_records: int = Field(
        default=1000,
        ge=1,
        description="The worker seals the audit chain as soon as this many records were "
        "appended since the last seal (or after `seal_every_seconds`, whichever comes first).",
    )
    seal_every_seconds: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="The longest time, in seconds, an appended audit record waits for a seal. "
        "Records after the newest witnessed seal are the window a database attacker can "
        "remove unseen (docs/security.md).",
    )
    witness_file: Path | None = Field(
        default=None,
        description="Append-only file (JSON Lines) every seal is also written to, on storage "
        "the database's owner cannot rewrite (another host's mount, a WORM bucket mount, a "
        "file with `chattr +a`). A directory means `<dir>/audit-seals.jsonl`. `amanat audit "
        "verify` checks the chain against it. Required in production unless `witness_url` "
        "is set; `make run` uses var/audit-witness.jsonl.",
    )
    witness_url: str | None = Field(
        default=None,
        description="HTTP(S) endpoint that receives every seal as a JSON POST, for a witness "
        "kept by another party; keep what it receives as a file and pass it to `amanat audit "
        "verify --witness`.",
    )
    witness_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Timeout of one POST to `witness_url`."
    )


class WorkerSettings(BaseModel):
    embedded: bool = Field(
        default=False,
        description="Run the worker inside the API process (make run does); production "
        "runs `amanat worker`.",
    )
    tick_seconds: float = Field(
        default=5.0, gt=0, le=300, description="How often the worker looks for due work."
    )
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
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="One webhook attempt, start to finish."
    )
    rotation_overlap_hours: float = Field(
        default=24.0,
        ge=0,
        le=168,
        description="How long an old endpoint secret keeps signing after `rotate_secret`.",
    )
    disable_after_days: float = Field(
        default=5.0, gt=0, le=30, description="A failure streak this long disables an endpoint."
    )
    concurrency: int = Field(
        default=64, ge=1, le=1000, description="Webhook attempts in flight per worker."
    )
    per_endpoint_concurrency: int = Field(
        default=8, ge=1, le=100, description="Webhook attempts in flight to one endpoint."
    )
    response_excerpt_bytes: int = Field(
        default=512, ge=0, le=1024, description="How much of a receiver's answer an attempt keeps."
    )
    held_events_days: float = Field(
        default=30.0,
        gt=0,
        le=180,
        description=(
            "How long events raised while a webhook endpoint is disabled are kept for it. "
            "On re-enabling, the held events are delivered oldest first; those held longer than "
            "this are dropped (marked failed) and can still be read with GET /v1/events."
        ),
    )


class OperationsSettings(BaseModel):
    """When the console's operations dashboard turns a tile red and the alert inbox raises
    an alert (docs/playbooks.md says what to do about each)."""

    payout_failure_rate_percent: float = Field(
        default=2.0,
        ge=0,
        le=100,
        description="The payout failure rate (failed out of failed + succeeded payouts) above "
        "which the operations dashboard's tile turns red, over the last "
        "`failure_rate_window_minutes`.",
    )
    failure_rate_window_minutes: float = Field(
        default=15.0,
        gt=0,
        le=1440,
        description="The window, in minutes, the payout failure rate tile is measured over.",
    )
    failure_rate_min_finished: int = Field(
        default=1,
        ge=1,
        description="Fewer payouts than this finished in the window: the failure rate tile "
        "stays green whatever the rate (one failure of two is not an outage).",
    )
    stuck_after_minutes: float = Field(
        default=10.0,
        gt=0,
        le=10_080,
        description="A payout or refund pending or processing (a collection past its expiry) "
        "for longer than this is stuck: a red tile and a critical `payment_stuck` alert.",
    )
    webhook_backlog_max: int = Field(
        default=1000,
        ge=0,
        description="Undelivered webhook deliveries (pending, held ones included) above this "
        "turn the backlog tile red.",
    )
    webhook_oldest_minutes: float = Field(
        default=30.0,
        gt=0,
        le=10_080,
        description="An enabled endpoint's oldest undelivered delivery older than this turns "
        "the tile red and raises a `webhook_backlog` alert for the endpoint.",
    )
    break_age_cycles: int = Field(
        default=1,
        ge=1,
        le=30,
        description="An open reconciliation break still open after this many settlement "
        "cycles have closed after its own is aged: a red tile and a `break_aged` alert.",
    )
    audit_stall_minutes: float = Field(
        default=5.0,
        gt=0,
        le=1440,
        description="A committed audit record not chained after this long (no sequencer "
        "running, or it fails), or records appended and unsealed this long past "
        "`AMANAT_AUDIT__SEAL_EVERY_SECONDS`: a critical alert.",
    )
    alerts_per_source: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="At most this many alerts of one kind are listed at once (the oldest "
        "first); the dashboard shows the full counts.",
    )


class SandboxSettings(BaseModel):
    seed: bool = Field(
        default=True, description="Whether `amanat sandbox seed` may create sandbox data."
    )
    initial_balance_minor: int = Field(
        default=1_000_000_000,
        ge=0,
        description="The sandbox merchant's starting balance in paisa (PKR 10,000,000).",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AMANAT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    env: Environment = Field(
        default=Environment.SANDBOX,
        description="`production` refuses to start with an unsafe setting (see below) and "
        "never seeds sandbox data.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Share rate-limit counters between processes (`redis://127.0.0.1:6379/0`).",
    )
    retention_file: Path | None = Field(
        default=None,
        description="A TOML file of retention policies; unset: the built-in ones "
        "(docs/retention.md).",
    )
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    crypto: CryptoSettings = CryptoSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    http: HttpSettings = HttpSettings()
    sandbox: SandboxSettings = SandboxSettings()
    worker: WorkerSettings = WorkerSettings()
    audit: AuditSettings = AuditSettings()
    payments: PaymentsSettings = PaymentsSettings()
    rail: RailSettings = RailSettings()
    webhooks: WebhookSettings = WebhookSettings()
    settlement: SettlementSettings = SettlementSettings()
    disputes: DisputeSettings = DisputeSettings()
    operations: OperationsSettings = OperationsSettings()
    rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Per-policy quotas as LIMIT/WINDOW_SECONDS, one variable per policy, e.g. "
            "AMANAT_RATE_LIMITS__WRITE=6000/60. Policies: "
            + ", ".join(
                f"{p.name} ({p.limit}/{p.window_seconds})" for p in DEFAULT_POLICIES.values()
            )
            + ". docs/rate-limits.md."
        ),
    )

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits_parse(cls, value: dict[str, str]) -> dict[str, str]:
        normalised: dict[str, str] = {}
        for raw_name, text in value.items():
            name = raw_name.lower()
            if name not in DEFAULT_POLICIES:
                raise ValueError(
                    f"AMANAT_RATE_LIMITS__{raw_name.upper()[:40]}: no such policy; known: "
                    + ", ".join(sorted(DEFAULT_POLICIES))
                )
            try:
                policy = parse_policy(name, str(text))
            except ValueError as exc:
                raise ValueError(f"AMANAT_RATE_LIMITS__{name.upper()}: {exc}") from None
            normalised[name] = f"{policy.limit}/{policy.window_seconds}"
        return normalised

    def rate_limit_policies(self) -> dict[str, Policy]:
        """Every rate-limit policy: the defaults with the configured ones over them."""
        configured = {n: parse_policy(n, t) for n, t in self.rate_limits.items()}
        return {**DEFAULT_POLICIES, **configured}

    @model_validator(mode="after")
    def _issuer_follows_public_url(self) -> Settings:
        # One public URL drives the issuer (and so the audience and discovery) unless the
        # issuer is set on purpose; a copy, so the shared default instance stays untouched.
        if not self.auth.issuer:
            self.auth = self.auth.model_copy(update={"issuer": self.http.public_url})
        return self

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
        if self.audit.witness_file is None and self.audit.witness_url is None:
            problems.append(
                "No audit seal witness: set AMANAT_AUDIT__WITNESS_FILE (append-only storage "
                "the database's owner cannot rewrite) or AMANAT_AUDIT__WITNESS_URL; without "
                "one, someone with the database can truncate or rewrite the audit log unseen."
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
        if self.database.migration_url:
            data["database"]["migration_url"] = _mask_url(self.database.migration_url)
        if self.redis_url:
            data["redis_url"] = _mask_url(self.redis_url)
        if self.audit.witness_url:
            data["audit"]["witness_url"] = _mask_url(self.audit.witness_url)
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
