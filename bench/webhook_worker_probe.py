"""How fast one ``amanat worker`` delivers webhooks, on PostgreSQL, without the API.

Creates a fresh database (``amanat_whprobe``), one partner with ``--endpoints`` endpoints
at a local receiver (``bench/receiver.py``, its own process), starts one worker, and
runs two phases:

* **backlog**: ``--backlog`` events committed at once (each to every endpoint); reports
  deliveries/s until every delivery succeeded and the worker's CPU seconds per delivery.
* **steady**: ``--rate`` events/s, one transaction each, for ``--seconds``; reports
  deliveries/s and event-to-first-attempt p50/p99 (``first_attempt_at`` minus the event's
  ``created_at``, both from the database).

Run from the repository root: ``python -m bench.webhook_worker_probe`` (``--src DIR``
runs the worker from another source tree, to compare a branch with main).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
DATABASE = "amanat_whprobe"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def fresh_database() -> None:
    engine = create_async_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        await conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
    await engine.dispose()


def wait_http(url: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


async def setup(endpoints: int, port: int) -> tuple[object, str]:
    from amanat.auth.domain import Caller
    from amanat.bootstrap import build_container
    from amanat.platform.audit.domain import Actor
    from amanat.platform.settings import Settings

    container = build_container(Settings())
    actor = Actor(type="cli", id="probe")
    partner = await container.partners.create_partner(
        actor, name="Probe shop", roles=["merchant"], mode="sandbox"
    )
    caller = Caller(partner.id, None, actor)
    for n in range(endpoints):
        await container.webhooks.create_endpoint(
            caller,
            url=f"http://127.0.0.1:{port}/hooks/{n}",
            enabled_events=["payment.succeeded"],
            description=None,
        )
    return container, partner.id


async def emit(container: object, partner_id: str, count: int) -> None:
    async with container.transactions.write() as tx:  # type: ignore[attr-defined]
        for _ in range(count):
            await container.events.emit(  # type: ignore[attr-defined]
                tx,
                partner_id=partner_id,
                type="payment.succeeded",
                object_id="pay_probe",
                version=1,
                data={"id": "pay_probe", "object": "payment", "status": "succeeded"},
            )


async def counts(container: object) -> tuple[int, int]:
    async with container.db.read() as conn:  # type: ignore[attr-defined]
        row = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) "
                    "FROM webhook_deliveries"
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def wait_done(container: object, within_seconds: float) -> float:
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        done, total = await counts(container)
        if done == total:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise SystemExit(f"not all delivered in {within_seconds}s: {await counts(container)}")


async def lags(container: object, since_total: int) -> list[float]:
    async with container.db.read() as conn:  # type: ignore[attr-defined]
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT extract(epoch FROM first_attempt_at - event_created_at) "
                    "FROM webhook_deliveries ORDER BY created_at OFFSET :n"
                ),
                {"n": since_total},
            )
        ).all()
    return sorted(float(r[0]) for r in rows)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def probe(args: argparse.Namespace, worker_pid: int) -> dict[str, object]:
    container, partner_id = args.world
    out: dict[str, object] = {}
    await asyncio.sleep(3)  # the worker starts up
    # Backlog: everything committed at once.
    cpu0 = cpu_seconds(worker_pid)
    for start in range(0, args.backlog, 500):
        await emit(container, partner_id, min(500, args.backlog - start))
    t0 = time.monotonic()
    t1 = await wait_done(container, 240)
    cpu1 = cpu_seconds(worker_pid)
    n = args.backlog * args.endpoints
    out["backlog"] = {
        "deliveries": n,
        "per_s": round(n / (t1 - t0), 1),
        "worker_cpu_ms_per_delivery": round((cpu1 - cpu0) * 1000 / n, 3),
    }
    # Steady: one transaction per event, at the offered rate.
    _, before = await counts(container)
    cpu0 = cpu_seconds(worker_pid)
    t0 = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - t0) < args.seconds:
        due = int(elapsed * args.rate) - sent
        for _ in range(due):
            await emit(container, partner_id, 1)
        sent += due
        await asyncio.sleep(0.005)
    t1 = await wait_done(container, 240)
    cpu1 = cpu_seconds(worker_pid)
    n = sent * args.endpoints
    found = await lags(container, before)
    out["steady"] = {
        "events_offered_per_s": args.rate,
        "deliveries": n,
        "per_s": round(n / (t1 - t0), 1),
        "worker_cpu_ms_per_delivery": round((cpu1 - cpu0) * 1000 / n, 3),
        "lag_p50_ms": round(pct(found, 0.50) * 1000, 1),
        "lag_p99_ms": round(pct(found, 0.99) * 1000, 1),
        "lag_max_ms": round(found[-1] * 1000, 1) if found else None,
    }
    received = await asyncio.to_thread(receiver_count, args.port)
    out["receiver_count"] = received
    return out


def receiver_count(port: int) -> int:
    import httpx

    return int(httpx.get(f"http://127.0.0.1:{port}/_count", timeout=5).json()["count"])


def start_worker(
    python: str, profile: str | None, env: dict[str, str], work: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - argv is ours, never user input
        [python, *(["-m", "cProfile", "-o", profile] if profile else []), "-m", "amanat", "worker"],
        env=env,
        cwd=work,
        stdout=open(work / "worker.log", "w"),
        stderr=subprocess.STDOUT,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--backlog", type=int, default=2500, help="events (x endpoints)")
    parser.add_argument("--rate", type=float, default=250, help="events/s in the steady phase")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--profile", help="run the worker under cProfile, writing here")
    parser.add_argument("--src", default=str(ROOT / "src"), help="the worker's source tree")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="whprobe-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMANAT_")}
    env.update(
        {
            "AMANAT_ENV": "sandbox",
            "AMANAT_DATABASE__URL": f"{PG}/{DATABASE}",
            "AMANAT_CRYPTO__SANDBOX_MASTER_KEY_FILE": str(work / "master.key"),
            "AMANAT_CRYPTO__AUDIT_SEAL_KEY_FILE": str(work / "audit-seal.key"),
            "AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE": str(work / "credentials.json"),
            "AMANAT_WORKER__EMBEDDED": "false",
            "AMANAT_OBSERVABILITY__LOG_JSON": "true",
            "PYTHONPATH": os.pathsep.join([args.src, str(ROOT)]),
        }
    )
    os.environ.update({k: v for k, v in env.items() if k.startswith("AMANAT_")})
    asyncio.run(fresh_database())
    from amanat.platform.db.migrate import upgrade

    upgrade(f"{PG}/{DATABASE}")
    python = sys.executable
    receiver = subprocess.Popen(  # noqa: S603 - argv is ours, never user input
        [python, "-m", "bench.receiver", str(args.port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "receiver.log", "w"),  # noqa: SIM115
    )
    worker = None
    try:
        wait_http(f"http://127.0.0.1:{args.port}/_health")

        async def run() -> dict[str, object]:
            args.world = await setup(args.endpoints, args.port)
            nonlocal worker
            worker = start_worker(python, args.profile, env, work)
            try:
                return await probe(args, worker.pid)
            finally:
                await args.world[0].close()

        result = asyncio.run(run())
        result["src"] = args.src
        print(json.dumps(result, indent=2))
        print(f"logs in {work}", file=sys.stderr)
    finally:
        for child in (worker, receiver):
            if child is not None:
                child.terminate()
                child.wait(15)


if __name__ == "__main__":
    main()
