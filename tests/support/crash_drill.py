"""The crash drill: payouts while the whole process tree is SIGKILLed at random moments.

The real ``amanat serve`` (with the sandbox rail mounted and its state file under var/)
and ``amanat worker`` run in one process group; payouts are posted over HTTP; the group
is killed with SIGKILL at a random moment of each cycle and started again. After the last
kill everything runs until no payment is in flight, and then:

- 0 lost: every payout answered 201 exists;
- 0 duplicated: the rail holds at most one transfer per payout, each settled at most
  once, and exactly the payouts amanat says succeeded (same amounts); the ledger balances
  and the balance is conserved (top-up = available + held + what succeeded);
- 0 stuck: every payment is final.

``make drills`` runs it with more kills (``python -m tests.support.crash_drill --help``);
the test suite runs a few cycles (tests/integration/payments/test_crash_drill.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from tests.support.oauth import ACTOR, make_client
from tests.support.processes import (
    answers_healthz,
    environment_without_amanat,
    free_port,
    run_amanat,
    sandbox_key_files,
    wait_until,
)

from amanat.auth.domain import Caller
from amanat.bootstrap import build_container
from amanat.payments.domain import ledger
from amanat.payments.tables import payments
from amanat.platform.settings import Settings

IBAN = "PK36SCBL0000001123456702"
TOP_UP = 10_000_000_000
# Outcomes of the sandbox rail (docs/sandbox-rail.md): plain success, refusals, late,
# duplicate, out-of-order and missing callbacks. Not `06` (503 twice): a burst of them
# opens the circuit breaker, and the backoff that follows is minutes, not a crash matter.
AMOUNTS = (150_000, 150_000, 150_000, 100_001, 100_002, 100_007, 100_008, 100_009, 100_010)
FINAL = ("succeeded", "failed", "canceled", "expired")


@dataclass
class Figures:
    database: str
    kills: int = 0
    requested: int = 0  # POST /v1/payments sent
    accepted: int = 0  # payouts answered 201
    unanswered: int = 0  # requests cut by a kill (may or may not exist)
    payments: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    stuck: int = 0
    duplicated: int = 0
    ledger_problems: list[str] = field(default_factory=list)
    balance_drift: int = 0
    held: int = 0  # still on hold (0 once nothing is in flight)
    rail_transfers: int = 0
    rail_replays: int = 0
    swept: int = 0
    resubmitted_forgotten: int = 0
    recovery_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.stuck
            or self.duplicated
            or self.ledger_problems
            or self.balance_drift
            or self.held
        )

    def report(self) -> str:
        return (
            f"crash drill on {self.database}: {self.kills} SIGKILLs of server+worker during "
            f"{self.requested} payout requests: {self.accepted} accepted (201), "
            f"{self.unanswered} cut by a kill\n"
            f"  payments {self.payments}: {dict(sorted(self.statuses.items()))}\n"
            f"  lost {self.lost}, duplicated {self.duplicated}, stuck {self.stuck}, "
            f"ledger problems {len(self.ledger_problems)}, balance drift {self.balance_drift}, "
            f"still held {self.held}\n"
            f"  rail transfers {self.rail_transfers} (resubmissions answered by replay "
            f"{self.rail_replays}); sweeper re-queued {self.swept}; sent again after the "
            f"rail forgot {self.resubmitted_forgotten}; recovered in {self.recovery_seconds:.1f} s"
        )


class Tree:
    """``amanat serve`` and ``amanat worker`` in one process group, killed together."""

    def __init__(self, workdir: Path, env: dict[str, str], port: int, run: int) -> None:
        self.log = workdir / f"tree-{run}.log"
        out = self.log.open("wb")
        amanat = [sys.executable, "-m", "amanat"]
        self.server = subprocess.Popen(
            [*amanat, "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,  # a group of its own, which the worker joins
        )
        self.worker = subprocess.Popen(
            [*amanat, "worker"],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=self.server.pid,
        )
        out.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait(timeout=10)
        self.worker.wait(timeout=10)

    def stop(self) -> None:
        for process in (self.worker, self.server):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (self.worker, self.server):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def alive(self) -> bool:
        return self.server.poll() is None and self.worker.poll() is None


class Drill:
    def __init__(self, workdir: Path, database_url: str, *, seed: int) -> None:
        self.workdir = workdir
        self.url = database_url
        self.port = free_port()
        self.random = random.Random(seed)
        base = f"http://127.0.0.1:{self.port}"
        self.base = base
        self.env = environment_without_amanat() | sandbox_key_files(workdir)
        self.env |= {
            "AMANAT_ENV": "sandbox",
            "AMANAT_DATABASE__URL": database_url,
            "AMANAT_HTTP__PUBLIC_URL": base,
            "AMANAT_AUTH__ISSUER": base,
            "AMANAT_AUTH__ACCESS_TOKEN_TTL_SECONDS": "86400",
            "AMANAT_SANDBOX__SEED": "false",
            "AMANAT_OBSERVABILITY__LOG_JSON": "true",
            "AMANAT_PAYMENTS__ENQUIRE_AFTER_SECONDS": "1",
            "AMANAT_WORKER__TICK_SECONDS": "1",
            "AMANAT_WORKER__JOB_LEASE_SECONDS": "10",
            "AMANAT_WORKER__SWEEP_EVERY_SECONDS": "2",
            "AMANAT_WORKER__STRANDED_AFTER_SECONDS": "20",
        }
        self.settings = Settings(
            database={"url": database_url},
            auth={"sandbox_credentials_file": workdir / "creds.json"},
            crypto={
                "sandbox_master_key_file": workdir / "master.key",
                "audit_seal_key_file": workdir / "seal.key",
            },
        )
        self.accepted: dict[str, int] = {}
        self.unanswered = 0
        self.runs = 0

    # -- set-up -------------------------------------------------------------------------

    def prepare(self) -> None:
        run_amanat(["migrate"], self.env, self.workdir)
        self.client_id, self.secret, self.partner_id = asyncio.run(self._merchant())

    async def _merchant(self) -> tuple[str, str, str]:
        container = build_container(self.settings)
        try:
            merchant = await make_client(container, name="Crash drill shop")
            await container.payments.top_up(Caller(merchant.partner.id, None, ACTOR), TOP_UP)
            await container.protection.ensure_keys(ACTOR)
            assert merchant.secret is not None
            return merchant.client.id, merchant.secret, merchant.partner.id
        finally:
            await container.close()

    # -- one cycle ----------------------------------------------------------------------

    def start(self) -> Tree:
        self.runs += 1
        tree = Tree(self.workdir, self.env, self.port, self.runs)
        wait_until(
            lambda: answers_healthz(self.base),
            processes=[tree.server, tree.worker],
            output=lambda: tree.log.read_text()[-3000:],
            what="the server and worker to start",
            timeout=60,
            interval=0.1,
        )
        return tree

    async def _post(self, count: int, stop_after: int | None, tree: Tree) -> int:
        """Post up to ``count`` payouts, 4 at a time; kill the tree once ``stop_after`` of
        them were answered (the others are in flight then). Returns how many were sent."""
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as http:
            token = (
                await http.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(self.client_id, self.secret),
                )
            ).json()["access_token"]
            answered = 0
            queue = list(range(count))
            killed = asyncio.Event()
            kill_scheduled = False

            async def one() -> None:
                nonlocal answered, kill_scheduled
                while queue and not killed.is_set():
                    queue.pop()
                    amount = self.random.choice(AMOUNTS)
                    key = f"drill-{self.random.getrandbits(64):016x}"
                    try:
                        response = await http.post(
                            "/v1/payments",
                            json={
                                "amount": amount,
                                "currency": "PKR",
                                "creditor": {"iban": IBAN, "name": "Drill payee"},
                            },
                            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                        )
                    except httpx.TransportError:
                        self.unanswered += 1
                        continue
                    if response.status_code == 429:  # the partner's write limit: wait, again
                        queue.append(0)
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    if response.status_code == 201:
                        self.accepted[response.json()["id"]] = amount
                    elif response.status_code != 503:  # contention is allowed to say so
                        raise RuntimeError(f"{response.status_code}: {response.text}")
                    answered += 1
                    if stop_after is not None and answered >= stop_after and not kill_scheduled:
                        kill_scheduled = True
                        # A random moment a little later: requests, rail calls and callbacks
                        # are in flight.
                        await asyncio.sleep(self.random.uniform(0, 0.3))
                        killed.set()
                        tree.kill()

            await asyncio.gather(*(one() for _ in range(4)))
            return count - len(queue)

    # -- the checks ---------------------------------------------------------------------

    async def _state(self) -> tuple[dict[str, tuple[str, int]], list[str], int, int]:
        container = build_container(self.settings)
        try:
            async with container.db.read() as conn:
                rows = (
                    await conn.execute(
                        sa.select(payments.c.id, payments.c.status, payments.c.amount)
                    )
                ).all()
            async with container.transactions.read() as tx:
                problems = await tx.ledger.check()
                posted, held = await tx.ledger.balance(ledger.merchant_account(self.partner_id))
            return {r.id: (r.status, int(r.amount)) for r in rows}, problems, posted, held
        finally:
            await container.close()

    def recover(self, tree: Tree, limit_seconds: float) -> float:
        started = time.monotonic()
        while True:
            states, *_ = asyncio.run(self._state())
            if all(status in FINAL for status, _ in states.values()):
                return time.monotonic() - started
            if not tree.alive():
                raise RuntimeError(f"the tree died:\n{tree.log.read_text()[-3000:]}")
            if time.monotonic() - started > limit_seconds:
                return time.monotonic() - started
            time.sleep(1)

    def check(self, figures: Figures) -> Figures:
        states, problems, posted, held = asyncio.run(self._state())
        figures.accepted = len(self.accepted)
        figures.unanswered = self.unanswered
        figures.payments = len(states)
        figures.statuses = Counter(status for status, _ in states.values())
        figures.lost = sum(1 for pid in self.accepted if pid not in states)
        figures.stuck = sum(1 for status, _ in states.values() if status not in FINAL)
        figures.ledger_problems = problems
        succeeded = {
            pid: amount for pid, (status, amount) in states.items() if status == "succeeded"
        }
        figures.balance_drift = (TOP_UP - sum(succeeded.values())) - posted
        figures.held = held
        rows = self._rail_transfers()
        figures.rail_transfers = len(rows)
        figures.rail_replays = sum(int(r[3]) for r in rows)
        settled = {r[0]: json.loads(r[2])["amount"] for r in rows if r[1] == "settled"}
        strangers = [r[0] for r in rows if r[0] not in states]
        figures.duplicated = len(strangers) + len(set(settled.items()) ^ set(succeeded.items()))
        logs = "".join(path.read_text(errors="replace") for path in self.workdir.glob("tree-*.log"))
        figures.swept = sum(
            _swept(line) for line in logs.splitlines() if "stranded_payments_requeued" in line
        )
        figures.resubmitted_forgotten = logs.count('"rail_forgot_payment"')
        return figures

    def _rail_transfers(self) -> list[tuple[str, str, str, int]]:
        """What the rail holds, from its own state file (none: it kept nothing)."""
        path = self.workdir / "var" / "sandbox-rail.db"
        if not path.exists():
            return []
        rail = sqlite3.connect(path)
        try:
            query = "SELECT end_to_end_id, status, record, replays FROM transfers"
            return list(rail.execute(query).fetchall())
        finally:
            rail.close()

    # -- the whole drill ----------------------------------------------------------------

    def run(self, *, kills: int, payouts: int, recovery_seconds: float = 300) -> Figures:
        figures = Figures(database="PostgreSQL" if "postgresql" in self.url else "SQLite")
        figures.requested = payouts
        self.prepare()
        per_cycle = max(1, payouts // (kills + 1))
        sent = 0
        for _ in range(kills):
            tree = self.start()
            try:
                stop_after = self.random.randint(1, per_cycle)
                sent += asyncio.run(self._post(per_cycle, stop_after, tree))
            finally:
                if tree.alive():
                    tree.kill()
            figures.kills += 1
        tree = self.start()
        try:
            asyncio.run(self._post(payouts - sent, None, tree))  # what the kills cut short
            figures.recovery_seconds = self.recover(tree, recovery_seconds)
        finally:
            tree.stop()
        return self.check(figures)


def _swept(line: str) -> int:
    try:
        record: dict[str, Any] = json.loads(line)
    except ValueError:
        return 0
    return int(record.get("rail.submit", 0)) + int(record.get("rail.enquire", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=16)
    parser.add_argument("--payouts", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    from tests.conftest import make_database

    failed = False
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for kind in kinds:
        os.environ["AMANAT_TEST_DB"] = kind
        import tests.conftest as conftest

        conftest.TEST_DB = kind
        with tempfile.TemporaryDirectory(prefix="amanat-drill-") as tmp:
            url, drop = make_database(Path(tmp), migrate=False)
            try:
                figures = Drill(Path(tmp), url, seed=args.seed).run(
                    kills=args.kills, payouts=args.payouts
                )
            finally:
                drop()  # type: ignore[operator]
        print(figures.report(), flush=True)
        failed = failed or not figures.ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
