"""The timeline scenario: one transaction's story read from a database of a million.

    python -m bench.timeline [--smoke] [--payments N] [--samples N] [--databases ...] [--keep]

It seeds a database with ``--payments`` payments (1,000,000; 10,000 with ``--smoke``; or
``BENCH_TIMELINE_PAYMENTS``) and everything a payment leaves behind in amanat: its state
transitions, hold, ledger journal and entries, rail callbacks and status enquiries, outbox
jobs, partner events with their webhook deliveries and attempts (a tenth retried after a
500), the audit record of its creation, the idempotency record of a tenth of them
(replayed up to three times), reconciliation's copy of the settled ones, and a refund for
one collection in fifty. Partners, their balances and the customers (data subjects,
encrypted, with blind indexes) are made through amanat's own services; the bulk is written
by raw ``executemany`` on SQLite and ``COPY`` on PostgreSQL, in batches (the bench's
audit rows are not hash-chained: never verify a bench database).

Then, through the real wiring (``build_container``, as ``amanat timeline`` builds it), it
times ``TimelineService.timeline(id)`` for ``--samples`` random payment ids (1,000; 100
with ``--smoke``) and ``SearchService.search`` by reference, by partner and by a
customer's phone number, and reports p50/p95/p99/max against the goal: a timeline in
under 100 ms at p99. The check: the timeline of a known payment holds exactly the entries
its seeding implies, in order; every sampled timeline is found. A failed check exits 1;
a missed goal is reported, never failed.

SQLite always (``var/bench/timeline/``); PostgreSQL when ``postgresql://postgres@127.0.0.1:
5432`` answers (``BENCH_PG_URL``), in a database of its own, ``amanat_bench_timeline``,
created and dropped by the run. Results: bench/results/timeline.json after a full run,
var/bench/timeline-smoke.json after a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from amanat.auth.domain import Caller
from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import format_timestamp
from amanat.kernel.pakistan import make_iban
from amanat.platform.audit.domain import Actor
from amanat.platform.db.migrate import upgrade
from amanat.platform.search import SearchService
from amanat.platform.settings import DatabaseSettings, Settings
from amanat.platform.timeline import TimelineService
from bench import machine
from bench.config import RESULTS_DIR, ROOT, VAR_DIR
from bench.stats import summarize

FULL_PAYMENTS = 1_000_000
SMOKE_PAYMENTS = 10_000
GOAL_MS = 100.0
PARTNERS = 100
SUBJECTS = 1_000
BATCH = 20_000
BASE = datetime(2026, 10, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
PG_DATABASE = "amanat_bench_timeline"
ACTOR = Actor(type="cli", id="bench-timeline")
KNOWN = 10  # the payment whose timeline is checked entry by entry
ZERO_HASH = "0" * 64
BANKS = ("SCBL", "HABB", "MUCB", "UNIL")


def log(message: str) -> None:
    print(f"[bench timeline {datetime.now():%H:%M:%S}] {message}", flush=True)


# -- what a payment leaves behind ------------------------------------------------------------


def _id(prefix: str, n: int, tag: str = "JB") -> str:
    return f"{prefix}_01{tag}{n:022d}"


def payment_id(n: int) -> str:
    return _id("pay", n)


def _kind(n: int) -> str:
    return "collection" if n % 5 == 4 else "payout"


def _outcome(n: int) -> str:
    m = n % 100
    return "succeeded" if m < 90 else "failed" if m < 97 else "processing"


def _amount(n: int) -> int:
    return 10_000 + (n * 7_919) % 5_000_000


@dataclass
class World:
    """What the services made: partners (with their client and endpoint), customers."""

    payments: int
    partners: list[str]
    subjects: list[tuple[str, str | None, str | None]]  # id, bank code, IBAN's last four
    phones: list[str]  # the customers' Raast IDs, as support would type them
    audit_seq: int = 0


def created_at(world: World, n: int) -> datetime:
    """Payment ``n`` is made at its share of the 30 days the seeded history spans."""
    return BASE + timedelta(seconds=n * SPAN.total_seconds() / world.payments)


@dataclass
class Rows:
    """One batch of rows, per table, in the column order of :data:`COLUMNS`."""

    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, table: str, *row: Any) -> None:
        self.tables.setdefault(table, []).append(row)


COLUMNS: dict[str, tuple[str, ...]] = {
    "payments": (
        "id", "partner_id", "client_id", "type", "status", "amount", "currency",
        "counterparty_id", "counterparty_kind", "bank_code", "iban_last4", "reference",
        "description", "metadata", "version", "failure_code", "failure_message",
        "rail_reference", "rail_sequence", "submitted_at", "expires_at", "refunded_amount",
        "parent_id", "created_at", "updated_at",
    ),
    "payment_transitions": ("payment_id", "from_status", "to_status", "version", "cause", "at"),
    "holds": (
        "id", "account_id", "shard", "amount", "currency", "status", "created_at", "closed_at",
    ),
    "ledger_journals": ("id", "kind", "reference", "created_at"),
    "ledger_entries": ("journal_id", "account_id", "amount", "currency", "created_at"),
    "rail_events": ("event_id", "end_to_end_id", "status", "sequence", "outcome", "received_at"),
    "outbox": (
        "kind", "subject_id", "payload", "status", "attempts", "run_at", "locked_until",
        "locked_by", "last_error", "created_at", "updated_at",
    ),
    "events": (
        "id", "partner_id", "type", "object_type", "object_id", "object_version", "data",
        "created_at",
    ),
    "webhook_deliveries": (
        "id", "event_id", "endpoint_id", "partner_id", "event_type", "trigger", "status",
        "attempts", "next_attempt_at", "locked_until", "locked_by", "last_status_code",
        "last_error", "event_created_at", "first_attempt_at", "created_at", "updated_at",
    ),
    "webhook_attempts": (
        "delivery_id", "attempt", "started_at", "status_code", "latency_ms", "error_class",
        "response_excerpt",
    ),
    "audit_log": (
        "seq", "id", "occurred_at", "actor_type", "actor_id", "action", "target_type",
        "target_id", "source_ip", "user_agent", "request_id", "payload", "prev_hash", "hash",
    ),
    "idempotency_keys": (
        "id", "client_id", "key", "request_hash", "method", "path", "status",
        "response_status", "response_body", "response_headers", "created_at", "locked_until",
        "expires_at", "resource_id", "replays", "last_replayed_at",
    ),
    "webhook_endpoints": (
        "id", "partner_id", "url", "description", "enabled_events", "enabled",
        "disabled_reason", "secret", "previous_secret", "previous_secret_expires_at",
        "failing_since", "version", "created_at", "updated_at", "deleted_at",
    ),
    "recon_internal": (
        "payment_id", "partner_id", "kind", "direction", "amount", "currency", "reference",
        "settled_at", "settled_on",
    ),
}  # fmt: skip


def _partner(world: World, n: int) -> tuple[str, str, str]:
    """(partner id, client id, webhook endpoint id) of payment ``n``."""
    p = n % len(world.partners)
    return world.partners[p], _id("cli", p), _id("we", p)


def _account(partner_id: str) -> str:
    return f"merchant:{partner_id}"


def _event(
    rows: Rows,
    world: World,
    n: int,
    tag: str,
    subject: str,
    event_type: str,
    version: int,
    at: datetime,
    *,
    retried: bool,
) -> None:
    partner_id, _, endpoint_id = _partner(world, n)
    event_id = _id("evt", n, tag)
    delivery_id = _id("wd", n, tag)
    rows.add("events", event_id, partner_id, event_type, "payment", subject, version, "x", at)
    first = at + timedelta(milliseconds=100)
    last = first + timedelta(seconds=5) if retried else first
    rows.add(
        "webhook_deliveries", delivery_id, event_id, endpoint_id, partner_id, event_type,
        "event", "succeeded", 2 if retried else 1, None, None, None, 200, None, at, first,
        at, last,
    )  # fmt: skip
    if retried:
        rows.add("webhook_attempts", delivery_id, 1, first, 500, 31, None, None)
    rows.add("webhook_attempts", delivery_id, 2 if retried else 1, last, 200, 12, None, None)


def _transitions(rows: Rows, subject: str, steps: Sequence[tuple[str | None, str, str, datetime]]
                 ) -> None:  # fmt: skip
    for version, (before, after, cause, at) in enumerate(steps, start=1):
        rows.add("payment_transitions", subject, before, after, version, cause, at)


def _journal(rows: Rows, journal_id: str, kind: str, subject: str, debit: str, credit: str,
             amount: int, at: datetime) -> None:  # fmt: skip
    rows.add("ledger_journals", journal_id, kind, subject, at)
    rows.add("ledger_entries", journal_id, debit, amount, "PKR", at)
    rows.add("ledger_entries", journal_id, credit, -amount, "PKR", at)


def seed_payment(rows: Rows, world: World, n: int) -> None:
    """Payment ``n`` and all it leaves behind (times: created at t0, with the rail at t0+1 s,
    enquired at t0+2 s, final at t0+3 s; a retried webhook 5 s later)."""
    pid = payment_id(n)
    kind = _kind(n)
    outcome = _outcome(n)
    amount = _amount(n)
    partner_id, client_id, _ = _partner(world, n)
    subject, bank, last4 = world.subjects[n % len(world.subjects)]
    t0 = created_at(world, n)
    t1, t2, t3 = (t0 + timedelta(seconds=s) for s in (1, 2, 3))
    payout = kind == "payout"
    middle = "processing" if payout else "awaiting_approval"
    final = {"succeeded": "succeeded", "failed": "failed", "processing": middle}[outcome]
    terminal = outcome != "processing"
    account = _account(partner_id)
    steps: list[tuple[str | None, str, str, datetime]] = [
        (None, "pending", "created", t0),
        ("pending", middle, "rail accepted the submission", t1),
    ]
    if terminal:
        steps.append((middle, final, "rail callback", t3))
    failure = (
        ("rail_ac01", "The account number is invalid.") if outcome == "failed" else (None, None)
    )
    rows.add(
        "payments", pid, partner_id, client_id, kind, final, amount, "PKR", subject,
        "iban" if payout else "raast_id", bank if payout else None, last4 if payout else None,
        f"INV-{n}", None, "{}", len(steps), failure[0], failure[1], f"RRN{n:012d}",
        2 if terminal else 1, t0, None if payout else t0 + timedelta(minutes=15), 0, None, t0,
        steps[-1][3],
    )  # fmt: skip
    _transitions(rows, pid, steps)
    if payout:
        status = {"succeeded": "posted", "failed": "voided"}.get(outcome, "active")
        rows.add("holds", pid, account, n % 8, amount, "PKR", status, t0, t3 if terminal else None)
    if outcome == "succeeded":
        debit, credit = (account, "raast_settlement") if payout else ("raast_settlement", account)
        _journal(rows, _id("jnl", n), kind, pid, debit, credit, amount, t3)
        rows.add(
            "recon_internal", pid, partner_id, kind, "debit" if payout else "credit", amount,
            "PKR", f"INV-{n}", t3, (t3 + timedelta(hours=5)).date(),
        )  # fmt: skip
    rows.add("outbox", "rail.submit", pid, "{}", "done", 1, t0, None, None, None, t0,
             t0 + timedelta(milliseconds=200))  # fmt: skip
    if n % 10 == 0 or not terminal:
        rows.add(
            "rail_events", f"enquiry:01JB{n:022d}", pid, "accepted", 1, "ignored: duplicate", t2
        )
        rows.add("outbox", "rail.enquire", pid, "{}", "done" if terminal else "pending", 1, t2,
                 None, None, None if terminal else "not final yet", t2, t2)  # fmt: skip
    if terminal:
        rail_status = {"succeeded": "settled" if payout else "approved"}.get(
            outcome, "rejected" if payout else "declined"
        )
        rows.add("rail_events", f"rev_{n:020d}", pid, rail_status, 2, "applied", t3)
    _event(rows, world, n, "JB", pid, f"payment.{middle}", 2, t1, retried=False)
    if terminal:
        _event(rows, world, n, "JC", pid, f"payment.{final}", 3, t3, retried=n % 10 == 0)
    world.audit_seq += 1
    payload = json.dumps({"type": kind, "amount": amount, "currency": "PKR"})
    rows.add(
        "audit_log", world.audit_seq, _id("aud", n), t0, "client", client_id, "payment.created",
        "payment", pid, "10.0.0.7", "bench", _id("req", n), payload, ZERO_HASH, ZERO_HASH,
    )  # fmt: skip
    if n % 10 == 0:
        replays = (n // 10) % 4
        rows.add(
            "idempotency_keys", f"{client_id}:bench-{n}", client_id, f"bench-{n}", ZERO_HASH,
            "POST", "/v1/payments", "completed", 201, "x", "{}", t0, None,
            t0 + timedelta(hours=24), pid, replays,
            t0 + timedelta(seconds=60) if replays else None,
        )  # fmt: skip
    if not payout and outcome == "succeeded" and n % 50 == 4:
        _refund(rows, world, n, t3)


def _refund(rows: Rows, world: World, n: int, settled: datetime) -> None:
    partner_id, client_id, _ = _partner(world, n)
    subject, _, _ = world.subjects[n % len(world.subjects)]
    rid = _id("re", n)
    amount = _amount(n) // 2
    t0 = settled + timedelta(hours=1)
    t1, t3 = t0 + timedelta(seconds=1), t0 + timedelta(seconds=3)
    steps = [
        (None, "pending", "created", t0),
        ("pending", "processing", "rail accepted the submission", t1),
        ("processing", "succeeded", "rail callback", t3),
    ]
    rows.add(
        "payments", rid, partner_id, client_id, "refund", "succeeded", amount, "PKR", subject,
        "raast_id", None, None, None, None, "{}", 3, None, None, f"RRR{n:012d}", 2, t0, None, 0,
        payment_id(n), t0, t3,
    )  # fmt: skip
    _transitions(rows, rid, steps)
    account = _account(partner_id)
    rows.add("holds", rid, account, 0, amount, "PKR", "posted", t0, t3)
    _journal(rows, _id("jnl", n, "JR"), "refund", rid, account, "raast_settlement", amount, t3)


# -- writing ---------------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # As SQLAlchemy stores a DateTime in SQLite (UtcDateTime: UTC, naive).
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


class SqliteWriter:
    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        for pragma in (
            "journal_mode = WAL",
            "synchronous = OFF",
            "cache_size = -400000",
            "foreign_keys = OFF",
            "temp_store = MEMORY",
        ):
            self._conn.execute(f"PRAGMA {pragma}")

    async def write(self, rows: Rows) -> None:
        self._conn.execute("BEGIN")
        for table, values in rows.tables.items():
            columns = COLUMNS[table]
            # Table and column names are this module's own constants.
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                f"VALUES ({', '.join('?' * len(columns))})"
            )
            self._conn.executemany(sql, ([_sqlite_value(v) for v in row] for row in values))
        self._conn.execute("COMMIT")

    async def finish(self, audit_seq: int) -> None:
        self._conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1",
                           (audit_seq, ZERO_HASH))  # fmt: skip
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()


class PostgresWriter:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, dsn: str) -> PostgresWriter:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        # Foreign keys and the audit log's append-only triggers are triggers: off while
        # seeding (a superuser's session setting), as a restore would do.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("SET synchronous_commit = off")
        return cls(conn)

    async def write(self, rows: Rows) -> None:
        async with self._conn.transaction():
            for table, values in rows.tables.items():
                await self._conn.copy_records_to_table(
                    table, records=values, columns=list(COLUMNS[table])
                )

    async def finish(self, audit_seq: int) -> None:
        await self._conn.execute(
            "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", audit_seq, ZERO_HASH
        )
        await self._conn.execute("ANALYZE")  # what autovacuum does after a big load
        await self._conn.close()


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str  # SQLAlchemy URL
    raw: str  # sqlite file path or asyncpg DSN
    drop: Any = None


def _settings(target: Target, workdir: Path) -> Settings:
    return Settings(
        database=DatabaseSettings(url=target.url),
        auth={"sandbox_credentials_file": workdir / "creds.json"},
        crypto={
            "sandbox_master_key_file": workdir / "master.key",
            "audit_seal_key_file": workdir / "seal.key",
        },
    )


async def _make_world(container: Container, payments: int) -> World:
    """Partners with a balance and a webhook endpoint, and customers, made by the services."""
    partners: list[str] = []
    for p in range(PARTNERS):
        partner = await container.partners.create_partner(
            ACTOR, name=f"Bench partner {p}", roles=["merchant"], mode="sandbox"
        )
        partners.append(partner.id)
        await container.payments.top_up(Caller(partner.id, None, ACTOR), 10_000_000_000)
    subjects: list[tuple[str, str | None, str | None]] = []
    phones: list[str] = []
    for s in range(SUBJECTS):
        iban = make_iban(BANKS[s % len(BANKS)], f"{s + 1:016d}").value
        phone = f"03{s % 10}{s:08d}"
        record = await container.protection.create_subject(
            ACTOR, partners[s % PARTNERS], name=f"Customer {s}", iban=iban, raast_id=phone
        )
        subjects.append((record.id, record.bank_code, record.iban_last4))
        phones.append(phone)
    return World(payments, partners, subjects, phones)


async def _endpoints(writer: Any, world: World) -> None:
    rows = Rows()
    for p, partner_id in enumerate(world.partners):
        rows.add(
            "webhook_endpoints", _id("we", p), partner_id,
            f"https://hooks.partner{p}.example/amanat/events?token=s3cret", None, '["*"]', True,
            None, "x", None, None, None, 1, BASE, BASE, None,
        )  # fmt: skip
    await writer.write(rows)


def _batches(total: int) -> Iterator[range]:
    for start in range(0, total, BATCH):
        yield range(start, min(total, start + BATCH))


async def _seed(target: Target, container: Container, payments: int) -> tuple[World, float]:
    started = time.perf_counter()
    world = await _make_world(container, payments)
    world.audit_seq = 10_000  # after whatever the services' own records are given
    if target.name == "sqlite":
        writer: Any = SqliteWriter(Path(target.raw))
    else:
        writer = await PostgresWriter.open(target.raw)
    await _endpoints(writer, world)
    for batch in _batches(payments):
        rows = Rows()
        for n in batch:
            seed_payment(rows, world, n)
        await writer.write(rows)
        if (batch.stop // BATCH) % 10 == 0 or batch.stop == payments:
            log(f"{target.name}: {batch.stop:,} of {payments:,} payments written")
    await writer.finish(world.audit_seq)
    return world, time.perf_counter() - started


def expected_known(world: World) -> list[tuple[str, str]]:
    """The timeline payment ``KNOWN`` must have: what seed_payment wrote, oldest first."""
    n = KNOWN
    assert (_kind(n), _outcome(n), n % 10) == ("payout", "succeeded", 0)
    amount = f"{_amount(n) // 100}.{_amount(n) % 100:02d} PKR"
    host = f"hooks.partner{n % len(world.partners)}.example"
    t0 = created_at(world, n)
    replays = (n // 10) % 4
    times = "once" if replays == 1 else f"{replays} times"
    return [
        ("api", f"POST /v1/payments (Idempotency-Key bench-{n}) → 201"),
        ("state", "payout created (pending)"),
        ("ledger", f"hold of {amount} placed"),
        ("rail", "handed to the rail (it can no longer be canceled)"),
        ("audit", "payment.created"),
        ("rail", "submission job done after 1 attempt"),
        ("state", "pending → processing"),
        ("webhook", "event payment.processing raised"),
        ("webhook", f"delivery to {host} queued"),
        ("webhook", f"attempt 1 to {host}: 200"),
        ("rail", "status enquiry: the rail says accepted (sequence 1)"),
        ("rail", "status enquiry job done after 1 attempt"),
        ("state", "processing → succeeded"),
        ("ledger", "hold posted (the money left)"),
        ("ledger", f"journal payout: {amount}"),
        ("rail", "rail callback: settled (sequence 2)"),
        ("webhook", "event payment.succeeded raised"),
        ("webhook", f"delivery to {host} queued"),
        ("reconciliation", "settled payout expected in the reports"),
        ("webhook", f"attempt 1 to {host}: 500"),
        ("webhook", f"attempt 2 to {host}: 200"),
        (
            "api",
            f"Idempotency-Key bench-{n} replayed {times}, last at "
            f"{format_timestamp(t0 + timedelta(seconds=60))}",
        ),
    ]


async def _measure(
    container: Container, world: World, payments: int, samples: int, seed: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    timelines = container.get(TimelineService)
    search = container.get(SearchService)
    rng = random.Random(seed)
    found: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        found.append({"name": name, "ok": bool(ok), "detail": "" if ok else detail})

    known = await timelines.timeline(payment_id(KNOWN))
    got = [(e.source, e.title) for e in known.entries]
    want = expected_known(world)
    check(
        f"the timeline of {payment_id(KNOWN)} holds its {len(want)} entries, in order",
        got == want,
        f"got {got}",
    )
    for _ in range(20):  # warm the pool and the statement caches
        await timelines.timeline(payment_id(rng.randrange(payments)))
    latencies: list[float] = []
    entries = 0
    missing = 0
    for _ in range(samples):
        subject = payment_id(rng.randrange(payments))
        started = time.perf_counter()
        timeline = await timelines.timeline(subject)
        latencies.append((time.perf_counter() - started) * 1000)
        entries += len(timeline.entries)
        missing += not timeline.found
    check("every sampled payment has a timeline", missing == 0, f"{missing} without one")
    searches: dict[str, list[float]] = {"reference": [], "partner": [], "phone": []}
    hits: dict[str, int] = dict.fromkeys(searches, 0)
    for _ in range(max(10, samples // 10)):
        for kind, text in (
            ("reference", f"INV-{rng.randrange(payments)}"),
            ("partner", rng.choice(world.partners)),
            ("phone", rng.choice(world.phones)),
        ):
            started = time.perf_counter()
            outcome = await search.search(text)
            searches[kind].append((time.perf_counter() - started) * 1000)
            hits[kind] += len(outcome.hits)
    check("a reference finds its payment", hits["reference"] >= len(searches["reference"]))
    check("a phone number finds its customer's payments", hits["phone"] > 0)
    summary = summarize(latencies).as_dict()
    figures = {
        "timeline": summary,
        "entries_per_timeline": round(entries / max(1, samples), 1),
        "search": {kind: summarize(values).as_dict() for kind, values in searches.items()},
    }
    return figures, found


async def _run_one(target: Target, payments: int, samples: int, seed: int) -> dict[str, Any]:
    workdir = VAR_DIR / "timeline" / target.name
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"{target.name}: migrating a fresh database")
    await asyncio.to_thread(upgrade, target.url)  # alembic runs its own event loop
    container = build_container(_settings(target, workdir))
    try:
        await container.start()
        log(f"{target.name}: seeding {payments:,} payments")
        world, seeded = await _seed(target, container, payments)
        log(f"{target.name}: seeded in {seeded:,.0f} s; measuring {samples:,} timelines")
        # A container of its own, as a fresh `amanat timeline` process has.
        await container.close()
        container = build_container(_settings(target, workdir))
        figures, checks = await _measure(container, world, payments, samples, seed)
    finally:
        await container.close()
    figures["seed_s"] = round(seeded, 1)
    return {"figures": figures, "checks": checks}


def _sqlite_target() -> Target:
    folder = VAR_DIR / "timeline" / "sqlite"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "amanat.db"
    return Target("sqlite", f"sqlite+aiosqlite:///{path}", str(path))


async def _pg_admin(base: str, sql: str) -> bool:
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(f"{base}/postgres"), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
    return True


async def _pg_target(base: str) -> Target | None:
    if not await _pg_admin(base, f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'):
        return None
    await _pg_admin(base, f'CREATE DATABASE "{PG_DATABASE}"')
    url = base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{PG_DATABASE}"
    return Target("postgresql", url, f"{base}/{PG_DATABASE}")


def render(results: dict[str, Any]) -> str:
    lines = [
        f"Timeline: {results['payments']:,} payments per database ({results['mode']} run, "
        f"{results['samples']:,} timelines timed; load average at the start "
        f"{results['load_average_at_start'][0]:.2f} on {results['machine']['logical_cpus']} "
        "CPUs)",
        "",
        "| database | seed s | timeline p50 | p95 | p99 | max ms | entries | goal p99 < 100 ms "
        "| search by reference p99 | by partner p99 | by phone p99 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, outcome in results["databases"].items():
        if "skipped" in outcome:
            lines.append(f"| {name} | skipped: {outcome['skipped']} | | | | | | | | | |")
            continue
        f = outcome["figures"]
        t = f["timeline"]
        s = f["search"]
        verdict = (
            "not judged (smoke)"
            if results["mode"] == "smoke"
            else ("met" if (t["p99_ms"] or 0) < GOAL_MS else "MISSED")
        )
        lines.append(
            f"| {name} | {f['seed_s']:,} | {t['p50_ms']} | {t['p95_ms']} | {t['p99_ms']} | "
            f"{t['max_ms']} | {f['entries_per_timeline']} | {verdict} | "
            f"{s['reference']['p99_ms']} | {s['partner']['p99_ms']} | {s['phone']['p99_ms']} |"
        )
    lines.append("")
    for name, outcome in results["databases"].items():
        for c in outcome.get("checks", []):
            state = "ok    " if c["ok"] else "FAILED"
            lines.append(f"- {state} {name}: {c['name']} {c['detail']}".rstrip())
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> int:
    env = os.environ.get("BENCH_TIMELINE_PAYMENTS", "").strip()
    payments = args.payments or (
        int(env) if env else SMOKE_PAYMENTS if args.smoke else FULL_PAYMENTS
    )
    samples = args.samples or (100 if args.smoke else 1_000)
    base = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
    results: dict[str, Any] = {
        "schema": 1,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "smoke" if args.smoke else "full",
        "payments": payments,
        "samples": samples,
        "seed": args.seed,
        "goal_p99_ms": GOAL_MS,
        "git": machine.git_state(),
        "machine": {"cpu": machine.describe({})["cpu"], "logical_cpus": os.cpu_count()},
        "load_average_at_start": list(os.getloadavg()),
        "databases": {},
    }
    for name in args.databases:
        target = _sqlite_target() if name == "sqlite" else await _pg_target(base)
        if target is None:
            log(f"{name}: {base} does not answer; skipped")
            results["databases"][name] = {"skipped": f"{base} does not answer"}
            continue
        try:
            results["databases"][name] = await _run_one(target, payments, samples, args.seed)
        finally:
            if not args.keep:
                # The database, and the key files its container made beside it.
                shutil.rmtree(VAR_DIR / "timeline" / name, ignore_errors=True)
                if name == "postgresql":
                    await _pg_admin(base, f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    if not args.keep and (VAR_DIR / "timeline").is_dir():
        shutil.rmtree(VAR_DIR / "timeline", ignore_errors=True)
    where = VAR_DIR / "timeline-smoke.json" if args.smoke else RESULTS_DIR / "timeline.json"
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    print()
    print(render(results))
    print()
    log(f"results in {where.relative_to(ROOT)}")
    failed = [c for o in results["databases"].values() for c in o.get("checks", []) if not c["ok"]]
    if failed:
        log(f"{len(failed)} correctness check(s) FAILED")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.timeline", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="10,000 payments, checks only")
    parser.add_argument("--payments", type=int, default=None, help="payments to seed")
    parser.add_argument("--samples", type=int, default=None, help="timelines to time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
