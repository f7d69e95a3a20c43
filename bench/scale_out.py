"""Two scenarios about processes rather than requests.

``scale_out`` (PostgreSQL only): the deployment of two machines, each running one
``amanat serve`` and one ``amanat worker``, separate process groups on separate ports,
sharing one PostgreSQL and one Redis (rate-limit counters, ``AMANAT_REDIS_URL``). It runs
in three steps, each checked:

1. both workers start, webhook payouts go through both APIs, and the workers race for the
   same outbox: no payment is sent to the rail twice (``rail_submitted`` per payment over
   both workers' logs), no webhook is being delivered twice at one endpoint at the same
   moment (the receiver holds each delivery a little, so overlaps show), every delivery is
   correctly signed, and the deliveries arrive (none at all, or none for 15 s while some
   are missing, fails); the workers stop;
2. creates through both APIs at once (one wrk per API port, the connections split between
   them; the workers are stopped, as for ``create_spread``): throughput beside the
   single-process figure, every 201 is a payment, none twice;
3. one partner's read quota set low (through PartnerService, as an operator would), then
   requests of that partner alternating between the two APIs: at most the quota succeed,
   the rest answer 429, so the APIs share one budget.

``sigkill`` (both databases): the API's process group is SIGKILLed in the middle of a create
load, then restarted; ``amanat audit verify`` and ``amanat ledger check`` must pass, and
every payout answered 201 before the kill must exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from bench import checks, operator_checks, procs
from bench.checks import Check
from bench.load import Call, LoadResult, run_calls, run_wrk
from bench.receiver import verify
from bench.stats import summarize
from bench.world import ACTOR, HIGH_VOLUME_QUOTA, payout_body, payout_headers

if TYPE_CHECKING:
    from bench.run import Phase


def combine_loads(results: list[LoadResult]) -> LoadResult:
    """Loads run side by side against different servers, as one: counts add up over the
    longest duration; wrk keeps histograms, not samples, so each percentile is the worst of
    the loads' (an upper bound of the combined one)."""
    if not results:
        raise ValueError("no loads to combine")

    def worst(name: str) -> float | None:
        values = [getattr(r.latency, name) for r in results if getattr(r.latency, name) is not None]
        return max(values) if values else None

    status: Counter[str] = Counter()
    for result in results:
        status.update(result.status)
    latency = summarize([])
    latency = type(latency)(
        count=sum(r.latency.count for r in results),
        mean=worst("mean"),
        p50=worst("p50"),
        p95=worst("p95"),
        p99=worst("p99"),
        max=worst("max"),
    )
    return LoadResult(
        tool="+".join(sorted({r.tool for r in results})),
        duration_s=max(r.duration_s for r in results),
        requests=sum(r.requests for r in results),
        ok=sum(r.ok for r in results),
        status=dict(status),
        transport_errors=sum(r.transport_errors for r in results),
        unexpected=sum(r.unexpected for r in results),
        latency=latency,
        first_bad=next((r.first_bad for r in results if r.first_bad), ""),
        replay_header_missing=sum(r.replay_header_missing for r in results),
    )


def split_connections(total: int, parts: int) -> list[int]:
    """``total`` connections over ``parts`` load generators, as evenly as possible, at least
    one each."""
    base, extra = divmod(max(total, parts), parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


async def redis_reachable(url: str) -> bool:
    import redis.asyncio as redis

    client = redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(await client.ping())  # type: ignore[misc]  # redis-py's stubs: sync or async
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False
    finally:
        await client.aclose()


class ScaleOut:
    """The ``scale_out`` scenario of one phase (PostgreSQL)."""

    def __init__(self, phase: Phase) -> None:
        self.phase = phase
        self.config = phase.config
        self.ports = self.config.scale_out_ports
        self.urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.logs = phase.dir / "logs"
        self.apis: list[procs.Child] = []
        self.workers: list[procs.Child] = []

    def _env(self, port: int, redis_url: str | None) -> dict[str, str]:
        """One machine's environment: its own port, the deployment's one public URL (the
        load balancer's: tokens name it as their issuer), the sandbox rail and its callbacks
        reached through this machine's own API, and the shared Redis."""
        env = dict(self.phase.env)
        env["AMANAT_HTTP__PORT"] = str(port)
        env["AMANAT_RAIL__BASE_URL"] = f"http://127.0.0.1:{port}/sandbox-rail"
        env["AMANAT_RAIL__CALLBACK_URL"] = f"http://127.0.0.1:{port}/rails/raast/callbacks"
        if redis_url:
            env["AMANAT_REDIS_URL"] = redis_url
        return env

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> procs.Child:
        child = procs.start(name, argv, env, self.logs / f"{name}.log")
        self.phase.extra.append(child)
        return child

    async def run(self) -> dict[str, Any]:
        phase = self.phase
        if phase.database != "postgresql":
            return {
                "status": "skipped",
                "skipped": "PostgreSQL only: two machines cannot share one SQLite file",
            }
        redis_url = self.config.redis_url if await redis_reachable(self.config.redis_url) else None
        # The bench server steps aside while the two "machines" run: four processes with a
        # pool of 20 each fill 80 of PostgreSQL's 100 connections, and its two processes'
        # pools on top ran the database out of connections ("too many clients").
        if phase.server is not None:
            procs.stop(phase.server)
            phase.server = None
        try:
            return await self._run(redis_url)
        finally:
            phase.start_server()

    async def _run(self, redis_url: str | None) -> dict[str, Any]:
        phase = self.phase
        amanat = operator_checks.amanat_binary()
        for n, port in enumerate(self.ports):
            env = self._env(port, redis_url)
            api = self._start(f"scale-api-{n}", [amanat, "serve", "--workers", "1"], env)
            self.apis.append(api)
        for api, url in zip(self.apis, self.urls, strict=True):
            await asyncio.to_thread(procs.wait_ready, f"{url}/readyz", api)
        try:
            # The workers' step first: the outbox is worked oldest first, so after the
            # create load the workers would spend the whole step on its thousands of
            # payouts and never reach the webhook payouts (0 deliveries, which the checks
            # used to pass).
            workers = await self._workers(redis_url)
            result = await self._creates()
            limit_check = await self._shared_limit(redis_url)
            result["checks"].append(limit_check.as_dict())
            result["workers"] = workers.pop("summary")
            result["checks"] += workers["checks"]
            for child in self.apis:
                result["checks"].append(
                    checks.server_log_clean(child.log_path, 0, child.name).as_dict()
                )
        finally:
            for child in [*self.workers, *self.apis]:
                procs.stop(child)
                with contextlib.suppress(ValueError):
                    phase.extra.remove(child)
        result.update(
            {
                "api_processes": f"2 x `amanat serve` ({len(self.apis)} machines)",
                "redis": redis_url or "unreachable: counters per process",
            }
        )
        return result

    async def _creates(self) -> dict[str, Any]:
        phase = self.phase
        tokens = [a.token for a in phase.world.spread]
        prefix = f"so{phase.tag}"
        shares = split_connections(phase.connections, len(self.urls))
        pids = {f"api{n}": child.pid for n, child in enumerate(self.apis)}
        roles = {"api": [child.pid for child in self.apis]}
        with procs.RssSampler(pids) as rss, procs.CpuWindow(roles=roles) as cpu:
            if phase.wrk is not None:
                wrk_dir = phase.dir / "wrk"
                wrk_dir.mkdir(parents=True, exist_ok=True)
                token_file = wrk_dir / "scale-out-tokens.txt"
                token_file.write_text("\n".join(tokens) + "\n")
                loads = await asyncio.gather(
                    *(
                        asyncio.to_thread(
                            run_wrk,
                            phase.wrk,
                            url,
                            mode="create",
                            duration=self.config.duration,
                            connections=share,
                            threads=1,
                            args={"prefix": f"{prefix}{n}", "tokens": str(token_file)},
                        )
                        for n, (url, share) in enumerate(zip(self.urls, shares, strict=True))
                    )
                )
            else:
                from bench.run import python_calls

                loads = await asyncio.gather(
                    *(
                        run_calls(
                            url,
                            python_calls("create", tokens, [], f"{prefix}{n}"),
                            concurrency=share,
                            duration=self.config.duration,
                        )
                        for n, (url, share) in enumerate(zip(self.urls, shares, strict=True))
                    )
                )
        load = combine_loads(list(loads))
        peaks = rss.result()
        usage = {
            "rss_mb": {
                "api": round(sum(v for k, v in peaks.items() if not k.endswith("_process")), 1),
                "api_largest_process": max(
                    (v for k, v in peaks.items() if k.endswith("_process")), default=0.0
                ),
            },
            "cpu": cpu.result,
        }
        await phase.quiesce()
        created = await checks.count_payments(phase.engine, prefix)
        unanswered = load.unexpected + load.transport_errors + phase.connections
        result = phase.measured(load, usage, [checks.created_match(created, load.ok, unanswered)])
        result["per_api_rps"] = [round(r.throughput, 1) for r in loads]
        return result

    async def _shared_limit(self, redis_url: str | None) -> Check:
        """One partner's read quota set low; three times as many requests, alternating
        between the two APIs: at most the quota may succeed."""
        if redis_url is None:
            return Check(
                "rate limit shared by the API processes",
                True,
                f"skipped: no Redis at {self.config.redis_url} (counters stay per process)",
            )
        phase = self.phase
        account = phase.world.spread[-1]
        quota = self.config.scale_out_quota
        partners = phase.container.partners
        await partners.set_rate_limit(ACTOR, account.partner.id, "read", (quota, 3600))
        statuses: list[int | None] = []
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                for i in range(quota * 3):
                    try:
                        answer = await client.get(
                            f"{self.urls[i % len(self.urls)]}/v1/balance",
                            headers={"Authorization": f"Bearer {account.token}"},
                        )
                        statuses.append(answer.status_code)
                    except httpx.HTTPError:
                        statuses.append(None)
        finally:
            restored = None if self.config.product_rate_limits else HIGH_VOLUME_QUOTA
            await partners.set_rate_limit(ACTOR, account.partner.id, "read", restored)
        return checks.accepted_within_quota(statuses, quota)

    async def _workers(self, redis_url: str | None) -> dict[str, Any]:
        phase = self.phase
        secrets_by_endpoint = await phase.subscribe_endpoints(self.urls[0])
        amanat = operator_checks.amanat_binary()
        if phase.receiver is not None:  # the single worker's receiver holds the port
            procs.stop(phase.receiver)
            phase.receiver = None
        receiver = self._start(
            "scale-receiver",
            [
                sys.executable,
                "-m",
                "bench.receiver",
                str(self.config.receiver_port),
                str(self.config.receiver_hold_ms),
            ],
            phase.env,
        )
        await asyncio.to_thread(
            procs.wait_ready, f"http://127.0.0.1:{self.config.receiver_port}/_health", receiver
        )
        for n, port in enumerate(self.ports):
            worker = self._start(
                f"scale-worker-{n}", [amanat, "worker"], self._env(port, redis_url)
            )
            self.workers.append(worker)
        for worker in self.workers:
            await asyncio.to_thread(procs.wait_logged, worker, '"worker_started"')
        rail_file = Path(phase.env["AMANAT_RAIL__SANDBOX_STATE_FILE"])
        transfers_before, replays_before = checks.rail_counts(rail_file)
        begun = time.monotonic()
        created: dict[str, float] = {}
        if secrets_by_endpoint:
            created = await self._webhook_payouts()
            deliveries, wait = await phase.await_deliveries(
                f"http://127.0.0.1:{self.config.receiver_port}",
                len(created),
                len(secrets_by_endpoint),
            )
        else:
            await asyncio.sleep(self.config.seconds("webhooks"))
            deliveries, wait = [], "webhooks not available"
        elapsed = time.monotonic() - begun
        for worker in self.workers:
            procs.stop(worker)
        procs.stop(receiver)
        logs = "\n".join(worker.log_path.read_text(errors="replace") for worker in self.workers)
        submitted = checks.events_per_subject(logs, "rail_submitted", "payment_id")
        transfers_after, replays_after = checks.rail_counts(rail_file)
        new_transfers = transfers_after - transfers_before
        bad_signatures = sum(
            1
            for d in deliveries
            if not verify(
                (secrets_by_endpoint or {}).get(d["endpoint"], ""),
                d["webhook_id"] or "",
                d["webhook_timestamp"] or "",
                d["body"].encode(),
                d["webhook_signature"] or "",
            )
        )
        overlapping = checks.overlapping_duplicates(deliveries)
        per_endpoint = Counter((d["endpoint"], d["webhook_id"]) for d in deliveries)
        repeated = sum(1 for n in per_endpoint.values() if n > 1)
        found = [
            checks.sent_once(submitted, new_transfers, replays_after - replays_before),
            Check(
                "no webhook delivered twice at once to one endpoint (two workers)",
                not overlapping,
                f"{len(overlapping)} overlapping, e.g. {overlapping[:3]}",
            ),
            Check(
                "every delivery is correctly signed (two workers)",
                bad_signatures == 0,
                f"{bad_signatures} of {len(deliveries)} failed verification",
            ),
        ]
        if secrets_by_endpoint:
            # Still delivering at the deadline is a backlog (reported); nothing arriving
            # for 15 s while deliveries are missing, or nothing at all, is a failure.
            found.append(
                Check(
                    "the webhook payouts' events reached the endpoints (two workers)",
                    bool(deliveries) and wait != "stalled",
                    f"{len(deliveries)} deliveries for {len(created)} payouts, wait: {wait}",
                )
            )
        found += [
            checks.server_log_clean(worker.log_path, 0, worker.name) for worker in self.workers
        ]
        times = [d["received_at"] for d in deliveries]
        span = max(times) - min(times) if len(times) > 1 else 0.0
        summary = {
            "seconds": round(elapsed, 1),
            "rail_submissions": sum(submitted.values()),
            "rail_new_transfers": new_transfers,
            "rail_replays": replays_after - replays_before,
            "rail_submissions_per_s": round(sum(submitted.values()) / elapsed, 1),
            "webhook_payouts": len(created),
            "deliveries": len(deliveries),
            "deliveries_per_s": round(len(deliveries) / span, 1) if span > 0 else None,
            "webhook_ids_received_more_than_once": repeated,
            "wait": wait,
            "receiver_hold_ms": self.config.receiver_hold_ms,
        }
        return {"summary": summary, "checks": [c.as_dict() for c in found]}

    async def _webhook_payouts(self) -> dict[str, float]:
        """The webhook merchant's payouts, half through each API, at the webhook rate."""
        phase = self.phase
        account = phase.world.hooks
        created: dict[str, float] = {}

        def calls(n: int) -> Any:
            def call(i: int) -> Call:
                key = f"sw{phase.tag}-{n}-{i}"
                return Call(
                    "POST",
                    "/v1/payments",
                    payout_headers(account.token, key),
                    payout_body(key),
                    expected=201,
                )

            return call

        def record(answer: Any) -> None:
            if answer.status == 201:
                created[answer.json()["id"]] = answer.sent_at

        await asyncio.gather(
            *(
                run_calls(
                    url,
                    calls(n),
                    concurrency=max(1, min(phase.connections, 32) // len(self.urls)),
                    duration=self.config.seconds("webhooks"),
                    rate=self.config.webhook_rate / len(self.urls),
                    on_answer=record,
                )
                for n, url in enumerate(self.urls)
            )
        )
        return created


async def sigkill_drill(phase: Phase) -> dict[str, Any]:
    """SIGKILL the API's process group halfway through a create load, restart it, then the
    operator's checks. The load generator sees the kill as connection errors."""
    if phase.server is None:
        raise RuntimeError("the API is not running")
    tokens = [a.token for a in phase.world.spread]
    prefix = f"sk{phase.tag}"
    duration = max(2.0, phase.config.duration)
    loading = asyncio.create_task(
        phase.load("create", tokens=tokens, prefix=prefix, duration=duration)
    )
    await asyncio.sleep(duration / 2)
    killed_at = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(phase.server.pid, signal.SIGKILL)
    await asyncio.to_thread(phase.server.process.wait, 10)
    load, usage = await loading
    phase.start_server()
    restart_s = round(time.monotonic() - killed_at, 1)
    await phase.quiesce()
    created = await checks.count_payments(phase.engine, prefix)
    # Requests in flight at the kill, and those refused while it was down, may or may not
    # have made a payment; every 201 must have.
    unanswered = load.unexpected + load.transport_errors + phase.connections
    audit = await asyncio.to_thread(operator_checks.audit_verify, phase.env)
    ledger = await asyncio.to_thread(operator_checks.ledger_check, phase.env)
    result = phase.measured(
        load,
        usage,
        [checks.created_match(created, load.ok, unanswered), audit, ledger],
    )
    # The kill shows as connection errors (not counted as unexpected answers): the point of
    # the drill, not a failure. An answer with another status than 201 still is one.
    result.update({"killed_after_s": round(duration / 2, 1), "restart_s": restart_s})
    # The window's API processes were killed halfway (and their replacements are not
    # in it): CPU per request would mean nothing here.
    result["cpu_us_per_request"] = None
    return result
