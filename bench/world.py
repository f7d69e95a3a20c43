"""The world a run needs: its own database, settings, merchants with funds and their
beneficiary, and tokens.

Everything goes through amanat's own services (partners, clients, top-ups, token minting),
so the audit chain, the ledger and the encrypted fields stay exactly as the product keeps
them. Two shortcuts, both for speed and both producing real, valid objects:

* Every bench client gets the same secret (PartnerService is handed a hasher that stores
  the real hash of CLIENT_SECRET in place of the generated secret's), so POST /oauth/token
  with that one secret works for all of them.
* Tokens for the load are minted in-process with the OAuth service's own client-credentials
  grant (the code path behind POST /oauth/token, minus the check of the secret),
  signed by the signing key in the database. The token scenario itself goes through HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from amanat.auth.domain import Caller
from amanat.bootstrap import Container
from amanat.identity.adapters.client_secrets import ClientSecretHasher
from amanat.identity.domain import OAuthClient, Partner
from amanat.identity.services.partners import PartnerService
from amanat.platform.audit.domain import Actor
from bench.config import ROOT, VAR_DIR, BenchConfig

ACTOR = Actor(type="cli", id="bench", user_agent="amanat-bench")
CLIENT_SECRET = "cs_bench-" + "x" * 40  # every bench client's secret (sandbox data only)
SPREAD_FUNDS = 10**12  # paisa per spread merchant: PKR 10 billion
HOT_FUNDS = 10**14
# A high-volume partner's own read and write quota (docs/rate-limits.md, "A partner's own
# quota"), set for every bench partner through PartnerService.set_rate_limit, the service
# behind `amanat partners set-rate-limit` and the operator API: 10,000 requests a second
# per client, over a minute, above every target of the bench (the hot merchant's creates,
# 4,000 reads a second), so the limiter counts every request against a real quota and
# refuses none. The other policies (token, public...) keep the platform's quotas.
HIGH_VOLUME_QUOTA = (600_000, 60)
PARTNER_POLICIES = ("read", "write")
IBAN = "PK36SCBL0000001123456702"
AMOUNT = 10_000  # PKR 100.00: ends in 00, the sandbox rail settles it


@dataclass
class Account:
    partner: Partner
    client: OAuthClient
    token: str = ""

    @property
    def basic_auth(self) -> str:
        raw = f"{self.client.id}:{CLIENT_SECRET}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass
class World:
    spread: list[Account]
    hot: Account
    hooks: Account
    by_client: dict[str, Account] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for account in [*self.spread, self.hot, self.hooks]:
            self.by_client[account.client.id] = account

    @property
    def everyone(self) -> list[Account]:
        return [*self.spread, self.hot, self.hooks]


# -- settings and databases ----------------------------------------------------------------


def phase_dir(database: str) -> Path:
    return VAR_DIR / database


def database_url(config: BenchConfig, database: str) -> str:
    if database == "postgresql":
        base = config.pg_admin_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        return f"{base}/{config.pg_database}"
    return f"sqlite+aiosqlite:///{phase_dir(database) / 'amanat-bench.db'}"


def phase_env(config: BenchConfig, database: str) -> dict[str, str]:
    """The environment of the server, the worker and this process for one database.

    ``AMANAT_*`` variables already set (pool sizes, log level, Redis...) pass through, so
    a tuning run can change them; where the bench must decide (database, address, key
    files, no embedded worker) it does."""
    directory = phase_dir(database)
    public = f"http://127.0.0.1:{config.port}"
    env = dict(os.environ)
    env.setdefault("AMANAT_AUTH__ACCESS_TOKEN_TTL_SECONDS", "900")
    env.setdefault("AMANAT_OBSERVABILITY__LOG_JSON", "true")
    env.update(
        {
            "AMANAT_ENV": "sandbox",
            "AMANAT_DATABASE__URL": database_url(config, database),
            "AMANAT_HTTP__HOST": "127.0.0.1",
            "AMANAT_HTTP__PORT": str(config.port),
            "AMANAT_HTTP__PUBLIC_URL": public,
            "AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE": str(directory / "credentials.json"),
            "AMANAT_CRYPTO__SANDBOX_MASTER_KEY_FILE": str(directory / "master.key"),
            "AMANAT_CRYPTO__AUDIT_SEAL_KEY_FILE": str(directory / "audit-seal.key"),
            # The sandbox rail's own memory, beside the run's other files (not var/).
            "AMANAT_RAIL__SANDBOX_STATE_FILE": str(directory / "sandbox-rail.db"),
            "AMANAT_WORKER__EMBEDDED": "false",
            "BENCH_API_WORKERS": str(config.api_workers[database]),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        }
    )
    return env


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """This process's ``AMANAT_*`` environment for one phase (Settings() reads it)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AMANAT_")}
    for key in saved:
        del os.environ[key]
    os.environ.update({k: v for k, v in env.items() if k.startswith("AMANAT_")})
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("AMANAT_")]:
            del os.environ[key]
        os.environ.update(saved)


async def _pg_admin(config: BenchConfig, *statements: str) -> None:
    base = config.pg_admin_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"BENCH_PG_DATABASE must be letters, digits and _: {name!r}")
    return f'"{name}"'


def create_database(config: BenchConfig, database: str) -> None:
    """A fresh, empty database (and key files) for this phase; nothing else is touched."""
    directory = phase_dir(database)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    if database == "postgresql":
        name = _quoted(config.pg_database)
        asyncio.run(
            _pg_admin(
                config, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"
            )
        )


def drop_database(config: BenchConfig, database: str) -> None:
    if database == "postgresql":
        name = _quoted(config.pg_database)
        asyncio.run(_pg_admin(config, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    shutil.rmtree(phase_dir(database), ignore_errors=True)


# -- merchants -------------------------------------------------------------------------------


class _OneSecret:
    """A SecretHasher that stores the hash of CLIENT_SECRET for every new client."""

    def __init__(self) -> None:
        self._real = ClientSecretHasher()

    async def hash(self, secret: str) -> str:
        return await self._real.hash(CLIENT_SECRET)

    async def verify(self, hashed: str, secret: str) -> bool:
        return await self._real.verify(hashed, secret)

    def needs_rehash(self, hashed: str) -> bool:
        return self._real.needs_rehash(hashed)


async def _account(
    partners: PartnerService,
    container: Container,
    name: str,
    funds: int,
    quota: tuple[int, int] | None,
) -> Account:
    partner = await partners.create_partner(ACTOR, name=name, roles=["merchant"], mode="sandbox")
    issued = await partners.create_client(ACTOR, partner.id, name=f"{name} server")
    if quota is not None:
        for policy in PARTNER_POLICIES:
            partner = await partners.set_rate_limit(ACTOR, partner.id, policy, quota)
    await container.payments.top_up(Caller(partner.id, issued.client.id, ACTOR), funds)
    # The beneficiary every bench payout pays, as the first payout would have created it
    # (PaymentService._party): measured payouts then find it, as repeat payouts do.
    await container.protection.create_subject(ACTOR, partner.id, name="Ayesha Khan", iban=IBAN)
    return Account(partner, issued.client)


async def build_world(
    container: Container,
    merchants: int,
    concurrency: int,
    quota: tuple[int, int] | None = HIGH_VOLUME_QUOTA,
) -> World:
    """The merchants; ``quota``: every bench partner's own read and write quota (None: the
    platform's quotas)."""
    await container.signing_keys.ensure_active(ACTOR)
    await container.protection.ensure_keys(ACTOR)
    partners = PartnerService(container.transactions, container.clock, _OneSecret())
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str, funds: int) -> Account:
        async with gate:
            return await _account(partners, container, name, funds, quota)

    spread = await asyncio.gather(
        *(one(f"Bench Merchant {i:04d}", SPREAD_FUNDS) for i in range(merchants))
    )
    hot = await one("Bench Hot Merchant", HOT_FUNDS)
    hooks = await one("Bench Webhook Merchant", HOT_FUNDS)
    return World(spread=list(spread), hot=hot, hooks=hooks)


async def mint_tokens(container: Container, world: World) -> None:
    """Fresh access tokens for every account (the client-credentials grant, in-process)."""
    for account in world.everyone:
        result = await container.oauth._client_credentials(account.client, account.partner, {})
        account.token = result.access_token


def payout_body(reference: str, amount: int = AMOUNT) -> str:
    """The same bytes as bench/lua/scenario.lua's payout_body."""
    return (
        f'{{"amount":{amount},"currency":"PKR","creditor":{{"iban":"{IBAN}",'
        f'"name":"Ayesha Khan"}},"reference":"{reference}"}}'
    )


def payout_headers(token: str, key: str) -> dict[str, Any]:
    return {
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": key,
        "Content-Type": "application/json",
    }
