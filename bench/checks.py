"""Correctness after each load, from the database and the answers: the ledger balances, no
payment was created twice, the payments match the answers, no 5xx, no unhandled exception
in the server's log. Failures of these make ``make bench-smoke`` exit non-zero."""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from amanat.bootstrap import Container
from amanat.payments.store import SqlLedgerRepository


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            **({"detail": self.detail} if self.detail else {}),
        }


async def ledger(container: Container) -> Check:
    """amanat's own ledger check (``amanat ledger check``), on one snapshot: REPEATABLE
    READ on PostgreSQL (READ COMMITTED would compare sums taken at different moments while
    the worker posts), a deferred read transaction on SQLite (a WAL snapshot)."""
    engine = container.db.engine
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            problems = await SqlLedgerRepository(conn).check()
    return Check("ledger balances", not problems, "; ".join(problems[:5]))


async def no_duplicate_payments(engine: AsyncEngine) -> Check:
    """Every bench request carries its Idempotency-Key as the payout's reference, so two
    payments with one reference would be one request executed twice."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT reference, COUNT(*) FROM payments WHERE reference IS NOT NULL "
                    "GROUP BY reference HAVING COUNT(*) > 1 LIMIT 5"
                )
            )
        ).all()
    return Check("no payment created twice", not rows, ", ".join(f"{r[0]} x{r[1]}" for r in rows))


async def count_payments(engine: AsyncEngine, prefix: str | None = None) -> int:
    query = "SELECT COUNT(*) FROM payments"
    params: dict[str, Any] = {}
    if prefix is not None:
        query += " WHERE reference LIKE :prefix"
        params["prefix"] = prefix + "%"
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text(query), params)).scalar_one())


async def newest_references(engine: AsyncEngine, count: int) -> list[str | None]:
    if count <= 0:
        return []
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT reference FROM payments ORDER BY created_at DESC, id DESC LIMIT :n"),
            {"n": min(count, 5)},
        )
        return [r[0] for r in rows]


async def open_transactions(engine: AsyncEngine) -> Check | None:
    """PostgreSQL only: sessions of the bench database (other than this one) that have sat
    idle inside a transaction for more than 5 s after the load ended: a request that left
    its transaction (and its pooled connection) behind. (The worker's transactions are
    idle in transaction between their statements for milliseconds: not counted.)"""
    if engine.dialect.name != "postgresql":
        return None
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT CASE WHEN state = 'idle in transaction' "
                    "AND now() - state_change > interval '5 seconds' "
                    "THEN 'stuck in transaction' ELSE state END, "
                    "COUNT(*), MAX(now() - state_change) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "GROUP BY 1"
                )
            )
        ).all()
    states = {str(r[0]): (int(r[1]), r[2]) for r in rows}
    stuck = states.get("stuck in transaction", (0, None))
    return Check(
        "no transaction left open after the load",
        stuck[0] == 0,
        ", ".join(f"{state}: {n}" for state, (n, _) in sorted(states.items()))
        + (f"; the oldest idle in its transaction for {stuck[1]}" if stuck[0] else ""),
    )


def created_match(created: int, ok: int, unanswered: int) -> Check:
    """Each 201 is a payment; requests without an answer (cut off at the end of the run,
    errors) may or may not have made one."""
    good = ok <= created <= ok + unanswered
    return Check(
        "payments match the 201 answers",
        good,
        f"{created} payments for {ok} answers of 201 (+ at most {unanswered} unanswered)",
    )


def no_5xx(status: dict[str, int]) -> Check:
    count = status.get("5xx", 0)
    return Check("no 5xx", count == 0, f"{count} answers were 5xx" if count else "")


def log_offset(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def server_log_clean(path: Path, offset: int, who: str = "server") -> Check:
    """No error-level record (an unhandled exception, a crashed job) since ``offset`` in a
    JSON log of the server or the worker."""
    name = f"no unhandled exception in the {who} log"
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError as exc:
        return Check(name, False, str(exc))
    bad = []
    for line in text.splitlines():
        if '"error"' not in line and '"critical"' not in line and "Traceback" not in line:
            continue  # the server logs every request: parse only the candidates
        try:
            record = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                bad.append(line[:200])
            continue
        if isinstance(record, dict) and record.get("level") in {"error", "critical"}:
            bad.append(f"{record.get('event')}: {str(record.get('exception', ''))[-800:]}")
    return Check(name, not bad, f"{len(bad)}: {bad[0]}" if bad else "")


# -- scale-out: two workers, one database ----------------------------------------------------


def overlapping_duplicates(deliveries: list[dict[str, Any]]) -> list[str]:
    """``endpoint/webhook-id`` of every webhook that was being received twice at one
    endpoint at the same moment: two workers sending one delivery at once. (A retry after
    the first attempt was answered does not overlap it, and is not counted here.) Each
    delivery is the receiver's record: ``started_at`` .. ``answered_at`` (an unanswered
    one lasts for ever)."""
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for d in deliveries:
        if not d.get("webhook_id"):
            continue
        begun = float(d.get("started_at", d.get("received_at", 0.0)))
        ended = float(d.get("answered_at") or float("inf"))
        spans.setdefault((str(d["endpoint"]), str(d["webhook_id"])), []).append((begun, ended))
    found = []
    for (endpoint, webhook_id), intervals in spans.items():
        intervals.sort()
        if any(later[0] < earlier[1] for earlier, later in pairwise(intervals)):
            found.append(f"{endpoint}/{webhook_id}")
    return sorted(found)


def events_per_subject(log_text: str, event: str, field: str) -> dict[str, int]:
    """How many times each ``field`` value appears in JSON log records whose ``event`` is
    ``event`` (e.g. ``rail_submitted`` by ``payment_id``: how often each payment was sent to
    the rail), over the lines of one or more JSON logs."""
    counts: dict[str, int] = {}
    for line in log_text.splitlines():
        if event not in line:
            continue  # parse only the candidates
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event and field in record:
            key = str(record[field])
            counts[key] = counts.get(key, 0) + 1
    return counts


def accepted_within_quota(statuses: list[int | None], quota: int) -> Check:
    """The shared-limit check: requests of one client spread over several API processes
    that share their counters may succeed at most ``quota`` times in the window; the rest
    must be 429 (anything else is a failure of its own)."""
    accepted = sum(1 for s in statuses if s is not None and 200 <= s < 300)
    limited = sum(1 for s in statuses if s == 429)
    other = len(statuses) - accepted - limited
    return Check(
        "rate limit shared by the API processes",
        accepted <= quota and other == 0 and limited > 0,
        f"{accepted} accepted, {limited} answered 429, {other} other, of {len(statuses)} "
        f"requests against a quota of {quota}",
    )


def rail_counts(state_file: Path) -> tuple[int, int]:
    """(transfers, replays) in the sandbox rail's own file: how many payments it took, and
    how many times one it already had was submitted again (answered as a replay)."""
    import sqlite3

    if not state_file.is_file():
        return 0, 0
    conn = sqlite3.connect(state_file, timeout=10)  # reads only; WAL lets the rail write on
    try:
        row = conn.execute("SELECT COUNT(*), COALESCE(SUM(replays), 0) FROM transfers").fetchone()
    except sqlite3.Error:
        return 0, 0
    finally:
        conn.close()
    return int(row[0]), int(row[1])


def sent_once(
    logged: dict[str, int], new_transfers: int, new_replays: int, who: str = "two workers"
) -> Check:
    """No payment sent to the rail twice, by two witnesses: the workers' ``rail_submitted``
    log records (one per accepted submission) and the rail's own count of resubmissions.
    A rail that took payments while the logs name none means the log event changed, and
    the first witness is blind: that fails too, rather than passing unseen."""
    twice = sorted(p for p, n in logged.items() if n > 1)
    blind = new_transfers > 0 and not logged
    problems = []
    if twice:
        problems.append(
            f"{len(twice)} payments logged as submitted more than once, e.g. {twice[:3]}"
        )
    if new_replays:
        problems.append(f"the rail answered {new_replays} resubmissions of payments it had")
    if blind:
        problems.append(
            f"the rail took {new_transfers} payments but the logs name no rail_submitted"
        )
    return Check(
        f"no payment sent to the rail twice ({who})",
        not problems,
        "; ".join(problems)
        or f"{sum(logged.values())} submissions logged, {new_transfers} new at the rail, "
        "no resubmission",
    )
