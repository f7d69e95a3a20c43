"""``make bench`` / ``make bench-smoke``: ``python -m bench.run [--smoke]``.

For each database (PostgreSQL, then the SQLite default) the run:

1. creates its own database (``amanat_bench`` / ``var/bench/sqlite/``), migrates it, and
   creates the merchants with funds through amanat's services;
2. captures the SQL of one payout and compares it with the baseline scripts (drift);
3. starts the API (bench/server.py: amanat's app under uvicorn, as ``amanat serve``), one
   ``amanat worker`` and, for the webhook scenario, a local receiver;
4. warms up (one payout per merchant) and lets the worker settle those payouts;
5. runs the webhook scenario (payments flowing through the worker), then stops the worker,
   so the backlog of one API scenario never eats into the CPU of the next;
6. runs the API scenarios with wrk, each followed by its correctness checks;
7. measures the bare-endpoint baseline, stops the server, measures the database baseline.

Results: bench/results/latest.json and the table in bench/README.md (full runs), or
var/bench/smoke.json (smoke runs, which assert correctness only). Exit status 1 when a
correctness check failed (or a phase broke), 0 otherwise: missed targets are reported,
not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from amanat.bootstrap import Container, build_container
from amanat.platform.db.migrate import upgrade
from amanat.platform.observability.logging import configure_logging
from amanat.platform.settings import Settings
from bench import baselines, checks, lock, machine, operator_checks, procs, report
from bench.checks import Check
from bench.config import (
    BENCH_DIR,
    RESULTS_DIR,
    ROOT,
    VAR_DIR,
    BenchConfig,
    load_config,
)
from bench.load import Answer, Call, LoadResult, ensure_wrk, run_calls, run_wrk, wrk_version
from bench.receiver import verify
from bench.scale_out import ScaleOut, sigkill_drill
from bench.stats import cpu_per_request, ratio, summarize
from bench.world import (
    HIGH_VOLUME_QUOTA,
    World,
    build_world,
    create_database,
    database_url,
    drop_database,
    environment,
    mint_tokens,
    payout_body,
    payout_headers,
    phase_dir,
    phase_env,
)

WEBHOOK_EVENTS = ["payment.processing", "payment.succeeded"]
RACE_DUPLICATES = 8  # concurrent requests per key in the idempotency race
REPLAY_KEYS = 5000
RETRIEVE_IDS = 5000


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


class Phase:
    """One database: setup, servers, scenarios, baselines."""

    def __init__(self, config: BenchConfig, database: str, wrk: str | None) -> None:
        self.config = config
        self.database = database
        self.wrk = wrk
        self.connections = config.connections[database]
        self.env = phase_env(config, database)
        self.base_url = f"http://127.0.0.1:{config.port}"
        self.tag = secrets.token_hex(2)  # keeps keys of reruns on a kept database apart
        self.dir = phase_dir(database)
        self.server: procs.Child | None = None
        self.worker: procs.Child | None = None
        self.receiver: procs.Child | None = None
        self.extra: list[procs.Child] = []  # scale-out processes, the bare app
        self.hook_secrets: dict[str, str] = {}
        self.out: dict[str, Any] = {
            "database": database,
            "connections": self.connections,
            "api_processes": config.api_workers[database],
            "scenarios": {},
            "baselines": {},
        }
        self.container: Container
        self.world: World

    # -- the phase -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        log(f"{self.database}: fresh database")
        started = time.monotonic()
        try:
            create_database(self.config, self.database)
            with environment(self.env):
                upgrade(database_url(self.config, self.database))
                asyncio.run(self._main())
        except Exception as exc:  # noqa: BLE001 - reported, and the run goes on to the next
            self.out["error"] = f"{type(exc).__name__}: {exc}"
            self.out["traceback"] = traceback.format_exc()
            log(f"{self.database}: phase broke: {exc}")
            for child in (self.server, self.worker):
                if child is not None:
                    log(f"{child.name} log tail:\n{child.log_tail(15)}")
        finally:
            self._stop_all()
            if self._failed():
                kept = VAR_DIR / "failed" / f"{self.database}-{datetime.now():%Y%m%d-%H%M%S}"
                shutil.copytree(self.dir / "logs", kept, dirs_exist_ok=True)
                self.out["logs_kept_in"] = str(kept.relative_to(ROOT))
                log(f"{self.database}: logs kept in {self.out['logs_kept_in']}")
            if not self.config.keep:
                drop_database(self.config, self.database)
        self.out["elapsed_s"] = round(time.monotonic() - started, 1)
        return self.out

    def _failed(self) -> bool:
        if not (self.dir / "logs").is_dir():
            return False
        statuses = {scenario.get("status") for scenario in self.out["scenarios"].values()}
        worker_clean = self.out.get("worker_log_clean", {}).get("ok", True)
        return (
            bool(self.out.get("error")) or bool(statuses & {"error", "failed"}) or not worker_clean
        )

    async def _main(self) -> None:
        self.container = build_container(Settings())
        try:
            await self._setup()
            self._start_processes()
            await self._warm_up()
            if "webhooks" in self.config.scenarios:
                await self._scenario("webhooks", self.webhooks)
                await self._settle_after("webhooks")
            if "webhook_worker" in self.config.scenarios:
                await self._scenario("webhook_worker", self.webhook_worker)
            self._stop_worker()
            if "scale_out" in self.config.scenarios:
                await self._scenario("scale_out", ScaleOut(self).run)
            api: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
                ("create_spread", self.create_spread),
                ("create_hot", self.create_hot),
                ("replay", self.replay),
                ("retrieve", self.retrieve),
                ("list", self.list_page),
                ("token", self.token),
            ]
            for name, scenario in api:
                if name in self.config.scenarios:
                    await self._scenario(name, scenario)
            if "sigkill" in self.config.scenarios:
                await self._scenario("sigkill", lambda: sigkill_drill(self))
            await self._operator_checks()
            await self._echo_baseline()
            self._stop_all()
            await self._bare_app_baseline()
            await self._database_baseline()
            if self.database == "postgresql":
                await self._payment_shaped_baseline()
            self._ratios()
        finally:
            await self.container.close()

    async def _setup(self) -> None:
        begun = time.monotonic()
        concurrency = 8 if self.database == "postgresql" else 2
        quota = None if self.config.product_rate_limits else HIGH_VOLUME_QUOTA
        self.world = await build_world(self.container, self.config.merchants, concurrency, quota)
        await mint_tokens(self.container, self.world)
        self.out["setup"] = {
            "merchants": self.config.merchants,
            "seconds": round(time.monotonic() - begun, 1),
        }
        seconds = self.out["setup"]["seconds"]
        log(f"{self.database}: {self.config.merchants} merchants in {seconds} s")
        captured = await baselines.capture_payout_shapes(self.container, self.world.spread[0].token)
        script = (
            baselines.PGBENCH_SCRIPT if self.database == "postgresql" else baselines.SQLITE_SCRIPT
        )
        self.out["sql_statements_per_payout"] = len(captured)
        self.out["sql_drift"] = baselines.drift(
            captured, baselines.script_shapes(script.read_text())
        )
        if self.out["sql_drift"]:
            log(f"{self.database}: payout SQL differs from {script.name}: {self.out['sql_drift']}")

    @property
    def _api_workers(self) -> int:
        return self.config.api_workers[self.database]

    def start_server(self) -> None:
        """The API (bench/server.py), until it answers /readyz."""
        self.server = procs.start(
            "server",
            [sys.executable, "-m", "bench.server"],
            self.env,
            self.dir / "logs" / "server.log",
        )
        procs.wait_ready(f"{self.base_url}/readyz", self.server, workers=self._api_workers)

    def _start_processes(self) -> None:
        python = sys.executable
        logs = self.dir / "logs"
        self.start_server()
        amanat = str(Path(python).with_name("amanat"))
        self.worker = procs.start("worker", [amanat, "worker"], self.env, logs / "worker.log")
        if {"webhooks", "webhook_worker"} & set(self.config.scenarios):
            port = str(self.config.receiver_port)
            self.receiver = procs.start(
                "receiver", [python, "-m", "bench.receiver", port], self.env, logs / "receiver.log"
            )
            procs.wait_ready(f"http://127.0.0.1:{port}/_health", self.receiver)
        log(f"{self.database}: server, worker{' and receiver' if self.receiver else ''} up")

    def _stop_worker(self) -> None:
        if self.worker is not None:
            procs.stop(self.worker)
            self.out["worker_log_clean"] = checks.server_log_clean(
                self.worker.log_path, 0, "worker"
            ).as_dict()
            self.worker = None

    def _stop_all(self) -> None:
        self._stop_worker()
        while self.extra:
            procs.stop(self.extra.pop())
        for attribute in ("server", "receiver"):
            child = getattr(self, attribute)
            if child is not None:
                procs.stop(child)
                setattr(self, attribute, None)

    @property
    def engine(self) -> Any:
        return self.container.db.engine

    # -- warm-up and the worker's drain ----------------------------------------------------

    async def _warm_up(self) -> None:
        """A few hundred payouts over HTTP (every merchant's beneficiary exists already), then
        the worker settles them: warms the server and measures the rail round trip."""
        everyone = self.world.everyone
        count = min(self.config.warmup_payouts, len(everyone))
        step = len(self.world.spread) / max(1, count - 2)
        spread = [self.world.spread[int(i * step)] for i in range(max(0, count - 2))]
        accounts = [self.world.hot, self.world.hooks, *spread][:count]
        prefix = f"wu{self.tag}"

        def call(i: int) -> Call | None:
            if i >= len(accounts):
                return None
            key = f"{prefix}-{i}"
            return Call(
                "POST",
                "/v1/payments",
                payout_headers(accounts[i].token, key),
                payout_body(key),
                expected=201,
            )

        result = await run_calls(
            self.base_url, call, concurrency=min(self.connections, 16), request_timeout=60
        )
        if result.ok != len(accounts):
            raise RuntimeError(f"warm-up: {result.ok}/{len(accounts)} payouts: {result.first_bad}")
        remaining, seconds = await self._drain()
        settled = len(accounts) + 2 - remaining  # + the two payouts of the SQL capture
        self.out["warm_up"] = {
            "payouts": len(accounts),
            "seconds": round(result.duration_s, 1),
            "worker_drain": {
                "settled": settled,
                "unsettled": remaining,
                "seconds": round(seconds, 1),
                "settled_per_s": round(settled / seconds, 1) if seconds > 0 else None,
            },
        }
        left = f", {remaining} left" if remaining else ""
        count = len(accounts)
        log(f"{self.database}: {count} warm-up payouts, {settled} settled in {seconds:.0f} s{left}")

    async def _drain(self) -> tuple[int, float]:
        """Until the worker and the rail have settled every payment (at most
        ``drain_seconds``): how many are left, and how long it took."""
        begun = time.monotonic()
        remaining = await self._unsettled()
        while remaining and time.monotonic() - begun < self.config.drain_seconds:
            await asyncio.sleep(0.5)
            remaining = await self._unsettled()
        return remaining, time.monotonic() - begun

    async def _settle_after(self, scenario: str) -> None:
        """The scenario's payments settled before the worker stops: otherwise the rail's
        callbacks for them (and their retries) go on arriving at the API during the next
        load, which on SQLite contend for its one write lock."""
        remaining, seconds = await self._drain()
        self.out[f"settled_after_{scenario}"] = {
            "unsettled": remaining,
            "seconds": round(seconds, 1),
        }
        left = f", {remaining} left" if remaining else ""
        log(f"{self.database}: {scenario}'s payments settled in {seconds:.0f} s{left}")

    async def _unsettled(self) -> int:
        async with self.engine.connect() as conn:
            query = "SELECT COUNT(*) FROM payments WHERE status IN ('pending', 'processing')"
            return int((await conn.execute(sa.text(query))).scalar_one())

    # -- running one scenario --------------------------------------------------------------

    async def _scenario(self, name: str, body: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        log(f"{self.database}: {name} ...")
        await mint_tokens(self.container, self.world)
        server_log = self.server.log_path if self.server else None
        offset = checks.log_offset(server_log) if server_log else 0
        worker_log = self.worker.log_path if self.worker else None
        worker_offset = checks.log_offset(worker_log) if worker_log else 0
        try:
            result = await body()
        except Exception as exc:  # noqa: BLE001 - a broken scenario is reported as an error
            result = {
                "status": "error",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        result.setdefault("scenario", name)
        result.setdefault("connections", self.connections)
        result.setdefault("api_processes", self.config.api_workers[self.database])
        if result.get("status") not in {"skipped", "error"}:
            await self.quiesce()
            extra = [
                await checks.ledger(self.container),
                await checks.no_duplicate_payments(self.engine),
            ]
            if (sessions := await checks.open_transactions(self.engine)) is not None:
                extra.append(sessions)
            if server_log:
                extra.append(checks.server_log_clean(server_log, offset))
            if worker_log:
                extra.append(checks.server_log_clean(worker_log, worker_offset, "worker"))
            result["checks"] = [*result.get("checks", []), *(c.as_dict() for c in extra)]
            failed = [c for c in result["checks"] if not c["ok"]]
            result["status"] = "failed" if failed else "ok"
        self.out["scenarios"][name] = result
        summary = result.get("throughput_rps")
        log(
            f"{self.database}: {name}: {result['status']}"
            + (f", {summary:,.0f}/s, p99 {result['latency_ms']['p99']} ms" if summary else "")
            + (
                f" ({result.get('skipped') or result.get('error')})"
                if result["status"] in {"skipped", "error"}
                else ""
            )
        )
        for check in result.get("checks", []):
            if not check["ok"]:
                log(f"  check failed: {check['name']}: {check.get('detail', '')}")

    def _pids(self) -> dict[str, int]:
        pids = {}
        if self.server is not None:
            pids["api"] = self.server.pid
        if self.worker is not None:
            pids["worker"] = self.worker.pid
        return pids

    async def load(
        self,
        mode: str,
        *,
        tokens: list[str] | None = None,
        items: Sequence[tuple[str, ...]] | None = None,
        prefix: str = "k",
        duration: float,
    ) -> tuple[LoadResult, dict[str, Any]]:
        """wrk (or the Python client as a fallback) for one scenario, with RSS and CPU
        sampled: ``{"rss_mb": ..., "cpu": ...}``."""
        with (
            procs.RssSampler(self._pids()) as rss,
            procs.CpuWindow(roles=self._pids()) as cpu,
        ):
            if self.wrk is not None:
                args = {"prefix": prefix}
                wrk_dir = self.dir / "wrk"
                wrk_dir.mkdir(parents=True, exist_ok=True)
                if tokens is not None:
                    path = wrk_dir / f"{mode}-tokens.txt"
                    path.write_text("\n".join(tokens) + "\n")
                    args["tokens"] = str(path)
                if items is not None:
                    path = wrk_dir / f"{mode}-requests.txt"
                    path.write_text("\n".join("\t".join(item) for item in items) + "\n")
                    args["requests"] = str(path)
                result = await asyncio.to_thread(
                    run_wrk,
                    self.wrk,
                    self.base_url,
                    mode=mode,
                    duration=duration,
                    connections=self.connections,
                    threads=self.config.wrk_threads,
                    args=args,
                )
            else:
                result = await run_calls(
                    self.base_url,
                    python_calls(mode, tokens or [], items or [], prefix),
                    concurrency=self.connections,
                    duration=duration,
                )
        return result, {"rss_mb": rss.result(), "cpu": cpu.result}

    async def quiesce(self, limit: float = 15.0) -> None:
        """Let requests the load generator gave up on at its end finish in the server: wait
        until the number of payments stops moving for a second (at most ``limit`` s)."""
        deadline = time.monotonic() + limit
        last = await checks.count_payments(self.engine)
        steady_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - steady_since < 1.0:
            await asyncio.sleep(0.25)
            now = await checks.count_payments(self.engine)
            if now != last:
                last, steady_since = now, time.monotonic()

    @staticmethod
    def measured(load: LoadResult, usage: dict[str, Any], checks_: list[Check]) -> dict[str, Any]:
        expected = Check(
            "every answer had the expected status",
            load.unexpected == 0,
            load.first_bad if load.unexpected else "",
        )
        return {
            "load": load.as_dict(),
            "throughput_rps": round(load.throughput, 1),
            "latency_ms": {
                "p50": load.latency.as_dict()["p50_ms"],
                "p95": load.latency.as_dict()["p95_ms"],
                "p99": load.latency.as_dict()["p99_ms"],
            },
            "errors": load.errors,
            **usage,
            "cpu_us_per_request": cpu_per_request(usage.get("cpu", {}), load.throughput),
            "checks": [c.as_dict() for c in [checks.no_5xx(load.status), expected, *checks_]],
        }

    # -- scenarios ---------------------------------------------------------------------------

    async def _create(self, tokens: list[str], prefix: str) -> dict[str, Any]:
        seconds = self.config.seconds("create_spread")
        load, usage = await self.load("create", tokens=tokens, prefix=prefix, duration=seconds)
        await self.quiesce()
        created = await checks.count_payments(self.engine, prefix)
        unanswered = load.unexpected + load.transport_errors + self.connections
        return self.measured(load, usage, [checks.created_match(created, load.ok, unanswered)])

    async def create_spread(self) -> dict[str, Any]:
        result = await self._create([a.token for a in self.world.spread], f"cs{self.tag}")
        result["merchants"] = len(self.world.spread)
        return result

    async def create_hot(self) -> dict[str, Any]:
        result = await self._create([self.world.hot.token], f"ch{self.tag}")
        result["merchants"] = 1
        return result

    async def replay(self) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT client_id, key FROM idempotency_keys WHERE status = 'completed' "
                        "AND response_status = 201 AND path = '/v1/payments' "
                        "AND key NOT LIKE 'cap-%' ORDER BY key DESC LIMIT :n"
                    ),
                    {"n": REPLAY_KEYS},
                )
            ).all()
        items = [
            (self.world.by_client[client].token, key, payout_body(key))
            for client, key in rows
            if client in self.world.by_client
        ]
        if not items:
            raise RuntimeError("no completed payout to replay")
        await self.quiesce()
        before = await checks.count_payments(self.engine)
        load, usage = await self.load("replay", items=items, duration=self.config.seconds("replay"))
        await self.quiesce()
        after = await checks.count_payments(self.engine)
        newest = await checks.newest_references(self.engine, max(0, after - before))
        result = self.measured(
            load,
            usage,
            [
                Check(
                    "replays created no payment",
                    before == after,
                    f"{before} -> {after} payments; newest references: {newest}",
                ),
                Check(
                    "every replay was answered from the stored record",
                    load.replay_header_missing == 0,
                    f"{load.replay_header_missing} answers lacked Idempotent-Replayed: true",
                ),
            ],
        )
        result["keys"] = len(items)
        result["checks"] += [c.as_dict() for c in await self._replay_answers(items)]
        result["checks"] += [c.as_dict() for c in await self._race()]
        return result

    async def _replay_answers(self, items: Sequence[tuple[str, ...]]) -> list[Check]:
        """Bounded Python client: a replay returns the payment the key first created."""
        sample = items[: self.config.python_check_requests]
        answers: list[Answer] = []
        await run_calls(
            self.base_url,
            lambda i: _replay_call(sample[i]) if i < len(sample) else None,
            concurrency=min(self.connections, 16),
            on_answer=answers.append,
            request_timeout=30,
        )
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT reference, id FROM payments WHERE reference IN :keys"
                    ).bindparams(sa.bindparam("keys", expanding=True)),
                    {"keys": [item[1] for item in sample]},
                )
            ).all()
        stored = dict(rows)
        wrong = [
            a.call.tag
            for a in answers
            if a.status != 201 or a.json().get("id") != stored.get(a.call.tag)
        ]
        return [
            Check(
                "a replay returns the original payment",
                not wrong and len(answers) == len(sample),
                f"{len(wrong)} of {len(answers)} differ, e.g. {wrong[:3]}" if wrong else "",
            )
        ]

    async def _race(self) -> list[Check]:
        """Bounded Python client: the same new key sent several times at once creates one
        payment; every 201 names it; the others wait their turn (409) or replay it."""
        keys = max(1, self.config.python_check_requests // RACE_DUPLICATES)
        token = self.world.hot.token
        prefix = f"rc{self.tag}"
        seen: dict[str, list[tuple[int | None, str | None]]] = defaultdict(list)

        def call(i: int) -> Call | None:
            if i >= keys * RACE_DUPLICATES:
                return None
            key = f"{prefix}-{i // RACE_DUPLICATES}"
            return Call(
                "POST",
                "/v1/payments",
                payout_headers(token, key),
                payout_body(key),
                expected=201,
                tag=key,
            )

        def record(answer: Answer) -> None:
            payment = answer.json().get("id") if answer.status == 201 else None
            seen[answer.call.tag].append((answer.status, payment))

        await run_calls(
            self.base_url,
            call,
            concurrency=min(64, keys * RACE_DUPLICATES),
            on_answer=record,
            request_timeout=30,
        )
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT reference, COUNT(*), MIN(id) FROM payments "
                        "WHERE reference LIKE :prefix GROUP BY reference"
                    ),
                    {"prefix": prefix + "%"},
                )
            ).all()
        stored = {r[0]: (int(r[1]), r[2]) for r in rows}
        problems = []
        for key, outcomes in seen.items():
            statuses = {status for status, _ in outcomes}
            ids = {payment for _, payment in outcomes if payment}
            count, payment_id = stored.get(key, (0, None))
            # No answer (None: the client gave up) says nothing about the key; the rest must.
            if count != 1 or not statuses <= {201, 409, None} or ids - {payment_id}:
                problems.append(f"{key}: {count} payments, answers {sorted(map(str, statuses))}")
        return [
            Check(
                f"one payment per key under {RACE_DUPLICATES} concurrent duplicates",
                not problems and len(seen) == keys,
                "; ".join(problems[:3]),
            )
        ]

    async def _retrieve_items(self) -> list[tuple[str, str]]:
        """(token, payment id) of the newest payouts, each with its owner's token."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT id, client_id FROM payments WHERE type = 'payout' "
                        "AND client_id IS NOT NULL ORDER BY id DESC LIMIT :n"
                    ),
                    {"n": RETRIEVE_IDS},
                )
            ).all()
        return [
            (self.world.by_client[client].token, payment)
            for payment, client in rows
            if client in self.world.by_client
        ]

    async def retrieve(self) -> dict[str, Any]:
        items = await self._retrieve_items()
        load, usage = await self.load("get", items=items, duration=self.config.seconds("retrieve"))
        result = self.measured(load, usage, [])
        result["payments"] = len(items)
        return result

    async def list_page(self) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT client_id FROM payments WHERE client_id IS NOT NULL "
                        "GROUP BY client_id HAVING COUNT(*) > 20"
                    )
                )
            ).all()
        full = [self.world.by_client[r[0]] for r in rows if r[0] in self.world.by_client]
        accounts = full or self.world.spread
        load, usage = await self.load(
            "list", tokens=[a.token for a in accounts], duration=self.config.seconds("list")
        )
        pages: list[Answer] = []
        sample = accounts[:10]
        await run_calls(
            self.base_url,
            lambda i: (
                Call("GET", "/v1/payments?limit=20", {"Authorization": f"Bearer {sample[i].token}"})
                if i < len(sample)
                else None
            ),
            concurrency=4,
            on_answer=pages.append,
        )
        bad = [a.status for a in pages if a.status != 200 or not _full_page(a.json(), bool(full))]
        result = self.measured(
            load,
            usage,
            [Check("a page holds 20 payments, newest first", not bad, f"bad pages: {bad}")],
        )
        result["accounts"] = len(accounts)
        return result

    async def token(self) -> dict[str, Any]:
        items = [(a.basic_auth,) for a in self.world.spread]
        load, usage = await self.load("token", items=items, duration=self.config.seconds("token"))
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as client:
            issued = await client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                headers={"Authorization": items[0][0]},
            )
            usable = (
                issued.status_code == 200
                and (
                    await client.get(
                        "/v1/balance",
                        headers={"Authorization": f"Bearer {issued.json()['access_token']}"},
                    )
                ).status_code
                == 200
            )
        return self.measured(
            load,
            usage,
            [Check("an issued token is accepted by the API", usable, issued.text[:200])],
        )

    async def subscribe_endpoints(self, api_url: str | None = None) -> dict[str, str] | None:
        """The webhook merchant's endpoints at the local receiver (once per phase), created
        through the API at ``api_url`` (the bench server's by default): their secrets by
        endpoint number; None when the product has no webhooks."""
        if self.hook_secrets:
            return self.hook_secrets
        receiver = f"http://127.0.0.1:{self.config.receiver_port}"
        found: dict[str, str] = {}
        async with httpx.AsyncClient(base_url=api_url or self.base_url, timeout=30) as client:
            for n in range(self.config.webhook_endpoints):
                answer = await client.post(
                    "/v1/webhook_endpoints",
                    headers=payout_headers(self.world.hooks.token, f"we{self.tag}-{n}"),
                    json={"url": f"{receiver}/hooks/{n}", "enabled_events": WEBHOOK_EVENTS},
                )
                if answer.status_code in (404, 405):
                    return None
                if answer.status_code not in (200, 201):
                    raise RuntimeError(
                        f"POST /v1/webhook_endpoints: HTTP {answer.status_code} {answer.text[:300]}"
                    )
                found[str(n)] = answer.json()["secret"]
        self.hook_secrets = found
        return found

    async def webhooks(self) -> dict[str, Any]:
        account = self.world.hooks
        receiver = f"http://127.0.0.1:{self.config.receiver_port}"
        subscribed = await self.subscribe_endpoints()
        if subscribed is None:
            return {"status": "skipped", "skipped": "webhooks not available"}
        secrets_by_endpoint = subscribed
        created: dict[str, float] = {}
        prefix = f"wh{self.tag}"

        def call(i: int) -> Call:
            key = f"{prefix}-{i}"
            return Call(
                "POST",
                "/v1/payments",
                payout_headers(account.token, key),
                payout_body(key),
                expected=201,
            )

        def record(answer: Answer) -> None:
            if answer.status == 201:
                created[answer.json()["id"]] = answer.sent_at

        await self._forget_deliveries(receiver)
        with procs.RssSampler(self._pids()) as rss, procs.CpuWindow() as cpu:
            load = await run_calls(
                self.base_url,
                call,
                concurrency=min(self.connections, 32),
                duration=self.config.seconds("webhooks"),
                rate=self.config.webhook_rate,
                on_answer=record,
            )
            wait = await self.await_deliveries(receiver, len(created), len(secrets_by_endpoint))
        usage = {"rss_mb": rss.result(), "cpu": cpu.result}
        result = self._webhook_result(
            self.measured(load, usage, []), created, secrets_by_endpoint, *wait
        )
        result["connections"] = min(self.connections, 32)
        return result

    async def webhook_worker(self) -> dict[str, Any]:
        """One worker's delivery rate, apart from the API's: ``payment.succeeded`` events
        committed at ``webhook_worker_rate`` per second through the product's own event
        path (EventService.emit: the event sealed, one delivery per subscribed endpoint, in
        transactions of up to 10 events, as a batch of payouts commits them), while the
        worker signs and sends them to the local receiver. In the webhooks scenario the
        same two cores also run the API's payouts, the rail and its callbacks, so that
        figure is bounded by the machine, not by the worker."""
        subscribed = await self.subscribe_endpoints()
        if subscribed is None:
            return {"status": "skipped", "skipped": "webhooks not available"}
        receiver = f"http://127.0.0.1:{self.config.receiver_port}"
        await self._forget_deliveries(receiver)
        created: dict[str, float] = {}
        rate = self.config.webhook_worker_rate
        with procs.RssSampler(self._pids()) as rss, procs.CpuWindow() as cpu:
            offered = await self._emit_events(rate, self.config.seconds("webhook_worker"), created)
            deliveries, state = await self.await_deliveries(
                receiver, len(created), len(subscribed), "webhook_worker"
            )
        usage = {"rss_mb": rss.result(), "cpu": cpu.result}
        base: dict[str, Any] = {"errors": 0, **usage, "checks": []}
        # Only this scenario's events: a late delivery of the webhooks scenario's payouts
        # may still arrive after the receiver was reset.
        mine = f'"pay_ww{self.tag}x'
        deliveries = [d for d in deliveries if mine in d["body"]]
        result = self._webhook_result(base, created, subscribed, deliveries, state)
        result.update(
            {
                "connections": 0,
                "api_processes": 0,
                "events": len(created),
                "events_offered_per_s": rate,
                "events_committed_per_s": round(offered, 1),
                "duration_s": self.config.seconds("webhook_worker"),
                "deliveries_offered_per_s": round(offered * len(subscribed), 1),
            }
        )
        return result

    async def _emit_events(self, rate: float, seconds: float, created: dict[str, float]) -> float:
        """Commit ``rate`` events per second for ``seconds``; returns the rate achieved."""
        partner_id = self.world.hooks.partner.id
        events = self.container.events
        begun = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - begun) < seconds:
            due = min(int(elapsed * rate) - sent, 10)
            if due <= 0:
                await asyncio.sleep(0.005)
                continue
            ids = [f"pay_ww{self.tag}x{n}" for n in range(sent, sent + due)]
            async with self.container.transactions.write() as tx:
                for object_id in ids:
                    await events.emit(
                        tx,
                        partner_id=partner_id,
                        type="payment.succeeded",
                        object_id=object_id,
                        version=1,
                        data={"id": object_id, "object": "payment", "status": "succeeded"},
                    )
            now = time.time()
            created.update(dict.fromkeys(ids, now))
            sent += due
        return sent / (time.monotonic() - begun)

    @staticmethod
    async def _forget_deliveries(receiver: str) -> None:
        """Each webhook scenario counts only its own deliveries."""
        async with httpx.AsyncClient(base_url=receiver, timeout=30) as client:
            (await client.post("/_reset")).raise_for_status()

    async def await_deliveries(
        self, receiver: str, payouts: int, endpoints: int, scenario: str = "webhooks"
    ) -> tuple[list[dict[str, Any]], str]:
        """Wait for every payout's payment.succeeded at every endpoint (then 2 s more, for
        late duplicates). Gives up when nothing arrived for 15 s ("stalled": deliveries are
        missing) or after 3 x the scenario duration, at least 45 s ("still delivering": a
        backlog, reported, not counted as lost)."""
        begun = time.monotonic()
        deadline = begun + max(45.0, 3 * self.config.seconds(scenario))
        last, moved_at, state = -1, begun, "still delivering"
        async with httpx.AsyncClient(base_url=receiver, timeout=30) as client:
            while time.monotonic() < deadline:
                progress = (await client.get("/_progress")).json()
                now = time.monotonic()
                if progress["count"] != last:
                    last, moved_at = progress["count"], now
                done = len(progress["succeeded"]) >= endpoints and all(
                    n >= payouts for n in progress["succeeded"].values()
                )
                if done and now - moved_at >= 2:
                    state = "complete"
                    break
                if not done and now - moved_at >= 15:
                    state = "stalled"
                    break
                await asyncio.sleep(0.5)
            everything: list[dict[str, Any]] = (await client.get("/_deliveries")).json()
        self.out.setdefault("webhook_wait", {})["seconds"] = round(time.monotonic() - begun, 1)
        return everything, state

    def _webhook_result(
        self,
        base: dict[str, Any],
        created: dict[str, float],
        secrets_by_endpoint: dict[str, str],
        deliveries: list[dict[str, Any]],
        wait_state: str,
    ) -> dict[str, Any]:
        bad_signatures = 0
        per_endpoint: dict[str, Counter[str]] = defaultdict(Counter)
        succeeded: dict[str, set[str]] = defaultdict(set)
        first_attempt: dict[tuple[str, str], float] = {}
        event_time: dict[str, float] = {}
        for d in deliveries:
            endpoint, webhook_id = d["endpoint"], d["webhook_id"] or ""
            body = d["body"].encode()
            secret = secrets_by_endpoint.get(endpoint, "")
            if not verify(
                secret, webhook_id, d["webhook_timestamp"] or "", body, d["webhook_signature"] or ""
            ):
                bad_signatures += 1
                continue
            per_endpoint[endpoint][webhook_id] += 1
            key = (endpoint, webhook_id)
            first_attempt[key] = min(first_attempt.get(key, d["received_at"]), d["received_at"])
            event = json.loads(body)
            event_time[webhook_id] = datetime.fromisoformat(event["created_at"]).timestamp()
            if event.get("type") == "payment.succeeded":
                succeeded[endpoint].add(_payment_id(event) or "")
        signed = len(deliveries) - bad_signatures
        times = [d["received_at"] for d in deliveries]
        span = max(times) - min(times) if len(times) > 1 else 0.0
        lags = [(at - event_time[wid]) * 1000 for (_, wid), at in first_attempt.items()]
        summary = summarize(lags)
        duplicates = {e: [w for w, n in c.items() if n > 1] for e, c in per_endpoint.items()}
        missing = {
            e: sorted(set(created) - succeeded[e])[:3]
            for e in secrets_by_endpoint
            if set(created) - succeeded[e]
        }
        outstanding = sum(len(set(created) - succeeded[e]) for e in secrets_by_endpoint)
        throughput = signed / span if span > 0 else 0.0
        result = dict(base)
        result["checks"] = [
            *base["checks"],
            *(
                c.as_dict()
                for c in [
                    Check(
                        "every delivery is correctly signed",
                        bad_signatures == 0,
                        f"{bad_signatures} of {len(deliveries)} failed verification",
                    ),
                    Check(
                        "no webhook-id delivered twice to one endpoint",
                        not any(duplicates.values()),
                        "; ".join(f"{e}: {ids[:3]}" for e, ids in duplicates.items() if ids),
                    ),
                    Check(
                        "every payment.succeeded delivered to every endpoint",
                        not missing or wait_state == "still delivering",
                        ""
                        if not missing
                        else f"not delivered ({wait_state}): {outstanding} payment.succeeded, "
                        f"e.g. {missing}",
                    ),
                ]
            ),
        ]
        result.update(
            {
                "throughput_rps": round(throughput, 1),
                "latency_ms": {
                    "p50": summary.as_dict()["p50_ms"],
                    "p95": summary.as_dict()["p95_ms"],
                    "p99": summary.as_dict()["p99_ms"],
                },
                "endpoints": len(secrets_by_endpoint),
                "payouts": len(created),
                "deliveries": len(deliveries),
                "signed_deliveries": signed,
                "delivery_span_s": round(span, 2),
                "wait": wait_state,
                "succeeded_outstanding": outstanding,
                "event_to_first_attempt": summary.as_dict(),
                "note": "throughput: signed deliveries per second at the receiver; latency: "
                "event created_at to the first attempt's arrival",
            }
        )
        return result

    # -- baselines ---------------------------------------------------------------------------

    async def _echo_baseline(self) -> None:
        log(f"{self.database}: baseline (b) bare endpoint ...")
        await mint_tokens(self.container, self.world)
        load, usage = await self.load(
            "echo",
            tokens=[a.token for a in self.world.spread],
            prefix=f"ec{self.tag}",
            duration=self.config.duration,
        )
        measured = self.measured(load, usage, [])
        measured.update({"scenario": "echo", "connections": self.connections})
        measured["status"] = "ok" if all(c["ok"] for c in measured["checks"]) else "failed"
        self.out["baselines"]["echo"] = measured
        log(f"{self.database}: echo {load.throughput:,.0f}/s, p99 {load.latency.p99} ms")

    async def _operator_checks(self) -> None:
        """After the loads, what an operator runs: ``amanat audit verify`` and ``amanat
        ledger check`` (the CLI, as child processes). Failures fail the run."""
        log(f"{self.database}: amanat audit verify, amanat ledger check ...")
        await self.quiesce()
        found = [
            await asyncio.to_thread(operator_checks.audit_verify, self.env),
            await asyncio.to_thread(operator_checks.ledger_check, self.env),
        ]
        self.out["operator_checks"] = [c.as_dict() for c in found]
        for check in found:
            log(f"{self.database}: {check.name}: {'ok' if check.ok else 'FAILED'} {check.detail}")

    async def _bare_app_baseline(self) -> None:
        """Baseline (b'): bench/bare_app.py, a bare FastAPI app with the same model and
        uvicorn options, in its own process(es) on the API's port, under the echo load."""
        log(f"{self.database}: baseline (b') bare FastAPI app ...")
        child = procs.start(
            "bare-app",
            [sys.executable, "-m", "bench.bare_app"],
            self.env,
            self.dir / "logs" / "bare-app.log",
        )
        self.extra.append(child)
        try:
            await asyncio.to_thread(
                procs.wait_ready, f"{self.base_url}/readyz", child, workers=self._api_workers
            )
            with (
                procs.RssSampler({"api": child.pid}) as rss,
                procs.CpuWindow(roles={"api": child.pid}) as cpu,
            ):
                load, _ = await self.load(
                    "echo",
                    tokens=[a.token for a in self.world.spread],
                    prefix=f"ba{self.tag}",
                    duration=self.config.duration,
                )
            measured = self.measured(load, {"rss_mb": rss.result(), "cpu": cpu.result}, [])
            measured.update({"scenario": "bare_app", "connections": self.connections})
            measured["status"] = "ok" if all(c["ok"] for c in measured["checks"]) else "failed"
            self.out["baselines"]["bare_app"] = measured
            log(
                f"{self.database}: bare FastAPI {load.throughput:,.0f}/s, p99 {load.latency.p99} ms"
            )
            if self.database == "postgresql" and "retrieve" in self.config.scenarios:
                try:
                    await self._bare_read_baseline(child)
                except Exception as exc:  # noqa: BLE001 - reported; the phase goes on
                    self.out["baselines"]["bare_read"] = {
                        "scenario": "bare_read",
                        "status": "error",
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                    log(f"{self.database}: bare read broke: {exc}")
        finally:
            procs.stop(child)
            self.extra.remove(child)

    async def _bare_read_baseline(self, child: procs.Child) -> None:
        """Baseline (b''): the bare app's read of a payment by id through asyncpg, under
        the retrieve scenario's load and ids: a reference for a read by id on this machine."""
        log(f"{self.database}: baseline (b'') bare FastAPI read by id through asyncpg ...")
        items = await self._retrieve_items()
        with (
            procs.RssSampler({"api": child.pid}) as rss,
            procs.CpuWindow(roles={"api": child.pid}) as cpu,
        ):
            load, _ = await self.load("get", items=items, duration=self.config.seconds("retrieve"))
        measured = self.measured(load, {"rss_mb": rss.result(), "cpu": cpu.result}, [])
        measured.update({"scenario": "bare_read", "connections": self.connections})
        measured["status"] = "ok" if all(c["ok"] for c in measured["checks"]) else "failed"
        self.out["baselines"]["bare_read"] = measured
        log(f"{self.database}: bare read {load.throughput:,.0f}/s, p99 {load.latency.p99} ms")

    async def _payment_shaped_baseline(self) -> None:
        """Baseline (a'): five INSERTs and a COMMIT per transaction, no shared row, under
        pgbench with the payout load's connections."""
        if baselines.pgbench_binary() is None:
            return
        log(f"{self.database}: baseline (a') payment-shaped pgbench transaction ...")
        await baselines.create_payment_shaped_tables(self.engine)
        try:
            with procs.CpuWindow() as cpu:
                result = await asyncio.to_thread(
                    baselines.run_pgbench,
                    self.config.pg_admin_url,
                    self.config.pg_database,
                    clients=self.connections,
                    duration=self.config.duration,
                    script=baselines.PAYMENT_SHAPED_SCRIPT,
                )
        finally:
            await baselines.drop_payment_shaped_tables(self.engine)
        self.out["baselines"]["payment_shaped"] = {
            **result.as_dict(),
            "scenario": "payment-shaped pgbench transaction",
            "cpu": cpu.result,
        }
        p99 = result.latency.p99 or 0.0
        log(f"{self.database}: payment-shaped: {result.throughput:,.0f} tx/s, p99 {p99:.1f} ms")

    async def _database_baseline(self) -> None:
        log(f"{self.database}: baseline (a) the payout SQL without the server ...")
        if self.database == "postgresql" and baselines.pgbench_binary() is None:
            self.out["baselines"]["database_skipped"] = "pgbench is not installed"
            log(f"{self.database}: baseline (a) skipped: pgbench is not installed")
            return
        merchants = await baselines.fill_helper_table(self.engine)
        try:
            with procs.CpuWindow() as cpu:
                if self.database == "postgresql":
                    result = await asyncio.to_thread(
                        baselines.run_pgbench,
                        self.config.pg_admin_url,
                        self.config.pg_database,
                        clients=self.connections,
                        duration=self.config.duration,
                        merchants=merchants,
                    )
                else:
                    result = await asyncio.to_thread(
                        baselines.run_sqlite,
                        self.dir / "amanat-bench.db",
                        duration=self.config.duration,
                        merchants=merchants,
                    )
        finally:
            await baselines.drop_helper_table(self.engine)
        label = "db_baseline (pgbench)" if self.database == "postgresql" else "db_baseline"
        self.out["baselines"]["database"] = {
            **result.as_dict(),
            "scenario": label,
            "cpu": cpu.result,
        }
        p99 = result.latency.p99 or 0.0
        log(f"{self.database}: {result.tool}: {result.throughput:,.0f} tx/s, p99 {p99:.1f} ms")

    def _ratios(self) -> None:
        found = self.out["baselines"]
        database = found.get("database", {}).get("throughput_tps")
        shaped = found.get("payment_shaped", {}).get("throughput_tps")
        echo = found.get("echo", {}).get("throughput_rps")
        bare = found.get("bare_app", {}).get("throughput_rps")
        bare_read = found.get("bare_read", {}).get("throughput_rps")
        for scenario in [*self.out["scenarios"].values(), found.get("echo", {})]:
            value = scenario.get("throughput_rps")
            scenario["ratio"] = {
                "database": _rounded(ratio(value, database)),
                "payment_shaped": _rounded(ratio(value, shaped)),
                "echo": _rounded(ratio(value, echo)),
                "bare_app": _rounded(ratio(value, bare)),
                "bare_read": _rounded(ratio(value, bare_read)),
            }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _replay_call(item: tuple[str, ...]) -> Call:
    token, key, body = item
    return Call("POST", "/v1/payments", payout_headers(token, key), body, expected=201, tag=key)


def _full_page(page: dict[str, Any], expect_full: bool) -> bool:
    """Newest first by ``created_at`` as shown (milliseconds, fixed width). Two payments in
    the same millisecond may come in either id order: the server orders them by the exact
    microsecond, which the answer does not show."""
    data = page.get("data", [])
    stamps = [p["created_at"] for p in data]
    ordered = stamps == sorted(stamps, reverse=True)
    return ordered and ((len(data) == 20 and page.get("has_more") is True) or not expect_full)


def _payment_id(event: dict[str, Any]) -> str | None:
    data = event.get("data", {})
    obj = data.get("object", data) if isinstance(data, dict) else {}
    value = obj.get("id") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


def python_calls(
    mode: str, tokens: list[str], items: Sequence[tuple[str, ...]], prefix: str
) -> Callable[[int], Call]:
    """The requests of bench/lua/scenario.lua, for the Python client (BENCH_LOAD=python)."""

    def call(i: int) -> Call:
        if mode in {"create", "echo"}:
            key = f"{prefix}-p-{i}"
            path = "/v1/payments" if mode == "create" else "/bench/echo"
            expected = 201 if mode == "create" else 200
            return Call(
                "POST",
                path,
                payout_headers(tokens[i % len(tokens)], key),
                payout_body(key),
                expected=expected,
            )
        if mode == "replay":
            return _replay_call(items[i % len(items)])
        if mode == "get":
            token, payment = items[i % len(items)]
            return Call("GET", f"/v1/payments/{payment}", {"Authorization": f"Bearer {token}"})
        if mode == "list":
            return Call(
                "GET",
                "/v1/payments?limit=20",
                {"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
            )
        if mode == "token":
            return Call(
                "POST",
                "/oauth/token",
                {
                    "Authorization": items[i % len(items)][0],
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                "grant_type=client_credentials",
            )
        raise ValueError(mode)

    return call


# -- the whole run ---------------------------------------------------------------------------


def _versions(config: BenchConfig, wrk: str | None) -> dict[str, str]:
    found = {"wrk": wrk_version(wrk) if wrk else "wrk not used (BENCH_LOAD=python)"}
    if "postgresql" in config.databases:
        found["pgbench"] = baselines.pgbench_version()

        async def server_version() -> str:
            from sqlalchemy.ext.asyncio import create_async_engine

            base = config.pg_admin_url.replace("postgresql://", "postgresql+asyncpg://", 1)
            engine = create_async_engine(f"{base}/postgres")
            try:
                async with engine.connect() as conn:
                    text = (await conn.execute(sa.text("SHOW server_version"))).scalar_one()
                    return f"PostgreSQL {str(text).split()[0]}"
            finally:
                await engine.dispose()

        found["postgresql"] = asyncio.run(server_version())
    return found


def correctness_failures(results: dict[str, Any]) -> list[str]:
    failures = []
    for database, phase in results["databases"].items():
        if phase.get("error"):
            failures.append(f"{database}: the phase broke: {phase['error']}")
        worker = phase.get("worker_log_clean")
        if worker and not worker["ok"]:
            failures.append(f"{database}: worker log: {worker.get('detail', '')}")
        for check in phase.get("operator_checks", []):
            if not check["ok"]:
                failures.append(f"{database} after the loads: {check['name']} ({check['detail']})")
        baselines_ = phase.get("baselines", {})
        named = [
            *phase.get("scenarios", {}).values(),
            baselines_.get("echo", {}),
            baselines_.get("bare_app", {}),
        ]
        for scenario in named:
            if scenario.get("status") == "error":
                failures.append(f"{database} {scenario['scenario']}: {scenario.get('error')}")
            for check in scenario.get("checks", []):
                if not check["ok"]:
                    failures.append(
                        f"{database} {scenario['scenario']}: {check['name']}"
                        + (f" ({check['detail']})" if check.get("detail") else "")
                    )
    return failures


def run_notes(results: dict[str, Any]) -> list[str]:
    """Webhook backlogs, and other processes taking CPU during the measurements."""
    shared = []
    for database, phase in results["databases"].items():
        measured = [*phase.get("scenarios", {}).values(), *phase.get("baselines", {}).values()]
        for item in filter(lambda x: isinstance(x, dict), measured):
            other = item.get("cpu", {}).get("other_pct", 0.0)
            if other > 25:
                shared.append((other, f"{database} {item.get('scenario', item.get('tool', '?'))}"))
    notes = []
    for database, phase in results["databases"].items():
        hooks = phase.get("scenarios", {}).get("webhooks", {})
        if hooks.get("wait") == "still delivering" and hooks.get("succeeded_outstanding"):
            notes.append(
                f"{database} webhooks: {hooks['succeeded_outstanding']} payment.succeeded "
                "deliveries were still queued when the wait ended (the worker had a backlog); "
                "their delivery was not verified."
            )
    if not shared:
        return notes
    worst = max(shared)
    return [
        *notes,
        f"Other processes shared the machine during {len(shared)} measurement(s) (worst: "
        f"{worst[0]:.0f}% of a core during {worst[1]}); those numbers understate the product. "
        'See the column "Others\' CPU %" and rerun on a quiet machine.',
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="short run, correctness checks only")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the README table from latest.json"
    )
    parser.add_argument(
        "--previous",
        type=Path,
        default=None,
        help="results JSON to print beside this run's figures (default: the previous run's, "
        "bench/results/latest.json, or var/bench/smoke.json for a smoke run)",
    )
    args = parser.parse_args(argv)
    if args.render:
        stored = json.loads((RESULTS_DIR / "latest.json").read_text())
        stored["targets"] = report.evaluate(stored)  # results of older runs: today's targets
        report.update_readme(BENCH_DIR / "README.md", report.render_markdown(stored))
        return 0
    with lock.hold(VAR_DIR / "run.lock"):
        config = load_config(smoke=args.smoke)
        default = VAR_DIR / "smoke.json" if config.smoke else RESULTS_DIR / "latest.json"
        return _run(config, read_previous(args.previous or default))


def read_previous(path: Path) -> dict[str, Any] | None:
    """The figures of the run in ``path`` (read before this run overwrites it), or None."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return report.figures(stored) if isinstance(stored, dict) else None


def _run(config: BenchConfig, previous: dict[str, Any] | None = None) -> int:
    started = time.monotonic()
    # This process runs amanat's services for setup and checks: only their warnings, please.
    configure_logging(json=False, level="WARNING")
    wrk = None
    if config.load_tool == "wrk":
        wrk = ensure_wrk()
        if wrk is None:
            if not config.smoke:
                raise SystemExit(
                    "wrk is missing and could not be installed (apt-get install -y wrk); "
                    "BENCH_LOAD=python runs the Python client instead (much slower)"
                )
            log("wrk unavailable: the smoke run uses the Python client")
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "schema": 1,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "smoke" if config.smoke else "full",
        "git": machine.git_state(),
        "load_average_at_start": list(os.getloadavg()),
        "machine": machine.describe(_versions(config, wrk)),
        "config": {
            "duration_s": config.duration,
            "short_duration_s": config.short_duration,
            "warmup_payouts": config.warmup_payouts,
            "databases": list(config.databases),
            "scenarios": list(config.scenarios),
            "connections": config.connections,
            "merchants": config.merchants,
            "wrk_threads": config.wrk_threads,
            "api_workers": config.api_workers,
            "load_tool": "wrk" if wrk else "python",
            "rate_limits": "platform quotas"
            if config.product_rate_limits
            else f"per-partner read/write quota {HIGH_VOLUME_QUOTA[0]}/{HIGH_VOLUME_QUOTA[1]}",
            "webhook_endpoints": config.webhook_endpoints,
            "webhook_rate": config.webhook_rate,
        },
        "notes": [
            f"Rate limits: every bench partner has a high-volume partner's own read and write "
            f"quota, {HIGH_VOLUME_QUOTA[0]:,} per {HIGH_VOLUME_QUOTA[1]} s per client, set "
            "through PartnerService.set_rate_limit (as `amanat partners set-rate-limit` does); "
            "the other policies keep the platform's quotas."
            if not config.product_rate_limits
            else "Rate limits: the platform's quotas (BENCH_PRODUCT_RATE_LIMITS=1).",
            "The worker runs during the warm-up and the webhook scenario and is stopped for "
            "the API scenarios, so one scenario's rail backlog does not load the next.",
        ],
        "databases": {},
    }
    for database in config.databases:
        results["databases"][database] = Phase(config, database, wrk).run()
        drift = results["databases"][database].get("sql_drift")
        if drift:
            results["notes"].append(
                f"{database}: the server's payout SQL no longer matches the baseline script "
                f"(bench/sql/): {' '.join(drift)}"
            )
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    results["notes"] += run_notes(results)
    results["targets"] = report.evaluate(results)
    results["previous"] = previous
    if config.smoke:
        results["notes"].append(
            "Smoke run: a few seconds per scenario at low concurrency; the figures and targets "
            "show the report's shape, not the product's speed."
        )
    failures = correctness_failures(results)
    results["correctness"] = {"ok": not failures, "failures": failures}
    markdown = report.render_markdown(results)
    if config.smoke:
        report.write_json(VAR_DIR / "smoke.json", results)
    else:
        report.write_json(RESULTS_DIR / "latest.json", results)
        report.update_readme(BENCH_DIR / "README.md", markdown)
    print()
    print(markdown)
    print()
    where = VAR_DIR / "smoke.json" if config.smoke else RESULTS_DIR / "latest.json"
    log(f"done in {results['elapsed_s'] / 60:.1f} min; results in {where.relative_to(ROOT)}")
    if failures:
        log(f"{len(failures)} correctness check(s) FAILED")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
