"""Run options, read from ``BENCH_*`` environment variables (see bench/README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
VAR_DIR = ROOT / "var" / "bench"  # SQLite files, keys, logs; never var/amanat.db
RESULTS_DIR = BENCH_DIR / "results"
LUA_SCRIPT = BENCH_DIR / "lua" / "scenario.lua"
SQL_DIR = BENCH_DIR / "sql"

DATABASES = ("postgresql", "sqlite")
SHORT = frozenset({"replay", "retrieve", "list", "token", "webhooks", "webhook_worker"})
SCENARIOS = (
    "create_spread",
    "create_hot",
    "replay",
    "retrieve",
    "list",
    "webhooks",
    "webhook_worker",  # events at a steady rate straight into the event path, one worker
    "token",
    "scale_out",  # PostgreSQL only: two `amanat serve` and two `amanat worker`, one Redis
    "sigkill",  # the API's process group SIGKILLed during a create load, then restarted
)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _words(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name, "").replace(",", " ").split()
    return tuple(raw) if raw else default


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class BenchConfig:
    smoke: bool
    duration: float  # seconds of load: creates and baselines
    short_duration: float  # seconds of load of the SHORT scenarios
    warmup_payouts: int
    databases: tuple[str, ...]
    scenarios: tuple[str, ...]
    connections: dict[str, int]  # per database
    merchants: int
    wrk_threads: int
    api_workers: dict[str, int]  # per database: API processes (`amanat serve --workers`)
    pg_admin_url: str  # postgresql://user@host:port (no database)
    pg_database: str
    load_tool: str  # wrk | python
    keep: bool
    product_rate_limits: bool
    webhook_endpoints: int
    webhook_rate: float  # payouts per second offered in the webhook scenario
    webhook_worker_rate: float  # events per second offered in the webhook_worker scenario
    drain_seconds: float  # at most this long for the worker to settle the warm-up payouts
    python_check_requests: int  # requests of the Python correctness checks
    redis_url: str  # the scale-out's shared rate-limit counters
    scale_out_quota: int  # the low write quota of the scale-out's shared-limit check
    receiver_hold_ms: float  # the scale-out receiver holds each delivery this long

    def seconds(self, scenario: str) -> float:
        return self.short_duration if scenario in SHORT else self.duration

    @property
    def port(self) -> int:
        return _int("BENCH_PORT", 8765)

    @property
    def receiver_port(self) -> int:
        return _int("BENCH_RECEIVER_PORT", 8766)

    @property
    def scale_out_ports(self) -> tuple[int, int]:
        """The two `amanat serve` of the scale-out scenario (BENCH_PORT + 2 and + 3)."""
        return self.port + 2, self.port + 3


def load_config(*, smoke: bool) -> BenchConfig:
    for name in ("BENCH_DATABASES", "BENCH_SCENARIOS"):
        allowed = DATABASES if name == "BENCH_DATABASES" else SCENARIOS
        unknown = [w for w in _words(name, ()) if w not in allowed]
        if unknown:
            raise SystemExit(f"{name}: unknown {unknown}; choose from {list(allowed)}")
    return BenchConfig(
        smoke=smoke,
        duration=_float("BENCH_DURATION", 3.0 if smoke else 30.0),
        short_duration=_float(
            "BENCH_SHORT_DURATION", min(_float("BENCH_DURATION", 30.0), 3.0 if smoke else 15.0)
        ),
        warmup_payouts=_int("BENCH_WARMUP", 20 if smoke else 200),
        databases=_words("BENCH_DATABASES", DATABASES),
        scenarios=_words("BENCH_SCENARIOS", SCENARIOS),
        connections={
            "postgresql": _int("BENCH_PG_CONNECTIONS", 8 if smoke else 64),
            "sqlite": _int("BENCH_SQLITE_CONNECTIONS", 4 if smoke else 16),
        },
        merchants=_int("BENCH_MERCHANTS", 20 if smoke else 1000),
        wrk_threads=_int("BENCH_WRK_THREADS", 1),
        # One API process per core on PostgreSQL, as `amanat serve --workers 2` would run
        # here. One on SQLite: its writers queue on a lock inside the process, and a
        # second process would wait on SQLite's sleeping busy handler instead.
        api_workers={
            "postgresql": _int("BENCH_PG_API_WORKERS", _int("BENCH_API_WORKERS", 2)),
            "sqlite": _int("BENCH_SQLITE_API_WORKERS", _int("BENCH_API_WORKERS", 1)),
        },
        pg_admin_url=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432").rstrip(
            "/"
        ),
        pg_database=os.environ.get("BENCH_PG_DATABASE", "amanat_bench"),
        load_tool=os.environ.get("BENCH_LOAD", "wrk"),
        keep=_flag("BENCH_KEEP"),
        product_rate_limits=_flag("BENCH_PRODUCT_RATE_LIMITS"),
        webhook_endpoints=_int("BENCH_WEBHOOK_ENDPOINTS", 2 if smoke else 4),
        webhook_rate=_float("BENCH_WEBHOOK_RATE", 20.0 if smoke else 100.0),
        # x 4 endpoints: 1,200 deliveries/s offered, above the 1,000/s target.
        webhook_worker_rate=_float("BENCH_WEBHOOK_WORKER_RATE", 30.0 if smoke else 300.0),
        drain_seconds=_float("BENCH_DRAIN_SECONDS", 30.0 if smoke else 60.0),
        python_check_requests=_int("BENCH_CHECK_REQUESTS", 40 if smoke else 400),
        redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"),
        scale_out_quota=_int("BENCH_SCALE_OUT_QUOTA", 20 if smoke else 50),
        receiver_hold_ms=_float("BENCH_RECEIVER_HOLD_MS", 20.0),
    )
