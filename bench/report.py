"""Targets, and the results as JSON (bench/results/latest.json) and Markdown (the table in
bench/README.md between the results markers). Pure functions of the results dict."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"

DB_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
TITLES = {
    "create_spread": "Create payout, spread over the merchants",
    "create_hot": "Create payout, one hot merchant",
    "replay": "Idempotent replay",
    "retrieve": "Retrieve a payment by id",
    "list": "List, page of 20",
    "webhooks": "Webhook deliveries while payments flow",
    "webhook_worker": "Webhook deliveries, one worker, events committed at a steady rate",
    "token": "Token issuance (POST /oauth/token)",
    "scale_out": "Scale-out: create payout through 2 × `amanat serve` (+ 2 workers, Redis)",
    "sigkill": "SIGKILL drill: create payout, API process group killed halfway and restarted",
}


@dataclass(frozen=True)
class Criterion:
    """One measurable condition of a target: ``metric`` of ``scenario`` on ``database``."""

    database: str | None
    scenario: str | None
    metric: str  # throughput | p99 | ratio_payment_shaped | vs_spread | vs_bare_app | api_rss
    op: str  # ">=" or "<="
    threshold: float
    unit: str  # "/s", "ms", "x", "MB"
    label: str = ""  # names the value when a target has several (e.g. "replay")


@dataclass(frozen=True)
class Target:
    id: str
    text: str  # the wording
    goal: str
    criteria: tuple[Criterion, ...]

    @property
    def subject(self) -> tuple[str | None, str | None]:
        """The scenario whose conditions and ratios the row shows."""
        first = self.criteria[0]
        return first.database, first.scenario


PG, LITE = "postgresql", "sqlite"

# Exactly the table ([09]); every ratio is to a baseline measured in the same run.
TARGETS: tuple[Target, ...] = (
    Target(
        "pg_create",
        "create payout, PostgreSQL, 64 connections, spread over merchants",
        "≥ 1,500/s, p99 ≤ 100 ms",
        (
            Criterion(PG, "create_spread", "throughput", ">=", 1500, "/s"),
            Criterion(PG, "create_spread", "p99", "<=", 100, "ms", "p99"),
        ),
    ),
    Target(
        "pg_create_vs_payment_shaped",
        "the same, as a ratio to a payment-shaped pgbench transaction measured in the same "
        "run (five inserts and one commit, no shared lock)",
        "≥ 0.30",
        (Criterion(PG, "create_spread", "ratio_payment_shaped", ">=", 0.30, "x"),),
    ),
    Target(
        "pg_hot",
        "one hot merchant, as a share of the spread figure",
        "≥ 0.80",
        (Criterion(PG, "create_hot", "vs_spread", ">=", 0.80, "x"),),
    ),
    Target(
        "sqlite_create",
        "create payout, SQLite, 16 connections",
        "≥ 400/s, p99 ≤ 200 ms",
        (
            Criterion(LITE, "create_spread", "throughput", ">=", 400, "/s"),
            Criterion(LITE, "create_spread", "p99", "<=", 200, "ms", "p99"),
        ),
    ),
    Target(
        "pg_replay_retrieve",
        "idempotent replay and retrieve by id, PostgreSQL",
        "≥ 4,000/s",
        (
            Criterion(PG, "replay", "throughput", ">=", 4000, "/s", "replay"),
            Criterion(PG, "retrieve", "throughput", ">=", 4000, "/s", "retrieve"),
        ),
    ),
    Target(
        "stack_vs_bare_app",
        "bare endpoint through the whole middleware stack, as a ratio to a bare FastAPI app "
        "in the same run",
        "≥ 0.60",
        (Criterion(PG, "echo", "vs_bare_app", ">=", 0.60, "x"),),
    ),
    Target(
        "pg_webhooks",
        "webhook deliveries, one worker, signed, to a local receiver",
        "≥ 1,000/s, event-to-first-attempt p99 ≤ 1 s",
        (
            Criterion(PG, "webhook_worker", "throughput", ">=", 1000, "/s"),
            Criterion(PG, "webhook_worker", "p99", "<=", 1000, "ms", "p99"),
        ),
    ),
    Target(
        "api_rss",
        "API process RSS",
        "≤ 200 MB",
        (Criterion(None, None, "api_rss", "<=", 200, "MB", ""),),
    ),
)


def _scenario(results: dict[str, Any], database: str | None, name: str | None) -> dict[str, Any]:
    if database is None or name is None:
        return {}
    phase = results.get("databases", {}).get(database, {})
    if name in {"echo", "bare_app"}:
        baseline: dict[str, Any] = phase.get("baselines", {}).get(name, {})
        return baseline if baseline.get("status") in {"ok", "failed"} else {}
    found: dict[str, Any] = phase.get("scenarios", {})
    scenario: dict[str, Any] = found.get(name, {})
    return scenario if scenario.get("status") in {"ok", "failed"} else {}


def _database_of(results: dict[str, Any], criterion: Criterion) -> str | None:
    """The echo-versus-bare ratio has no database in it: PostgreSQL's phase when it ran,
    else SQLite's."""
    if criterion.metric != "vs_bare_app":
        return criterion.database
    for database in (PG, LITE):
        if _scenario(results, database, "echo"):
            return database
    return criterion.database


def _metric(results: dict[str, Any], criterion: Criterion) -> float | None:
    database = _database_of(results, criterion)
    scenario = _scenario(results, database, criterion.scenario)
    getters: dict[str, Callable[[], Any]] = {
        "throughput": lambda: scenario.get("throughput_rps"),
        "p99": lambda: scenario.get("latency_ms", {}).get("p99"),
        "ratio_payment_shaped": lambda: scenario.get("ratio", {}).get("payment_shaped"),
        "vs_spread": lambda: _vs_spread(results, database),
        "vs_bare_app": lambda: scenario.get("ratio", {}).get("bare_app"),
        "api_rss": lambda: peak_api_rss(results),
    }
    value = getters[criterion.metric]()
    return None if value is None else float(value)


def _vs_spread(results: dict[str, Any], database: str | None) -> float | None:
    hot = _scenario(results, database, "create_hot").get("throughput_rps")
    spread = _scenario(results, database, "create_spread").get("throughput_rps")
    return hot / spread if hot is not None and spread else None


def peak_api_rss(results: dict[str, Any], key: str = "api_largest_process") -> float | None:
    """The peak RSS of one API process (``key="api"``: of all of them together) over the
    scenarios of the product's server (the bare FastAPI baseline is not amanat)."""
    peaks = [
        scenario.get("rss_mb", {}).get(key)
        for phase in results.get("databases", {}).values()
        for scenario in phase.get("scenarios", {}).values()
    ]
    known = [p for p in peaks if p is not None]
    return max(known) if known else None


def judge(value: float | None, criterion: Criterion) -> str:
    if value is None:
        return "not measured"
    if criterion.op == ">=":
        return "met" if value >= criterion.threshold else "missed"
    return "met" if value <= criterion.threshold else "missed"


def _combined(statuses: list[str]) -> str:
    if "missed" in statuses:
        return "missed"
    if "not measured" in statuses:
        return "not measured"
    return "met"


def measured_text(values: list[float | None], criteria: tuple[Criterion, ...]) -> str:
    """ "106/s, p99 1,861 ms"; "replay 565/s, retrieve 575/s"."""
    parts = []
    for value, criterion in zip(values, criteria, strict=True):
        quantity = _quantity(value, criterion.unit)
        parts.append(f"{criterion.label} {quantity}" if criterion.label else quantity)
    return ", ".join(parts)


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for target in TARGETS:
        values = [_metric(results, c) for c in target.criteria]
        statuses = [judge(v, c) for v, c in zip(values, target.criteria, strict=True)]
        database, name = target.subject
        first = target.criteria[0]
        scenario = _scenario(results, _database_of(results, first), name)
        ratio = scenario.get("ratio", {})
        rows.append(
            {
                "id": target.id,
                "target": target.text,
                "goal": target.goal,
                "values": [None if v is None else round(v, 3) for v in values],
                "criteria": [
                    {"metric": c.metric, "op": c.op, "threshold": c.threshold, "unit": c.unit}
                    for c in target.criteria
                ],
                "value": None if values[0] is None else round(values[0], 3),
                "measured": measured_text(values, target.criteria),
                "status": _combined(statuses),
                "ratio_payment_shaped": ratio.get("payment_shaped") if first.unit == "/s" else None,
                "ratio_bare_app": ratio.get("bare_app") if first.unit == "/s" else None,
                "conditions": _conditions(scenario) if database else "",
            }
        )
    return rows


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """What a later run prints beside its own figures: this run's target values and each
    scenario's and baseline's throughput and p99, by database (works on results of older
    runs too: what they lack is None)."""
    scenarios: dict[str, dict[str, Any]] = {}
    for database, phase in results.get("databases", {}).items():
        found = scenarios.setdefault(database, {})
        for name, scenario in phase.get("scenarios", {}).items():
            if scenario.get("status") in {"ok", "failed"}:
                found[name] = {
                    "throughput_rps": scenario.get("throughput_rps"),
                    "p99_ms": scenario.get("latency_ms", {}).get("p99"),
                }
        for name, baseline in phase.get("baselines", {}).items():
            if not isinstance(baseline, dict):
                continue
            found[f"baseline:{name}"] = {
                "throughput_rps": baseline.get("throughput_rps", baseline.get("throughput_tps")),
                "p99_ms": baseline.get("latency_ms", {}).get("p99")
                or baseline.get("latency", {}).get("p99_ms"),
            }
    return {
        "generated_at": results.get("generated_at"),
        "commit": results.get("git", {}).get("commit"),
        "mode": results.get("mode"),
        "targets": {
            row["id"]: row["measured"] if any(v is not None for v in row["values"]) else None
            for row in evaluate(results)
        },
        "scenarios": scenarios,
    }


def _conditions(scenario: dict[str, Any]) -> str:
    if not scenario:
        return ""
    if "deliveries_offered_per_s" in scenario:
        return (
            f"{scenario.get('endpoints')} endpoints, {scenario['deliveries_offered_per_s']:,.0f} "
            f"deliveries/s offered for {scenario.get('duration_s', 0):.0f} s, 1 worker"
        )
    load = scenario.get("load", {})
    processes = scenario.get("api_processes")
    servers = f", {processes} API process{'es' if processes != 1 else ''}" if processes else ""
    return f"{scenario.get('connections')} connections, {load.get('duration_s', 0):.0f} s{servers}"


# -- Markdown --------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _quantity(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:,.0f} {unit}"


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:g} s"


def _checks(scenario: dict[str, Any]) -> str:
    checks = scenario.get("checks", [])
    if scenario.get("status") == "skipped":
        return "skipped"
    if scenario.get("status") == "error":
        return "error"
    failed = [c["name"] for c in checks if not c["ok"]]
    return "ok" if not failed else "FAILED: " + "; ".join(failed)


def _previous(results: dict[str, Any], database: str, name: str) -> str:
    """ "106/s, p99 1,861 ms" of the same row in the previous run, or "—"."""
    found = (results.get("previous") or {}).get("scenarios", {}).get(database, {}).get(name)
    if not found or found.get("throughput_rps") is None:
        return "—"
    p99 = found.get("p99_ms")
    return f"{_num(found['throughput_rps'])}" + (f", p99 {_num(p99, 1)}" if p99 is not None else "")


def _cpu_per_request(found: dict[str, float] | None) -> str:
    """ "312 + 64": the API's and PostgreSQL's CPU per answered request, in µs."""
    if not found or found.get("api") is None:
        return "—"
    postgres = found.get("postgres")
    return _num(found["api"]) + (f" + {_num(postgres)}" if postgres else "")


def _baseline_row(
    results: dict[str, Any], database: str, key: str, title: str, base: dict[str, Any]
) -> list[str]:
    """A pgbench / sqlite3 baseline (its figures are in transactions, its own layout)."""
    return [
        DB_NAMES.get(database, database),
        title,
        str(base["clients"]),
        _num(base["throughput_tps"]),
        _num(base["latency"]["p50_ms"], 1),
        _num(base["latency"]["p95_ms"], 1),
        _num(base["latency"]["p99_ms"], 1),
        str(base["failed"]),
        "—",
        _num(base.get("cpu", {}).get("other_pct")),
        "—",
        "1.00×" if key == "payment_shaped" else "—",
        "—",
        _previous(results, database, f"baseline:{key}"),
        "—",
    ]


def scenario_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for database, phase in results.get("databases", {}).items():
        baselines = phase.get("baselines", {})
        db_base = baselines.get("database")
        if db_base:
            title = f"Baseline (a): {db_base['tool'].split(' (')[0]}, payout SQL"
            rows.append(_baseline_row(results, database, "database", title, db_base))
        shaped = baselines.get("payment_shaped")
        if shaped:
            title = "Baseline (a'): pgbench, payment-shaped (5 INSERTs + COMMIT, no shared row)"
            rows.append(_baseline_row(results, database, "payment_shaped", title, shaped))
        echo = baselines.get("echo")
        if echo:
            title = "Baseline (b): bare endpoint /bench/echo through amanat's stack"
            rows.append(_scenario_row(results, database, "baseline:echo", title, echo))
        bare = baselines.get("bare_app")
        if bare:
            title = "Baseline (b'): bare FastAPI app, same model and uvicorn options"
            row = _scenario_row(results, database, "baseline:bare_app", title, bare)
            row[12] = "1.00×"
            rows.append(row)
        bare_read = baselines.get("bare_read")
        if bare_read:
            title = "Baseline (b''): bare FastAPI app, a payment read by id through asyncpg"
            rows.append(_scenario_row(results, database, "baseline:bare_read", title, bare_read))
        for key, scenario in phase.get("scenarios", {}).items():
            title = TITLES.get(scenario["scenario"], scenario["scenario"])
            rows.append(_scenario_row(results, database, key, title, scenario))
    return rows


def _scenario_row(
    results: dict[str, Any], database: str, key: str, title: str, scenario: dict[str, Any]
) -> list[str]:
    name = DB_NAMES.get(database, database)
    if scenario.get("status") in {"skipped", "error"}:
        reason = scenario.get("skipped") or scenario.get("error", "")
        return [
            name,
            f"{title} ({reason})",
            str(scenario.get("connections", "—")),
            *["—"] * 10,
            _previous(results, database, key),
            _checks(scenario),
        ]
    latency = scenario.get("latency_ms", {})
    ratio = scenario.get("ratio", {})
    return [
        name,
        title,
        str(scenario.get("connections", "—")),
        _num(scenario.get("throughput_rps")),
        _num(latency.get("p50"), 1),
        _num(latency.get("p95"), 1),
        _num(latency.get("p99"), 1),
        str(scenario.get("errors", 0)),
        _num(scenario.get("rss_mb", {}).get("api")),
        _num(scenario.get("cpu", {}).get("other_pct")),
        _cpu_per_request(scenario.get("cpu_us_per_request")),
        _quantity(ratio.get("payment_shaped"), "x"),
        _quantity(ratio.get("bare_app"), "x"),
        _previous(results, database, key),
        _checks(scenario),
    ]


def target_rows(results: dict[str, Any]) -> list[list[str]]:
    previous = (results.get("previous") or {}).get("targets", {})
    return [
        [
            row["target"],
            row["goal"],
            row["measured"],
            _quantity(row.get("ratio_payment_shaped"), "x"),
            _quantity(row.get("ratio_bare_app"), "x"),
            previous.get(row["id"]) or "—",
            row["conditions"] or "—",
            row["status"],
        ]
        for row in results.get("targets", [])
    ]


def process_notes(results: dict[str, Any]) -> list[str]:
    """The scale-out, the SIGKILL drill and the operator's checks, in sentences."""
    notes = []
    for database, phase in results.get("databases", {}).items():
        name = DB_NAMES.get(database, database)
        scenarios = phase.get("scenarios", {})
        scale = scenarios.get("scale_out", {})
        if scale.get("status") in {"ok", "failed"}:
            single = scenarios.get("create_spread", {}).get("throughput_rps")
            workers = scale.get("workers", {})
            per_api = " + ".join(_num(v) for v in scale.get("per_api_rps", []))
            shared: dict[str, Any] = next(
                (c for c in scale.get("checks", []) if c["name"].startswith("rate limit shared")),
                {},
            )
            notes.append(
                f"{name} scale-out (two `amanat serve` and two `amanat worker` as separate "
                f"process groups, Redis {scale.get('redis')}): creates "
                f"{_num(scale.get('throughput_rps'))}/s ({per_api}), p99 "
                f"{_num(scale.get('latency_ms', {}).get('p99'), 1)} ms, against "
                f"{_num(single)}/s for one server of {phase.get('api_processes')} processes; "
                f"the two workers sent {workers.get('rail_submissions', 0)} payments to the "
                f"rail ({_num(workers.get('rail_submissions_per_s'))}/s; the rail counted "
                f"{workers.get('rail_new_transfers', '?')} new payments and "
                f"{workers.get('rail_replays', '?')} resubmissions) and delivered "
                f"{workers.get('deliveries', 0)} webhooks "
                f"({_num(workers.get('deliveries_per_s'))}/s); "
                f"{workers.get('webhook_ids_received_more_than_once', 0)} webhook-id(s) "
                "arrived at one endpoint more than once, one after the other (retries; "
                "overlapping arrivals fail a check); shared rate limit: "
                f"{shared.get('detail', 'not checked')}. Checks: {_checks(scale)}."
            )
        kill = scenarios.get("sigkill", {})
        if kill.get("status") in {"ok", "failed"}:
            notes.append(
                f"{name} SIGKILL drill: the API's process group was killed "
                f"{kill.get('killed_after_s')} s into a create load and answered again "
                f"{kill.get('restart_s')} s after the kill; "
                + "; ".join(
                    f"{c['name']}: {'ok' if c['ok'] else 'FAILED'}"
                    + (f" ({c['detail']})" if c.get("detail") else "")
                    for c in kill.get("checks", [])
                    if c["name"].startswith(("amanat", "payments match"))
                )
                + "."
            )
        reference = phase.get("baselines", {}).get("bare_read", {})
        if reference.get("status") in {"ok", "failed"}:
            reads = [
                f"{label} {_num(found.get('throughput_rps'))}/s "
                f"({_quantity(found.get('ratio', {}).get('bare_read'), 'x')})"
                for label, found in (
                    ("retrieve", scenarios.get("retrieve", {})),
                    ("replay", scenarios.get("replay", {})),
                )
                if found.get("throughput_rps") is not None
            ]
            notes.append(
                f"{name} reference for a read by id: a bare FastAPI app reading the same "
                "payments through an asyncpg pool, with no token, rate limit, log line or "
                f"decryption, answered {_num(reference.get('throughput_rps'))}/s, p99 "
                f"{_num(reference.get('latency_ms', {}).get('p99'), 1)} ms, at "
                f"{_cpu_per_request(reference.get('cpu_us_per_request'))} µs of CPU a request "
                f"(API + PostgreSQL); amanat answered {', '.join(reads) or 'no reads'} of "
                "its throughput."
            )
        operator = phase.get("operator_checks", [])
        if operator:
            notes.append(
                f"{name} after the loads, as an operator runs them: "
                + "; ".join(
                    f"`{c['name']}` {'passed' if c['ok'] else 'FAILED'}"
                    + (f" ({c['detail']})" if c.get("detail") and c["ok"] is False else "")
                    + (f" ({c['detail']})" if c["ok"] and c["name"].endswith("verify") else "")
                    for c in operator
                )
                + "."
            )
    return notes


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(machine: dict[str, Any]) -> str:
    quota = f", {machine['cpu_quota']}" if machine.get("cpu_quota") else ""
    return (
        f"{machine.get('cpu')}, {machine.get('logical_cpus')} logical CPUs{quota}, "
        f"{machine.get('memory_gib')} GiB RAM; {machine.get('os')}, Linux "
        f"{machine.get('kernel')}; Python {machine.get('python')}, "
        f"{machine.get('postgresql', 'PostgreSQL ?')}, SQLite {machine.get('sqlite')}, "
        f"{machine.get('wrk', 'wrk ?')}, uvicorn {machine.get('uvicorn')}. Server, worker, "
        "database and load generator share these CPUs."
    )


def _previous_line(previous: dict[str, Any] | None) -> str:
    if not previous:
        return '**Previous run:** none found (the "Previous run" columns are empty).'
    return (
        f'**Previous run** (the "Previous run" columns): {previous.get("generated_at", "?")} '
        f"({previous.get('mode', '?')} mode), commit {previous.get('commit') or 'unknown'}."
    )


def render_markdown(results: dict[str, Any]) -> str:
    config = results.get("config", {})
    git = results.get("git", {})
    commit = git.get("commit") or "unknown"
    if git.get("dirty"):
        commit += " with uncommitted changes"
    parts = [
        f"Run {results.get('generated_at', '?')} ({results.get('mode', '?')} mode), commit "
        f"{commit}; load of {_seconds(config.get('duration_s'))} (creates, baselines) and "
        f"{_seconds(config.get('short_duration_s'))} (other scenarios), "
        f"{config.get('merchants', '?')} merchants; the run took "
        f"{results.get('elapsed_s', 0) / 60:.1f} min.",
        "",
        f"**Machine:** {machine_line(results.get('machine', {}))}",
        "",
        _previous_line(results.get("previous")),
        "",
        _table(
            [
                "Database",
                "Scenario",
                "Conns",
                "Throughput /s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "Errors",
                "API RSS MB",
                "Others' CPU %",
                "CPU µs/request: API + PostgreSQL",
                "× payment-shaped pgbench",
                "× bare FastAPI",
                "Previous run /s, p99 ms",
                "Correctness",
            ],
            scenario_rows(results),
        ),
        "",
        "**Targets** (2 cores shared by server, database and load generator; ratios to the "
        "baselines of this run):",
        "",
        _table(
            [
                "Target",
                "Goal",
                "Measured",
                "× payment-shaped pgbench",
                "× bare FastAPI",
                "Previous run",
                "Conditions",
                "Result",
            ],
            target_rows(results),
        ),
        "",
    ]
    notes = [*results.get("notes", []), *process_notes(results)]
    if notes:
        parts += ["**Notes from this run:**", "", *[f"- {note}" for note in notes], ""]
    failures = results.get("correctness", {}).get("failures", [])
    parts.append(
        "**Correctness:** every check passed."
        if not failures
        else "**Correctness: FAILED**\n\n" + "\n".join(f"- {f}" for f in failures)
    )
    return "\n".join(parts)


def update_readme(path: Path, markdown: str) -> None:
    text = path.read_text()
    if START not in text or END not in text:
        raise RuntimeError(f"{path} lacks the {START} / {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{markdown}\n{END}{tail}")


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    temporary.replace(path)
