"""The baselines every run measures beside the scenarios.

(a) The database's own ceiling: the SQL of one payout (bench/sql/) run by the database's
    own tool with no HTTP, no Python in between: pgbench for PostgreSQL, and for SQLite a
    tight loop of Python's sqlite3 (C) on one connection, SQLite having one writer anyway.
(a') PostgreSQL only: a payment-shaped transaction (five INSERTs and one COMMIT into
    scratch tables, no shared row) under pgbench with the same connections, the ceiling a
    payout path without a global lock could approach.
(b) The bare endpoint: ``POST /bench/echo`` (bench/server.py) under the same wrk load as
    "create payout", served by the same server, measured by the scenario code.
(b') A bare FastAPI app (bench/bare_app.py): the same endpoint and model in its own
    process under the same uvicorn options, with none of amanat's middleware.

Also here: capturing the SQL the server really issues for one payout, and comparing its
shape (verb and table per statement) with the baseline scripts, so a change in the product
that the scripts do not follow shows up in the report as "sql_drift".
"""

from __future__ import annotations

import difflib
import glob
import os
import random
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.config import SQL_DIR
from bench.stats import LatencySummary, summarize

PGBENCH_SCRIPT = SQL_DIR / "payout.pgbench.sql"
PAYMENT_SHAPED_SCRIPT = SQL_DIR / "payment_shaped.pgbench.sql"
PAYMENT_SHAPED_SETUP = SQL_DIR / "payment_shaped.setup.sql"
PAYMENT_SHAPED_TABLES = (
    "bench_pay_idempotency",
    "bench_pay_holds",
    "bench_pay_payments",
    "bench_pay_transitions",
    "bench_pay_outbox",
)
SQLITE_SCRIPT = SQL_DIR / "payout.sqlite.sql"
HELPER_TABLE = "bench_merchants"


@dataclass
class BaselineResult:
    tool: str
    clients: int
    duration_s: float
    transactions: int
    failed: int
    latency: LatencySummary
    note: str = ""

    @property
    def throughput(self) -> float:
        return self.transactions / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "clients": self.clients,
            "duration_s": round(self.duration_s, 2),
            "transactions": self.transactions,
            "failed": self.failed,
            "throughput_tps": round(self.throughput, 1),
            "latency": self.latency.as_dict(),
            **({"note": self.note} if self.note else {}),
        }


# -- the helper table ----------------------------------------------------------------------


async def fill_helper_table(engine: AsyncEngine, partner_prefix: str = "Bench Merchant ") -> int:
    """bench_merchants(n, partner, client, account, subject, blind index) for the scripts;
    the subject is the beneficiary the warm-up created for each merchant."""
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE IF EXISTS {HELPER_TABLE}"))
        await conn.execute(
            sa.text(
                f"CREATE TABLE {HELPER_TABLE} (n INTEGER PRIMARY KEY, partner_id TEXT, "
                "client_id TEXT, account_id TEXT, subject_id TEXT, iban_bidx TEXT)"
            )
        )
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT p.id, MIN(c.id), MIN(s.id), MIN(s.iban_bidx) FROM partners p "
                    "JOIN oauth_clients c ON c.partner_id = p.id "
                    "JOIN data_subjects s ON s.partner_id = p.id AND s.iban_bidx IS NOT NULL "
                    "WHERE p.name LIKE :prefix GROUP BY p.id ORDER BY p.id"
                ),
                {"prefix": partner_prefix + "%"},
            )
        ).all()
        if rows:
            await conn.execute(
                sa.text(
                    f"INSERT INTO {HELPER_TABLE} VALUES (:n, :partner_id, :client_id, "  # noqa: S608
                    ":account_id, :subject_id, :iban_bidx)"
                ),
                [
                    {
                        "n": n,
                        "partner_id": r[0],
                        "client_id": r[1],
                        "account_id": f"merchant:{r[0]}",
                        "subject_id": r[2],
                        "iban_bidx": r[3],
                    }
                    for n, r in enumerate(rows)
                ],
            )
    return len(rows)


async def drop_helper_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE IF EXISTS {HELPER_TABLE}"))


def sql_statements(text: str) -> list[str]:
    """The statements of a plain SQL file (``--`` comments dropped, split at ``;`` ending
    a line)."""
    statements, pending = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        pending.append(stripped)
        if stripped.endswith(";"):
            statements.append(" ".join(pending)[:-1])
            pending = []
    return statements


async def create_payment_shaped_tables(engine: AsyncEngine) -> None:
    """The scratch tables of the payment-shaped baseline (bench/sql/payment_shaped.setup.sql)."""
    async with engine.begin() as conn:
        for statement in sql_statements(PAYMENT_SHAPED_SETUP.read_text()):
            await conn.execute(sa.text(statement))


async def drop_payment_shaped_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE IF EXISTS {', '.join(PAYMENT_SHAPED_TABLES)}"))


# -- pgbench ---------------------------------------------------------------------------------


def pgbench_binary() -> str | None:
    """pgbench, if it is installed and runs (Debian's /usr/bin/pgbench is a wrapper that
    fails when the postgresql-NN package is absent)."""
    binary = shutil.which("pgbench")
    if binary is None:
        return None
    done = subprocess.run(  # noqa: S603
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return binary if done.returncode == 0 else None


def pgbench_version() -> str:
    binary = pgbench_binary()
    if binary is None:
        return "pgbench not installed"
    done = subprocess.run(  # noqa: S603
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip()


def run_pgbench(
    admin_url: str,
    database: str,
    *,
    clients: int,
    duration: float,
    merchants: int = 0,
    script: Path = PGBENCH_SCRIPT,
) -> BaselineResult:
    """pgbench -M prepared over ``script`` (the payout's SQL unless told otherwise);
    percentiles from its per-transaction log."""
    binary = pgbench_binary()
    if binary is None:
        raise FileNotFoundError("pgbench")
    match = re.match(
        r"postgresql://(?:(?P<user>[^@:/]+)@)?(?P<host>[^:/]+)(?::(?P<port>\d+))?", admin_url
    )
    if match is None:
        raise RuntimeError(f"cannot read host and user from {admin_url}")
    seconds = max(1, round(duration))
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as logs:
        argv = [
            binary,
            "-n",  # no vacuum of pgbench's own tables: there are none
            "-M",
            "prepared",
            "-h",
            match["host"],
            "-p",
            match["port"] or "5432",
            "-U",
            match["user"] or "postgres",
            "-c",
            str(clients),
            "-j",
            str(min(2, clients)),
            "-T",
            str(seconds),
            "-D",
            f"merchants={merchants}",
            "-f",
            str(script),
            "-l",
            f"--log-prefix={logs}/tx",
            database,
        ]
        done = subprocess.run(  # noqa: S603
            argv, capture_output=True, text=True, timeout=seconds + 120, check=False
        )
        if done.returncode not in (0, 2) or "tps = " not in done.stdout:
            raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr[-2000:]}")
        latencies = []
        for path in glob.glob(f"{logs}/tx*"):
            with open(path) as handle:
                for line in handle:
                    fields = line.split()
                    if len(fields) >= 3 and fields[2].isdigit():
                        latencies.append(int(fields[2]) / 1000)  # µs -> ms
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    processed = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    count = int(processed[1]) if processed else len(latencies)
    return BaselineResult(
        tool=pgbench_version() or "pgbench",
        clients=clients,
        duration_s=float(seconds),
        transactions=count,
        failed=int(failed[1]) if failed else 0,
        latency=summarize(latencies),
    )


# -- SQLite ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    sql: str
    gset: bool  # store the first row's columns as parameters


def parse_script(text: str) -> list[Statement]:
    """Statements end with ';' at the end of a line, or with pgbench's '\\gset' (which
    stores the row); '-- @gset' marks the next statement as storing its row too; pgbench
    meta-commands (lines starting with a backslash) are skipped."""
    statements: list[Statement] = []
    pending: list[str] = []
    gset = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            gset = gset or stripped == "-- @gset"
            continue
        if not stripped or (stripped.startswith("\\") and not pending):
            continue
        if stripped.endswith("\\gset"):
            pending.append(stripped.removesuffix("\\gset").rstrip())
            statements.append(Statement(" ".join(pending), True))
            pending, gset = [], False
            continue
        pending.append(stripped)
        if stripped.endswith(";"):
            statements.append(Statement(" ".join(pending)[:-1], gset))
            pending, gset = [], False
    if pending:
        raise ValueError("the script ends inside a statement (missing ';')")
    return statements


def _sqlite_time(moment: datetime) -> str:
    # How SQLAlchemy stores UtcDateTime on SQLite (naive UTC, microseconds).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def run_sqlite(path: Path, *, duration: float, merchants: int) -> BaselineResult:
    statements = parse_script(SQLITE_SCRIPT.read_text())
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    for pragma in (
        "busy_timeout = 10000",
        "journal_mode = WAL",
        "synchronous = FULL",
        "foreign_keys = ON",
    ):
        conn.execute(f"PRAGMA {pragma}")
    body = "v1.dk_bench." + "x" * 1380  # the length of a sealed payout response
    latencies: list[float] = []
    failed = 0
    started = time.perf_counter()
    deadline = started + duration
    n = 0
    try:
        while time.perf_counter() < deadline:
            n += 1
            now = datetime.now(UTC)
            params: dict[str, Any] = {
                "m": random.randrange(merchants),
                "jti": f"jti-{n}",
                "key": f"sqb-{os.getpid()}-{n}",
                "now": _sqlite_time(now),
                "lock_until": _sqlite_time(now + timedelta(seconds=30)),
                "expires": _sqlite_time(now + timedelta(days=1)),
                "shard": random.randrange(8),
                "payment_id": f"pay_sqb{os.getpid()}x{n}",
                "audit_id": f"aud_sqb{os.getpid()}x{n}",
                "request_id": f"req_sqb{os.getpid()}x{n}",
                "new_hash": random.randbytes(32).hex(),
                "body": body,
            }
            begun = time.perf_counter()
            try:
                for statement in statements:
                    cursor = conn.execute(statement.sql, _used(statement.sql, params))
                    rows = cursor.fetchall()
                    if statement.gset and rows:
                        params.update(zip([d[0] for d in cursor.description], rows[0], strict=True))
            except sqlite3.Error:
                failed += 1
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                continue
            latencies.append((time.perf_counter() - begun) * 1000)
    finally:
        conn.close()
    return BaselineResult(
        tool=f"python sqlite3 (SQLite {sqlite3.sqlite_version})",
        clients=1,
        duration_s=time.perf_counter() - started,
        transactions=len(latencies),
        failed=failed,
        latency=summarize(latencies),
    )


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    return {name: params[name] for name in re.findall(r":(\w+)", sql) if name in params}


# -- drift between the product's SQL and the scripts -----------------------------------------

_SHAPE = re.compile(
    r"^\s*(?:(?P<select>SELECT)\b.*?\bFROM\s+(?P<from>\w+)|(?P<insert>INSERT)\s+INTO\s+(?P<into>\w+)"
    r"|(?P<update>UPDATE)\s+(?P<table>\w+)|(?P<delete>DELETE)\s+FROM\s+(?P<dfrom>\w+))",
    re.IGNORECASE | re.DOTALL,
)


def shape(sql: str) -> str | None:
    """'SELECT partners', 'INSERT payments'... (the main table: subqueries in parentheses
    are ignored); None for BEGIN/COMMIT/PRAGMA and the like."""
    flat, previous = sql, None
    while flat != previous:
        previous, flat = flat, re.sub(r"\([^()]*\)", "_", flat)
    match = _SHAPE.match(flat)
    if match is None:
        return None
    verb = next(v for v in ("select", "insert", "update", "delete") if match[v])
    table = match["from"] or match["into"] or match["table"] or match["dfrom"]
    return f"{verb.upper()} {table.lower()}"


def script_shapes(text: str) -> list[str]:
    """The shapes of the statements between BEGIN and COMMIT of a baseline script."""
    inside = False
    shapes = []
    for statement in parse_script(text):
        head = statement.sql.split()[0].upper()
        if head == "BEGIN":
            inside = True
        elif head == "COMMIT":
            inside = False
        elif inside and (found := shape(statement.sql)) is not None:
            shapes.append(found)
    return shapes


def drift(captured: list[str], script: list[str]) -> list[str]:
    """The unified diff of two statement-shape lists ([] when they agree)."""
    if captured == script:
        return []
    return [
        line
        for line in difflib.unified_diff(script, captured, "baseline script", "server", lineterm="")
        if not line.startswith(("---", "+++"))
    ]


async def capture_payout_shapes(container: Any, token: str) -> list[str]:
    """The shapes of the statements the server issues for one payout of a merchant that
    has paid this beneficiary before: amanat's app on ``container``, in this process."""
    import httpx
    from sqlalchemy import event

    from amanat.app import create_app
    from amanat.platform.db import raw_read, raw_write, sqlite_direct
    from bench.world import payout_body, payout_headers

    app = create_app(container.settings, container=container)
    statements: list[str] = []

    def hook(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    class _Recording:
        """The asyncpg connection a raw read or write uses (platform/db/raw_read.py,
        raw_write.py), recording its SQL: SQLAlchemy's cursor hook never sees those
        statements."""

        def __init__(self, driver: Any) -> None:
            self._driver = driver

        def __getattr__(self, name: str) -> Any:
            found = getattr(self._driver, name)
            if name not in ("executemany", "fetchmany", "fetch", "fetchrow"):
                return found

            async def recorded(sql: str, *args: Any, **kwargs: Any) -> Any:
                statements.append(sql)
                return await found(sql, *args, **kwargs)

            return recorded

    def recording(find: Any) -> Any:
        async def found(conn: Any) -> Any:
            driver = await find(conn)
            return None if driver is None else _Recording(driver)

        return found

    def recorded_direct(run: Any) -> Any:
        """sqlite_direct's functions (conn, hybrid, sql, ...), recording the SQL."""

        async def recorded(conn: Any, hybrid: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
            statements.append(sql)
            return await run(conn, hybrid, sql, *args, **kwargs)

        return recorded

    # Every way a statement can reach the database past SQLAlchemy's cursor hook.
    patches = [
        (raw_write, "_transaction_driver", recording(raw_write._transaction_driver)),
        (raw_read, "pg_driver", recording(raw_read.pg_driver)),
        *(
            (sqlite_direct, name, recorded_direct(getattr(sqlite_direct, name)))
            for name in ("fetch", "execute_many", "fetch_each")
        ),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in patches]
    engine = container.db.engine.sync_engine
    transport = httpx.ASGITransport(app=app)
    stamp = time.time_ns() % 10**12  # the key is the reference too: at most 35 characters
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for attempt in ("first", "second"):
            key = f"cap-{attempt}-{stamp}"
            if attempt == "second":
                event.listen(engine, "before_cursor_execute", hook)
                for module, name, patched in patches:
                    setattr(module, name, patched)
            try:
                response = await client.post(
                    "/v1/payments", headers=payout_headers(token, key), content=payout_body(key)
                )
            finally:
                if attempt == "second":
                    event.remove(engine, "before_cursor_execute", hook)
                    for module, name, original in originals:
                        setattr(module, name, original)
            if response.status_code != 201:
                raise RuntimeError(f"capture payout: HTTP {response.status_code} {response.text}")
    return [found for found in map(shape, statements) if found is not None]
