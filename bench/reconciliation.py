"""The reconciliation scenario: a day's rail settlement report against amanat's ledger.

    python -m bench.reconciliation [--rows N] [--smoke] [--seed S] [--shuffle]

It makes a ledger of settled payments (``InternalItem``) and the rail's settlement report
for them in the ``sandbox_rail`` CSV format, about ``--rows`` rows (1,000,000; 20,000 with
``--smoke``; or ``BENCH_RECONCILIATION_ROWS``), with about 1 % breaks, a fifth of them of
each kind: payments without a row (unmatched internal), rows for payments amanat never made
(unmatched external), rows for more than the payment (amount mismatch), rows reported twice
(duplicate), and payments of which only one part settled (partially matched, the rest
unmatched). Besides those, 0.2 % of the payments settle in two rows (both parts arrive), 2 %
are in batches whose rows carry the rail's fee, and 0.1 % settle tomorrow (not yet due: no
row, no break). The file lists rows by settlement time, as the rail writes it (``--shuffle``:
in random order, which costs the engine a real sort).

Measured, end to end: the file's bytes parsed (``parse_csv``), matched (``match``) and the
outcomes summed up, wall time, rows per second and the process's peak RSS; beside it a bare
hash join of the same file and ledger in DuckDB (reading the CSV itself, on all cores),
measured in the same run. Then correctness checks: break counts per kind equal what was
injected, matched plus open equals the totals on both sides, no record used twice. A failed
check exits 1; missed targets (10 s, 100,000 rows/s, 2 GB) are reported, never failed.

Results: bench/results/reconciliation.json after a full run, var/bench/reconciliation-smoke
.json after a smoke run, each with the previous run's figures beside this run's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from amanat.reconciliation.domain.csv_import import PROFILES, parse_csv
from amanat.reconciliation.domain.matching import match
from amanat.reconciliation.domain.records import (
    Direction,
    InternalItem,
    MatchResult,
    MatchRules,
    Outcome,
)
from bench import machine
from bench.config import RESULTS_DIR, ROOT, VAR_DIR

FULL_ROWS = 1_000_000
SMOKE_ROWS = 20_000
DAY = date(2026, 3, 2)
# The rail's source: exact amounts, and a transfer may settle in parts.
RULES = MatchRules(amount_tolerance=0, date_tolerance_days=0, allow_partial=True)
HEADER = (
    "transfer_id,end_to_end_id,direction,amount,currency,settled_at,settlement_date,batch_id,fee"
)
BREAK_KINDS = ("missing", "extra", "mismatch", "duplicate", "part_only")
TARGETS = {"seconds": 10.0, "rows_per_s": 100_000, "rss_mb": 2048}
BATCH_SIZE = 50
FEE_BPS = 50  # the rail keeps 0.5 % of a batched transfer


def log(message: str) -> None:
    print(f"[bench reconciliation {datetime.now():%H:%M:%S}] {message}", flush=True)


# -- the data ------------------------------------------------------------------------------


@dataclass
class World:
    """The ledger, the report, and what was put in it on purpose."""

    items: list[InternalItem]
    data: bytes
    rows: int
    injected: Counter[str]
    fees: int  # total fees the rail kept on batched rows
    split: int  # payments settled in two rows, both present
    not_due: int
    expected_breaks: dict[str, int] = field(default_factory=dict)


def make_world(rows: int, seed: int, shuffle: bool) -> World:
    """About ``rows`` report rows for a ledger of about as many payments."""
    rng = random.Random(seed)
    per_kind = max(1, rows // 500)  # 0.2 % of each break kind: 1 % breaks in all
    split = per_kind
    not_due = max(1, rows // 1000)
    # Rows: a row per payment reported (all but the missing and those not yet due), plus
    # a second row per duplicate and per split, plus the extras.
    missing = duplicates = extras = per_kind
    payments = rows + missing + not_due - duplicates - split - extras
    yymmdd = f"{DAY:%y%m%d}"
    tomorrow = DAY + timedelta(days=1)
    items = []
    for n in range(payments):
        items.append(
            InternalItem(
                payment_id=f"pay_01JQ{n:022d}",
                partner_id=f"prt_{n % 1000:04d}",
                direction=Direction.DEBIT if rng.random() < 0.6 else Direction.CREDIT,
                amount=rng.randrange(10_000, 50_000_000),
                currency="PKR",
                settled_on=tomorrow if n < not_due else DAY,
            )
        )
    # Who gets what: payments 0..not_due-1 settle tomorrow; then a block per kind.
    order = list(range(not_due, payments))
    rng.shuffle(order)
    kinds: dict[int, str] = {}
    cursor = 0
    for kind in ("missing", "mismatch", "duplicate", "part_only", "split"):
        for n in order[cursor : cursor + per_kind]:
            kinds[n] = kind
        cursor += per_kind
    batched = order[cursor : cursor + rows // 50]  # 2 % in batches of BATCH_SIZE
    batch_of = {n: f"BAT{yymmdd}{k // BATCH_SIZE:05d}" for k, n in enumerate(batched)}

    # Each row: (position in the day, end_to_end_id, direction, amount, batch, fee).
    lines: list[tuple[float, str, str, int, str, int]] = []
    fees = 0
    for n in order:
        item = items[n]
        kind = kinds.get(n)
        if kind == "missing":
            continue
        at = rng.random()
        way = item.direction.value
        if kind == "mismatch":
            lines.append((at, item.payment_id, way, item.amount + rng.randrange(1, 5_000), "", 0))
        elif kind in ("split", "part_only"):
            first = rng.randrange(1, item.amount)
            lines.append((at, item.payment_id, way, first, "", 0))
            if kind == "split":
                lines.append((rng.random(), item.payment_id, way, item.amount - first, "", 0))
        elif n in batch_of:
            fee = max(1, item.amount * FEE_BPS // 10_000)
            fees += fee
            lines.append((at, item.payment_id, way, item.amount, batch_of[n], fee))
        else:
            lines.append((at, item.payment_id, way, item.amount, "", 0))
            if kind == "duplicate":  # the same transfer again, later in the day
                lines.append((min(at + 0.01, 0.999), item.payment_id, way, item.amount, "", 0))
    for n in range(per_kind):  # transfers for payments amanat never made
        way = rng.choice(("credit", "debit"))
        ghost = f"pay_01JR{n:022d}"
        lines.append((rng.random(), ghost, way, rng.randrange(10_000, 5_000_000), "", 0))
    # The rail numbers its transfers as they settle and lists them in that order.
    lines.sort()
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC) - timedelta(hours=5)
    text = []
    for number, (at, e2e, way, amount, batch, fee) in enumerate(lines, start=1):
        settled = start + timedelta(seconds=at * 86_399)
        stamp = settled.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
        text.append(
            f"RRN{yymmdd}{number:07d},{e2e},{way},{_decimal(amount)},PKR,{stamp},{DAY},"
            f"{batch},{_decimal(fee) if fee else ''}"
        )
    if shuffle:
        rng.shuffle(text)
    text.insert(0, HEADER)
    data = ("\r\n".join(text) + "\r\n").encode()
    injected = Counter(dict.fromkeys(BREAK_KINDS, per_kind))
    world = World(items, data, len(lines), injected, fees, split, not_due)
    world.expected_breaks = {
        Outcome.UNMATCHED_INTERNAL.value: per_kind * 2,  # missing, and part_only's rest
        Outcome.UNMATCHED_EXTERNAL.value: per_kind,
        Outcome.AMOUNT_MISMATCH.value: per_kind,
        Outcome.DUPLICATE.value: per_kind,
    }
    return world


def _decimal(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


# -- the measurement -----------------------------------------------------------------------


def peak_rss_mb() -> float:
    """The process's peak resident memory since it started."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak() -> bool:
    """Start /proc's peak (VmHWM) afresh, so that the measurement's own peak shows apart
    from the making of the data before it. False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def status_mb(field_name: str) -> float:
    """A figure of /proc/self/status (VmRSS: now, VmHWM: peak), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def summarise(result: MatchResult) -> dict[str, Any]:
    """What an operator's summary of the run shows: counts and money per outcome."""
    matches: Counter[Outcome] = Counter()
    matched_money: Counter[Outcome] = Counter()
    fees = 0
    for m in result.matches:
        matches[m.outcome] += 1
        matched_money[m.outcome] += m.amount
        fees += m.fees
    breaks: Counter[Outcome] = Counter()
    break_money: Counter[Outcome] = Counter()
    for b in result.breaks:
        breaks[b.kind] += 1
        break_money[b.kind] += b.amount
    return {
        "matches": {k.value: v for k, v in matches.items()},
        "matched_minor": {k.value: v for k, v in matched_money.items()},
        "fees_minor": fees,
        "breaks": {k.value: v for k, v in breaks.items()},
        "breaks_minor": {k.value: v for k, v in break_money.items()},
        "open_internal": len(result.open_internal),
        "open_external": len(result.open_external),
    }


def measure(world: World) -> tuple[dict[str, Any], MatchResult, list[Any]]:
    before = status_mb("VmRSS")
    fresh_peak = reset_peak()
    cpu_started = time.process_time()
    started = time.perf_counter()
    records = parse_csv(world.data, PROFILES["sandbox_rail"])
    parsed = time.perf_counter()
    result = match(world.items, records, RULES, as_of=DAY)
    matched = time.perf_counter()
    summary = summarise(result)
    done = time.perf_counter()
    cpu = time.process_time() - cpu_started
    total = done - started
    figures = {
        "rows": world.rows,
        "payments": len(world.items),
        "file_mb": round(len(world.data) / 2**20, 1),
        "parse_s": round(parsed - started, 3),
        "match_s": round(matched - parsed, 3),
        "summarise_s": round(done - matched, 3),
        "seconds": round(total, 3),
        # Below the wall time when other processes had the CPU: the figures understate.
        "cpu_s": round(cpu, 3),
        "rows_per_s": round(world.rows / total),
        "rss_mb": round(peak_rss_mb()),
        "rss_before_mb": round(before),
        "rss_peak_during_mb": round(status_mb("VmHWM")) if fresh_peak else None,
        "summary": summary,
    }
    return figures, result, records


def duckdb_baseline(world: World) -> dict[str, Any]:
    """A bare hash join of the same file and ledger in DuckDB: read the CSV, join on the
    end-to-end id, count and sum. The ledger is loaded before the clock starts (amanat's
    ledger is in memory too); DuckDB reads the file from disk (the page cache, after the
    first read)."""
    try:
        import duckdb  # the dev extra: absent after `make install`
    except ImportError:
        return {"status": "unavailable", "reason": "duckdb is not installed (make install-dev)"}
    with tempfile.TemporaryDirectory(prefix="amanat-bench-recon-") as tmp:
        report = Path(tmp) / "settlement.csv"
        report.write_bytes(world.data)
        ledger = Path(tmp) / "ledger.csv"
        with ledger.open("w") as out:
            out.write("payment_id,amount\n")
            out.writelines(f"{item.payment_id},{item.amount}\n" for item in world.items)
        con = duckdb.connect()
        con.execute(
            "CREATE TABLE ledger AS SELECT * FROM read_csv(?, header = true, "
            "columns = {'payment_id': 'VARCHAR', 'amount': 'BIGINT'})",
            [str(ledger)],
        )
        query = """
            SELECT count(l.payment_id) AS joined,
                   count(*) FILTER (WHERE r.amount = l.amount) AS equal_amounts,
                   count(*) FILTER (WHERE l.payment_id IS NULL) AS unknown_rows,
                   sum(r.amount) AS report_minor
            FROM (SELECT end_to_end_id,
                         CAST(round(amount * 100) AS BIGINT) AS amount
                  FROM read_csv(?, header = true, columns = {
                      'transfer_id': 'VARCHAR', 'end_to_end_id': 'VARCHAR',
                      'direction': 'VARCHAR', 'amount': 'DECIMAL(18,2)',
                      'currency': 'VARCHAR', 'settled_at': 'VARCHAR',
                      'settlement_date': 'DATE', 'batch_id': 'VARCHAR', 'fee': 'DECIMAL(18,2)'
                  })) r
            LEFT JOIN ledger l ON r.end_to_end_id = l.payment_id
        """
        out: dict[str, Any] = {"status": "ok", "version": duckdb.__version__}
        for threads in (os.cpu_count() or 1, 1):
            con.execute(f"SET threads = {threads}")
            con.execute(query, [str(report)]).fetchall()  # warm: the file in the page cache
            started = time.perf_counter()
            row = con.execute(query, [str(report)]).fetchone()
            out[f"seconds_{threads}_threads"] = round(time.perf_counter() - started, 3)
            assert row is not None
            out["joined"], out["equal_amounts"], out["unknown_rows"] = row[0], row[1], row[2]
        con.close()
    out["threads"] = os.cpu_count() or 1
    out["seconds"] = out[f"seconds_{out['threads']}_threads"]
    return out


# -- the checks ----------------------------------------------------------------------------


def checks(world: World, result: MatchResult, records: list[Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        found.append({"name": name, "ok": bool(ok), "detail": "" if ok else detail})

    check("every row parsed", len(records) == world.rows, f"{len(records)} of {world.rows}")
    breaks = Counter(b.kind.value for b in result.breaks)
    for kind, expected in world.expected_breaks.items():
        check(
            f"{kind} breaks = injected", breaks[kind] == expected, f"{breaks[kind]} != {expected}"
        )
    partial = sum(m.outcome is Outcome.PARTIALLY_MATCHED for m in result.matches)
    expected_partial = world.split + world.injected["part_only"]
    check("partial settlements", partial == expected_partial, f"{partial} != {expected_partial}")
    fees = sum(m.fees for m in result.matches)
    check("the batches' fees", fees == world.fees, f"{fees} != {world.fees}")

    consumed = [x for m in result.matches for x in m.external_ids]
    check("each record used at most once", len(consumed) == len(set(consumed)))
    all_ids = {r.external_id for r in records}
    open_ids = {r.external_id for r in result.open_external}
    check(
        "external: consumed + open = every row",
        set(consumed) | open_ids == all_ids and not set(consumed) & open_ids,
        f"{len(consumed)} consumed + {len(open_ids)} open for {len(all_ids)} rows",
    )
    by_id = {r.external_id: r for r in records}
    # The bank kept its fee from money in and took it with money out.
    booked = sum(
        by_id[x].amount
        + (by_id[x].fees if by_id[x].direction is Direction.CREDIT else -by_id[x].fees)
        for x in consumed
    )
    allocated = sum(a for m in result.matches for _, a in m.allocations)
    check(
        "external money: booked + fees = allocated", booked == allocated, f"{booked} != {allocated}"
    )
    remaining = sum(i.amount - i.matched for i in result.open_internal)
    ledger = sum(i.amount for i in world.items)
    check(
        "internal money: matched + open = the ledger",
        allocated + remaining == ledger,
        f"{allocated} + {remaining} != {ledger}",
    )
    tomorrow = [i for i in result.open_internal if i.settled_on > DAY]
    reported = {b.internal_id for b in result.breaks}
    check(
        "payments not yet due: carried, no break",
        len(tomorrow) == world.not_due and not {i.payment_id for i in tomorrow} & reported,
        f"{len(tomorrow)} carried, expected {world.not_due}",
    )
    check("no break without a cause", all(b.suggested_cause for b in result.breaks))
    return found


# -- the report ----------------------------------------------------------------------------


def render(results: dict[str, Any], previous: dict[str, Any] | None) -> str:
    f = results["figures"]
    base = results["baseline"]
    prev = (previous or {}).get("figures", {})

    def was(key: str) -> str:
        value = prev.get(key)
        return "—" if value is None else f"{value:,}"

    def target(ok: bool) -> str:
        return "not judged (smoke)" if results["mode"] == "smoke" else ("met" if ok else "MISSED")

    lines = [
        f"Reconciliation: {f['rows']:,} rows ({f['file_mb']} MB of sandbox_rail CSV) against "
        f"{f['payments']:,} payments ({results['mode']} run, seed {results['seed']}"
        f"{', shuffled file' if results['shuffle'] else ''}; load average at the start "
        f"{results['load_average_at_start'][0]:.2f} on {results['machine']['logical_cpus']} "
        "CPUs)",
        "",
        "| figure | this run | previous run | target |",
        "|---|---|---|---|",
        f"| parse s | {f['parse_s']:,} | {was('parse_s')} | |",
        f"| match s | {f['match_s']:,} | {was('match_s')} | |",
        f"| summarise s | {f['summarise_s']:,} | {was('summarise_s')} | |",
        f"| end to end s | {f['seconds']:,} | {was('seconds')} | ≤ 10: "
        f"{target(f['seconds'] <= TARGETS['seconds'])} |",
        f"| CPU s of this process (below the wall time: the machine was shared) | "
        f"{f['cpu_s']:,} | {was('cpu_s')} | |",
        f"| rows/s | {f['rows_per_s']:,} | {was('rows_per_s')} | ≥ 100,000: "
        f"{target(f['rows_per_s'] >= TARGETS['rows_per_s'])} |",
        f"| peak RSS MB (process) | {f['rss_mb']:,} | {was('rss_mb')} | ≤ 2,048: "
        f"{target(f['rss_mb'] <= TARGETS['rss_mb'])} |",
        f"| RSS MB before the clock (ledger and file made) | {f['rss_before_mb']:,} | "
        f"{was('rss_before_mb')} | |",
        f"| peak RSS MB while measured | {f['rss_peak_during_mb'] or 0:,} | "
        f"{was('rss_peak_during_mb')} | |",
    ]
    if base.get("status") == "ok":
        t = base["threads"]
        lines += [
            f"| DuckDB {base['version']} hash join s, {t} threads | {base['seconds']:,} | "
            f"{(previous or {}).get('baseline', {}).get('seconds', '—')} | |",
            f"| DuckDB hash join s, 1 thread | {base['seconds_1_threads']:,} | | |",
            f"| amanat ÷ DuckDB ({t} threads) | {f['seconds'] / base['seconds']:.1f}× slower | | |",
            f"| amanat ÷ DuckDB (1 thread) | {f['seconds'] / base['seconds_1_threads']:.1f}× "
            "slower | | |",
        ]
    else:
        lines.append(f"| DuckDB baseline | unavailable: {base.get('reason')} | | |")
    s = f["summary"]
    lines += [
        "",
        f"Matches: {s['matches']}; breaks: {s['breaks']}; open: "
        f"{s['open_internal']:,} payments, {s['open_external']:,} rows.",
    ]
    lines.append("")
    for c in results["checks"]:
        lines.append(f"- {'ok    ' if c['ok'] else 'FAILED'} {c['name']} {c['detail']}".rstrip())
    if results["mode"] == "smoke":
        lines += ["", "Smoke run: the figures show the report's shape, not the product's speed."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reconciliation", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="small, correctness checks only")
    parser.add_argument("--rows", type=int, default=None, help="rows of the report")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shuffle", action="store_true", help="rows in random order")
    args = parser.parse_args(argv)
    env_rows = os.environ.get("BENCH_RECONCILIATION_ROWS", "").strip()
    rows = args.rows or (int(env_rows) if env_rows else SMOKE_ROWS if args.smoke else FULL_ROWS)
    where = (
        VAR_DIR / "reconciliation-smoke.json" if args.smoke else RESULTS_DIR / "reconciliation.json"
    )
    try:
        previous = json.loads(where.read_text())
    except (OSError, ValueError):
        previous = None

    log(f"making {rows:,} rows and their ledger (seed {args.seed})")
    world = make_world(rows, args.seed, args.shuffle)
    log(f"measuring: parse, match, summarise ({len(world.data) / 2**20:.0f} MB)")
    figures, result, records = measure(world)
    log("checking")
    found = checks(world, result, records)
    del result, records
    log("baseline: DuckDB")
    baseline = duckdb_baseline(world)
    results = {
        "schema": 1,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "smoke" if args.smoke else "full",
        "seed": args.seed,
        "shuffle": args.shuffle,
        "git": machine.git_state(),
        "machine": {"cpu": machine.describe({})["cpu"], "logical_cpus": os.cpu_count()},
        "load_average_at_start": list(os.getloadavg()),
        "rules": {"amount_tolerance": 0, "date_tolerance_days": 0, "allow_partial": True},
        "injected": dict(world.injected, split=world.split, not_due=world.not_due),
        "figures": figures,
        "baseline": baseline,
        "targets": TARGETS,
        "checks": found,
        "previous": previous
        and {"figures": previous.get("figures"), "baseline": previous.get("baseline")},
    }
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print()
    print(render(results, previous))
    print()
    failed = [c for c in found if not c["ok"]]
    log(f"results in {where.relative_to(ROOT)}")
    if failed:
        log(f"{len(failed)} correctness check(s) FAILED")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
