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
    "token": "Token issuance (POST /oauth/token)",
}


@dataclass(frozen=True)
class Target:
    id: str
    text: str
    database: str | None
    scenario: str | None
    metric: str
    op: str  # ">=" or "<="
    threshold: float
    unit: str


TARGETS: tuple[Target, ...] = (
    Target(
        "pg_create_rate",
        "Create payout, PostgreSQL, 64 connections, 30 s",
        "postgresql",
        "create_spread",
        "throughput",
        ">=",
        1500,
        "/s",
    ),
    Target(
        "pg_create_p99",
        "Create payout, PostgreSQL: p99",
        "postgresql",
        "create_spread",
        "p99",
        "<=",
        100,
        "ms",
    ),
    Target(
        "pg_create_ratio",
        "Create payout, PostgreSQL: ratio to pgbench",
        "postgresql",
        "create_spread",
        "ratio_database",
        ">=",
        0.30,
        "x",
    ),
    Target(
        "pg_hot",
        "Hot merchant: share of the spread throughput",
        "postgresql",
        "create_hot",
        "vs_spread",
        ">=",
        0.80,
        "x",
    ),
    Target(
        "pg_replay",
        "Idempotent replay, PostgreSQL",
        "postgresql",
        "replay",
        "throughput",
        ">=",
        4000,
        "/s",
    ),
    Target(
        "pg_retrieve",
        "Retrieve by id, PostgreSQL",
        "postgresql",
        "retrieve",
        "throughput",
        ">=",
        4000,
        "/s",
    ),
    Target(
        "pg_list",
        "List page of 20, PostgreSQL",
        "postgresql",
        "list",
        "throughput",
        ">=",
        2000,
        "/s",
    ),
    Target(
        "pg_webhook_rate",
        "Webhook deliveries, one worker (signed)",
        "postgresql",
        "webhooks",
        "throughput",
        ">=",
        500,
        "/s",
    ),
    Target(
        "pg_webhook_p99",
        "Webhooks: event to first attempt, p99",
        "postgresql",
        "webhooks",
        "p99",
        "<=",
        1000,
        "ms",
    ),
    Target(
        "sqlite_create_rate",
        "Create payout, SQLite, 16 connections",
        "sqlite",
        "create_spread",
        "throughput",
        ">=",
        400,
        "/s",
    ),
    Target(
        "sqlite_create_p99",
        "Create payout, SQLite: p99",
        "sqlite",
        "create_spread",
        "p99",
        "<=",
        200,
        "ms",
    ),
    Target(
        "api_rss",
        "API process RSS, largest process, peak over the run",
        None,
        None,
        "api_rss",
        "<=",
        200,
        "MB",
    ),
)


def _scenario(results: dict[str, Any], database: str | None, name: str | None) -> dict[str, Any]:
    if database is None or name is None:
        return {}
    found: dict[str, Any] = results.get("databases", {}).get(database, {}).get("scenarios", {})
    scenario: dict[str, Any] = found.get(name, {})
    return scenario if scenario.get("status") in {"ok", "failed"} else {}


def _metric(results: dict[str, Any], target: Target) -> float | None:
    scenario = _scenario(results, target.database, target.scenario)
    getters: dict[str, Callable[[], Any]] = {
        "throughput": lambda: scenario.get("throughput_rps"),
        "p99": lambda: scenario.get("latency_ms", {}).get("p99"),
        "ratio_database": lambda: scenario.get("ratio", {}).get("database"),
        "vs_spread": lambda: _vs_spread(results, target.database),
        "api_rss": lambda: peak_api_rss(results),
    }
    value = getters[target.metric]()
    return None if value is None else float(value)


def _vs_spread(results: dict[str, Any], database: str | None) -> float | None:
    hot = _scenario(results, database, "create_hot").get("throughput_rps")
    spread = _scenario(results, database, "create_spread").get("throughput_rps")
    return hot / spread if hot is not None and spread else None


def peak_api_rss(results: dict[str, Any], key: str = "api_largest_process") -> float | None:
    """The peak RSS of one API process (``key="api"``: of all of them together)."""
    peaks = [
        scenario.get("rss_mb", {}).get(key)
        for phase in results.get("databases", {}).values()
        for scenario in phase.get("scenarios", {}).values()
    ]
    known = [p for p in peaks if p is not None]
    return max(known) if known else None


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for target in TARGETS:
        value = _metric(results, target)
        if value is None:
            status = "not measured"
        elif target.op == ">=":
            status = "met" if value >= target.threshold else "missed"
        else:
            status = "met" if value <= target.threshold else "missed"
        scenario = _scenario(results, target.database, target.scenario)
        rows.append(
            {
                "id": target.id,
                "target": target.text,
                "op": target.op,
                "threshold": target.threshold,
                "unit": target.unit,
                "value": None if value is None else round(value, 3),
                "status": status,
                "conditions": _conditions(scenario),
            }
        )
    return rows


def _conditions(scenario: dict[str, Any]) -> str:
    if not scenario:
        return ""
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


def scenario_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for database, phase in results.get("databases", {}).items():
        name = DB_NAMES.get(database, database)
        baselines = phase.get("baselines", {})
        db_base = baselines.get("database")
        if db_base:
            rows.append(
                [
                    name,
                    f"Baseline (a): {db_base['tool'].split(' (')[0]}, payout SQL",
                    str(db_base["clients"]),
                    _num(db_base["throughput_tps"]),
                    _num(db_base["latency"]["p50_ms"], 1),
                    _num(db_base["latency"]["p95_ms"], 1),
                    _num(db_base["latency"]["p99_ms"], 1),
                    str(db_base["failed"]),
                    "—",
                    _num(db_base.get("cpu", {}).get("other_pct")),
                    "1.00×",
                    "—",
                    "—",
                ]
            )
        echo = baselines.get("echo")
        if echo:
            rows.append(_scenario_row(name, "Baseline (b): bare endpoint /bench/echo", echo))
        for scenario in phase.get("scenarios", {}).values():
            title = TITLES.get(scenario["scenario"], scenario["scenario"])
            rows.append(_scenario_row(name, title, scenario))
    return rows


def _scenario_row(database: str, title: str, scenario: dict[str, Any]) -> list[str]:
    if scenario.get("status") in {"skipped", "error"}:
        reason = scenario.get("skipped") or scenario.get("error", "")
        return [
            database,
            f"{title} ({reason})",
            str(scenario.get("connections", "—")),
            *["—"] * 9,
            _checks(scenario),
        ]
    latency = scenario.get("latency_ms", {})
    ratio = scenario.get("ratio", {})
    return [
        database,
        title,
        str(scenario.get("connections", "—")),
        _num(scenario.get("throughput_rps")),
        _num(latency.get("p50"), 1),
        _num(latency.get("p95"), 1),
        _num(latency.get("p99"), 1),
        str(scenario.get("errors", 0)),
        _num(scenario.get("rss_mb", {}).get("api")),
        _num(scenario.get("cpu", {}).get("other_pct")),
        _quantity(ratio.get("database"), "x"),
        _quantity(ratio.get("echo"), "x"),
        _checks(scenario),
    ]


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
                "× DB baseline",
                "× echo",
                "Correctness",
            ],
            scenario_rows(results),
        ),
        "",
        "**Targets** (2 cores shared by server, database and load generator):",
        "",
        _table(
            ["Target", "Goal", "Measured", "Conditions", "Result"],
            [
                [
                    row["target"],
                    f"{row['op'].replace('>=', '≥').replace('<=', '≤')} "
                    f"{_quantity(row['threshold'], row['unit'])}",
                    _quantity(row["value"], row["unit"]),
                    row["conditions"] or "—",
                    row["status"],
                ]
                for row in results.get("targets", [])
            ],
        ),
        "",
    ]
    notes = results.get("notes", [])
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
