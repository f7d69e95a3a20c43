"""Real worker processes deliver webhooks: one killed with SIGKILL mid-batch loses
nothing (a new worker sends everything, at least once, after the dead one's leases run
out), and two workers side by side never send the same event twice.

The database is a file (or, in the PostgreSQL pass, a fresh PostgreSQL database),
migrated with ``amanat migrate``; the workers are ``amanat worker`` subprocesses; the
receiver is a real HTTP server in this process that answers slowly.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import make_database
from tests.support.oauth import ACTOR
from tests.support.processes import (
    AMANAT,
    environment_without_amanat,
    run_amanat,
    sandbox_key_files,
    start,
    stop,
)
from tests.support.processes import wait_until as wait_for
from tests.support.webhook_receiver import Received, Receiver, Reply, running

from amanat.auth.domain import Caller
from amanat.bootstrap import build_container
from amanat.platform.settings import DatabaseSettings, Settings
from amanat.webhooks.tables import webhook_attempts, webhook_deliveries

pytestmark = pytest.mark.e2e

EVENTS = 30
TIMEOUT_SECONDS = 1  # so a dead worker's lease (2 * timeout + 5 s) runs out in 7 s
WAIT_SECONDS = 60  # generous: only a bound on a hang, never a timing assertion


@dataclass
class World:
    workdir: Path
    env: dict[str, str]
    settings: Settings


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    url, drop = make_database(tmp_path, migrate=False)
    env = environment_without_amanat(keep_prefix="AMANAT_TEST") | sandbox_key_files(tmp_path)
    env |= {
        "AMANAT_ENV": "sandbox",
        "AMANAT_DATABASE__URL": url,
        "AMANAT_WEBHOOKS__TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        # Two at a time to the one endpoint, so a batch is in flight when the kill comes.
        "AMANAT_WEBHOOKS__PER_ENDPOINT_CONCURRENCY": "2",
        "AMANAT_OBSERVABILITY__LOG_JSON": "true",
    }
    run_amanat(["migrate"], env, tmp_path)
    settings = Settings(
        database=DatabaseSettings(url=url),
        auth={"sandbox_credentials_file": tmp_path / "creds.json"},
        crypto={
            "sandbox_master_key_file": tmp_path / "master.key",
            "audit_seal_key_file": tmp_path / "seal.key",
        },
    )
    made = World(tmp_path, env, settings)
    # Create the sandbox key files now: workers starting together must not race to.
    asyncio.run(delivery_state(made))
    assert (tmp_path / "master.key").exists()
    try:
        yield made
    finally:
        drop()  # type: ignore[operator]


async def seed(world: World, url: str) -> list[str]:
    """A partner, an endpoint at ``url`` and EVENTS events, each in its own transaction."""
    container = build_container(world.settings)
    try:
        partner = await container.partners.create_partner(
            ACTOR, name="Killed worker shop", roles=["merchant"], mode="sandbox"
        )
        await container.webhooks.create_endpoint(
            Caller(partner.id, None, ACTOR), url=url, enabled_events=["*"], description=None
        )
        ids = []
        for n in range(EVENTS):
            async with container.transactions.write() as tx:
                event = await container.events.emit(
                    tx,
                    partner_id=partner.id,
                    type="payment.succeeded",
                    object_id=f"pay_{n}",
                    version=3,
                    data={"id": f"pay_{n}", "object": "payment", "version": 3},
                )
            ids.append(event.id)
        return ids
    finally:
        await container.close()


async def delivery_state(world: World) -> tuple[Counter[str], int]:
    container = build_container(world.settings)
    try:
        async with container.db.read() as conn:
            statuses = Counter(
                row.status
                for row in (await conn.execute(sa.select(webhook_deliveries.c.status))).all()
            )
            attempts = (
                await conn.execute(sa.select(sa.func.count()).select_from(webhook_attempts))
            ).scalar_one()
        return statuses, int(attempts)
    finally:
        await container.close()


class Worker:
    def __init__(self, world: World, name: str, **env: str) -> None:
        self.log = world.workdir / f"{name}.log"
        self.process = start([*AMANAT, "worker"], {**world.env, **env}, world.workdir, self.log)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop(self.process, grace=15)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_until(condition: Callable[[], bool], workers: list[Worker], what: str) -> None:
    wait_for(
        condition,
        processes=[worker.process for worker in workers],
        output=lambda: "\n".join(worker.output() for worker in workers),
        what=what,
        timeout=WAIT_SECONDS,
    )


def arrived(receiver: Receiver) -> set[str]:
    return {request.webhook_id for request in receiver.received()}


def test_a_worker_killed_mid_batch_loses_nothing(world: World) -> None:
    answered_before_kill = 4
    hold = threading.Event()  # set once the first worker is dead

    def answer(request: Received) -> Reply:
        # The first few are answered; then the receiver hangs on to the next ones until
        # the worker that sent them is dead, so those are surely in flight at the kill.
        if hold.is_set() or len(receiver.received()) <= answered_before_kill:
            return Reply(200, delay=0.3)
        return Reply(200, hold=hold)

    with running(answer) as receiver:
        event_ids = asyncio.run(seed(world, receiver.url))
        assert len(set(event_ids)) == EVENTS

        first = Worker(world, "first")
        try:
            wait_until(
                lambda: len(receiver.received()) >= answered_before_kill + 2,
                [first],
                "a batch in flight",
            )
            first.kill()
        finally:
            hold.set()
            first.stop()
        assert first.process.returncode == -signal.SIGKILL
        in_flight = [r.webhook_id for r in receiver.received()[answered_before_kill:]]
        assert len(in_flight) >= 2

        second = Worker(world, "second")
        try:
            wait_until(
                lambda: arrived(receiver) >= set(event_ids), [second], "every event to arrive"
            )
            wait_until(
                lambda: asyncio.run(delivery_state(world))[0]["pending"] == 0,
                [second],
                "every delivery to be final",
            )
        finally:
            second.stop()
        assert second.process.returncode == 0, second.output()
        got = Counter(request.webhook_id for request in receiver.received())

    assert set(got) == set(event_ids), "nothing arrived that was not an event"
    # What the dead worker had in flight was sent again, with the same webhook-id, once
    # its lease ran out.
    assert all(got[webhook_id] >= 2 for webhook_id in in_flight)
    statuses, attempts = asyncio.run(delivery_state(world))
    assert statuses == Counter({"succeeded": EVENTS})
    assert attempts >= EVENTS


def test_two_workers_never_send_an_event_twice(world: World) -> None:
    with running(lambda _: Reply(200, delay=0.3)) as receiver:
        # Neither worker dies here, so this test gives them the default timeout (10 s,
        # lease 25 s), not the 1 s the kill test needs to see a dead worker's lease end: on
        # a loaded 2-core machine a 0.3 s answer could take over 1 s, the attempt counted as
        # timed out, and the retry (by design, at least once) reached the receiver twice.
        roomy = {"AMANAT_WEBHOOKS__TIMEOUT_SECONDS": "10"}
        workers = [Worker(world, "one", **roomy), Worker(world, "two", **roomy)]
        try:
            # Both polling before there is anything to claim, so they race for all of it.
            wait_until(
                lambda: all("webhook_deliverer_started" in w.output() for w in workers),
                workers,
                "both workers to start",
            )
            event_ids = asyncio.run(seed(world, receiver.url))
            wait_until(
                lambda: asyncio.run(delivery_state(world))[0]["pending"] == 0,
                workers,
                "every delivery to be final",
            )
        finally:
            for worker in workers:
                worker.stop()
        got = Counter(request.webhook_id for request in receiver.received())

    assert set(got) == set(event_ids)
    assert max(got.values()) == 1, f"sent twice: {[i for i, n in got.items() if n > 1]}"
    statuses, attempts = asyncio.run(delivery_state(world))
    assert statuses == Counter({"succeeded": EVENTS})
    assert attempts == EVENTS
    assert all("webhook_attempt" in w.output() for w in workers), "both took part"
