"""Claiming due webhook deliveries: fair across endpoints, never the same delivery to two
workers at once, and a lease that runs out makes a delivery claimable again; recording
a batch of attempts: each lands once, and only leases still held are settled."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB
from tests.support.oauth import ACTOR

from amanat.auth.domain import Caller
from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.platform.audit.tables import audit_log
from amanat.webhooks.domain.endpoints import Delivery, DeliveryStatus, Verdict
from amanat.webhooks.service import Finished, SendResult
from amanat.webhooks.store import SqlWebhookRepository
from amanat.webhooks.tables import webhook_deliveries

BIG, SMALL = "payment.succeeded", "payment.failed"


@dataclass
class Queue:
    container: Container
    clock: FrozenClock
    partner_id: str
    caller: Caller
    big: str  # endpoint ids
    small: str

    async def emit(self, type: str, count: int) -> list[str]:
        ids = []
        for _ in range(count):
            async with self.container.transactions.write() as tx:
                event = await self.container.events.emit(
                    tx,
                    partner_id=self.partner_id,
                    type=type,
                    object_id="pay_x",
                    version=1,
                    data={"id": "pay_x", "object": "payment", "version": 1},
                )
            ids.append(event.id)
            self.clock.advance(seconds=0.01)  # distinct next_attempt_at, oldest first
        return ids

    async def claim(
        self, owner: str, *, limit: int = 10, per_endpoint: int = 8, exclude: set[str] | None = None
    ) -> list[Delivery]:
        return await self.container.webhooks.claim(
            owner, limit=limit, per_endpoint=per_endpoint, exclude_endpoints=exclude or set()
        )

    def per_endpoint(self, claimed: list[Delivery]) -> dict[str, int]:
        counts = Counter(d.endpoint_id for d in claimed)
        return {"big": counts[self.big], "small": counts[self.small]}


@pytest.fixture
async def queue(container: Container, clock: FrozenClock) -> Queue:
    partner = await container.partners.create_partner(
        ACTOR, name="Queue shop", roles=["merchant"], mode="sandbox"
    )
    caller = Caller(partner.id, None, ACTOR)
    big, _ = await container.webhooks.create_endpoint(
        caller, url="http://127.0.0.1:9/big", enabled_events=[BIG], description=None
    )
    small, _ = await container.webhooks.create_endpoint(
        caller, url="http://127.0.0.1:9/small", enabled_events=[SMALL], description=None
    )
    return Queue(container, clock, partner.id, caller, big.id, small.id)


async def test_a_busy_endpoint_does_not_crowd_out_a_quiet_one(queue: Queue) -> None:
    big_events = await queue.emit(BIG, 50)
    await queue.emit(SMALL, 3)  # all younger than every big one
    claimed = await queue.claim("w1", limit=10, per_endpoint=8)
    assert queue.per_endpoint(claimed) == {"big": 7, "small": 3}
    assert all(d.status is DeliveryStatus.PENDING for d in claimed)
    # Within an endpoint, the oldest go first.
    assert sorted(d.event_id for d in claimed if d.endpoint_id == queue.big) == big_events[:7]


async def test_per_endpoint_caps_one_claim(queue: Queue) -> None:
    await queue.emit(BIG, 20)
    await queue.emit(SMALL, 3)
    claimed = await queue.claim("w1", limit=100, per_endpoint=8)
    assert queue.per_endpoint(claimed) == {"big": 8, "small": 3}
    again = await queue.claim("w1", limit=100, per_endpoint=8)
    assert queue.per_endpoint(again) == {"big": 8, "small": 0}
    assert not {d.id for d in claimed} & {d.id for d in again}


async def test_excluded_endpoints_are_skipped(queue: Queue) -> None:
    await queue.emit(BIG, 5)
    await queue.emit(SMALL, 2)
    claimed = await queue.claim("w1", limit=10, exclude={queue.big})
    assert queue.per_endpoint(claimed) == {"big": 0, "small": 2}
    assert await queue.claim("w1", exclude={queue.big, queue.small}) == []
    assert queue.per_endpoint(await queue.claim("w1")) == {"big": 5, "small": 0}


async def test_only_due_pending_deliveries_of_enabled_endpoints_are_claimed(
    queue: Queue,
) -> None:
    await queue.emit(BIG, 2)
    await queue.emit(SMALL, 2)
    # Push every big delivery into the future; disable the small endpoint.
    [first] = (await queue.claim("w1", limit=1, exclude={queue.small}))[:1]
    await queue.container.webhooks.record(
        first, SendResult(status_code=500, latency_ms=1), owner="w1", started_at=queue.clock.now()
    )
    await queue.container.webhooks.update_endpoint(queue.caller, queue.small, enabled=False)
    claimed = await queue.claim("w2")
    assert [d.endpoint_id for d in claimed] == [queue.big], "the other big one only"
    assert claimed[0].id != first.id
    queue.clock.advance(seconds=7)  # past the retry's 5 s (with jitter)
    assert [d.id for d in await queue.claim("w2")] == [first.id]
    assert await queue.container.webhooks.pending() == 4


async def test_concurrent_claims_never_share_a_delivery(queue: Queue) -> None:
    await queue.emit(BIG, 30)
    await queue.emit(SMALL, 30)
    owners = [f"w{i}" for i in range(6)]
    results = await asyncio.gather(*(queue.claim(o, limit=8, per_endpoint=4) for o in owners))
    ids = [d.id for claimed in results for d in claimed]
    assert len(ids) == len(set(ids)), "a delivery went to two owners"
    assert len(ids) > 8, "more than one owner got work"
    # Every claim is recorded under its owner, with a lease.
    async with queue.container.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    webhook_deliveries.c.id,
                    webhook_deliveries.c.locked_by,
                    webhook_deliveries.c.locked_until,
                ).where(webhook_deliveries.c.id.in_(ids))
            )
        ).all()
    holder = {row.id: row.locked_by for row in rows}
    for owner, claimed in zip(owners, results, strict=True):
        assert all(holder[delivery.id] == owner for delivery in claimed)
    assert all(row.locked_until > queue.clock.now() for row in rows)
    # And a second round takes only what nobody holds.
    later = await queue.claim("late", limit=100, per_endpoint=100)
    assert not {d.id for d in later} & set(ids)
    assert len(later) + len(ids) == 60


@pytest.mark.skipif(TEST_DB != "postgresql", reason="row locks: PostgreSQL only")
async def test_a_claim_skips_rows_another_open_transaction_holds(queue: Queue) -> None:
    """Two real transactions at once: the second neither waits for the first nor takes
    anything the first has locked."""
    await queue.emit(BIG, 6)
    await queue.emit(SMALL, 6)
    db = queue.container.db
    now = queue.clock.now()
    lease = now + timedelta(seconds=30)

    async with db.write() as first_conn:
        first = await SqlWebhookRepository(first_conn).claim(
            "A", now=now, lease_until=lease, limit=6, per_endpoint=3, exclude_endpoints=set()
        )
        assert len(first) == 6
        async with db.write() as second_conn:
            # The same claim: it ranks the same rows first, finds them locked, and takes
            # the next ones instead of waiting or coming away empty.
            second = await asyncio.wait_for(
                SqlWebhookRepository(second_conn).claim(
                    "B",
                    now=now,
                    lease_until=lease,
                    limit=6,
                    per_endpoint=3,
                    exclude_endpoints=set(),
                ),
                timeout=5,  # SKIP LOCKED: never waits on the first transaction
            )
        assert not {d.id for d in first} & {d.id for d in second}
        assert len(second) == 6, "everything the first did not hold"
        assert Counter(d.endpoint_id for d in second) == {queue.big: 3, queue.small: 3}
    # Both committed: all twelve are taken, each by exactly one owner.
    assert await queue.claim("C", limit=100, per_endpoint=100) == []


async def test_an_expired_lease_makes_a_delivery_claimable_again(queue: Queue) -> None:
    await queue.emit(BIG, 1)
    lease = queue.container.webhooks.config.lease
    assert lease == queue.container.webhooks.config.timeout * 2 + timedelta(seconds=5)
    [taken] = await queue.claim("crashed")
    assert await queue.claim("other") == [], "held while the lease runs"
    queue.clock.advance(seconds=lease.total_seconds() - 1)
    assert await queue.claim("other") == []
    queue.clock.advance(seconds=2)
    [again] = await queue.claim("other")
    assert again.id == taken.id

    # The first owner comes back late: its attempt is kept, the delivery is not touched.
    late = await queue.container.webhooks.record(
        taken,
        SendResult(status_code=200, latency_ms=5),
        owner="crashed",
        started_at=queue.clock.now(),
    )
    assert late.lease_lost
    async with queue.container.transactions.read() as tx:
        stored = await tx.webhooks.get_delivery(taken.id)
        attempts = await tx.webhooks.attempts([taken.id])
    assert stored is not None and stored.status is DeliveryStatus.PENDING
    assert [a.status_code for a in attempts[taken.id]] == [200]
    # The new owner settles it.
    done = await queue.container.webhooks.record(
        again,
        SendResult(status_code=200, latency_ms=5),
        owner="other",
        started_at=queue.clock.now(),
    )
    assert not done.lease_lost
    async with queue.container.transactions.read() as tx:
        stored = await tx.webhooks.get_delivery(taken.id)
    assert stored is not None and stored.status is DeliveryStatus.SUCCEEDED
    assert await queue.claim("anyone") == []


async def test_a_claim_on_a_disabled_endpoint_is_released(queue: Queue) -> None:
    await queue.emit(SMALL, 1)
    [claimed] = await queue.claim("w1")
    await queue.container.webhooks.update_endpoint(queue.caller, queue.small, enabled=False)
    assert await queue.container.webhooks.prepare(claimed, "w1") is None
    await queue.container.webhooks.update_endpoint(queue.caller, queue.small, enabled=True)
    # Released, not left to its lease: claimable at once.
    assert [d.id for d in await queue.claim("w2")] == [claimed.id]


async def test_an_attempt_in_flight_when_its_endpoint_is_deleted_does_not_revive_it(
    queue: Queue,
) -> None:
    await queue.emit(BIG, 1)
    [claimed] = await queue.claim("w1")
    await queue.container.webhooks.delete_endpoint(queue.caller, queue.big)
    late = await queue.container.webhooks.record(
        claimed,
        SendResult(status_code=500, latency_ms=5),
        owner="w1",
        started_at=queue.clock.now(),
    )
    assert late.lease_lost
    async with queue.container.transactions.read() as tx:
        stored = await tx.webhooks.get_delivery(claimed.id)
        attempts = await tx.webhooks.attempts([claimed.id])
    assert stored is not None
    assert (stored.status, stored.last_error) == (DeliveryStatus.FAILED, "endpoint deleted")
    assert stored.next_attempt_at is None
    assert [a.status_code for a in attempts[claimed.id]] == [500], "the attempt is on record"
    assert await queue.container.webhooks.pending() == 0


async def test_a_batch_of_attempts_is_recorded_once_in_one_go(queue: Queue) -> None:
    """N finished attempts, one record_many: N attempt rows and N settled deliveries; one
    of them was taken over by another worker meanwhile, so only its attempt is kept. The
    same batch recorded again (a retried flush) changes no delivery."""
    await queue.emit(BIG, 5)
    await queue.emit(SMALL, 2)
    claimed = await queue.claim("w1", limit=10)
    assert len(claimed) == 7
    stolen = next(d for d in claimed if d.endpoint_id == queue.small)
    async with queue.container.db.write() as conn:
        await conn.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.id == stolen.id)
            .values(locked_by="w2")
        )
    now = queue.clock.now()
    outcome = {d.id: (200 if d.endpoint_id == queue.big else 503) for d in claimed}
    finished = [
        Finished(d, SendResult(status_code=outcome[d.id], latency_ms=3), now, False)
        for d in claimed
    ]
    recorded = await queue.container.webhooks.record_many(finished, owner="w1")
    assert [r.lease_lost for r in recorded] == [d.id == stolen.id for d in claimed]
    assert [r.verdict for r in recorded] == [
        Verdict.DELIVERED if outcome[d.id] == 200 else Verdict.RETRY for d in claimed
    ]
    ids = [d.id for d in claimed]
    async with queue.container.transactions.read() as tx:
        attempts = await tx.webhooks.attempts(ids)
        stored = {i: await tx.webhooks.get_delivery(i) for i in ids}
        small = await tx.webhooks.get_endpoint(queue.small)
    assert all(len(attempts[i]) == 1 for i in ids), "each attempt exactly once"
    for delivery in claimed:
        row = stored[delivery.id]
        assert row is not None
        if delivery.id == stolen.id:
            assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 0), "not ours"
        elif outcome[delivery.id] == 200:
            assert (row.status, row.attempts) == (DeliveryStatus.SUCCEEDED, 1)
            assert row.first_attempt_at == now
        else:
            assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
            assert row.next_attempt_at is not None and row.next_attempt_at > now
    assert small is not None and small.failing_since == now, "a failure streak began"
    async with queue.container.db.read() as conn:
        unlocked = (
            await conn.execute(
                sa.select(sa.func.count()).where(
                    webhook_deliveries.c.id.in_(ids), webhook_deliveries.c.locked_by.is_(None)
                )
            )
        ).scalar_one()
    assert unlocked == 6, "every lease of w1 released, w2's kept"

    again = await queue.container.webhooks.record_many(finished, owner="w1")
    assert all(r.lease_lost for r in again), "settled deliveries are not settled twice"
    async with queue.container.transactions.read() as tx:
        assert {i: await tx.webhooks.get_delivery(i) for i in ids} == stored


async def test_a_410_in_a_batch_disables_the_endpoint_once(queue: Queue) -> None:
    await queue.emit(SMALL, 3)
    claimed = await queue.claim("w1")
    now = queue.clock.now()
    recorded = await queue.container.webhooks.record_many(
        [Finished(d, SendResult(status_code=410, latency_ms=1), now) for d in claimed],
        owner="w1",
    )
    assert [r.disabled for r in recorded] == [True, False, False]
    async with queue.container.transactions.read() as tx:
        small = await tx.webhooks.get_endpoint(queue.small)
    assert small is not None and not small.enabled
    assert small.disabled_reason is not None and "410" in small.disabled_reason
    await queue.container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with queue.container.db.read() as conn:
        audited = (
            await conn.execute(
                sa.select(sa.func.count()).where(
                    audit_log.c.action == "webhook_endpoint.disabled",
                    audit_log.c.target_id == queue.small,
                )
            )
        ).scalar_one()
    assert audited == 1


async def test_a_claim_is_one_statement(queue: Queue) -> None:
    """Set-based: however many deliveries a claim takes, it is one statement (after the
    read that looks for due work first)."""
    await queue.emit(BIG, 12)
    await queue.emit(SMALL, 4)
    statements: list[str] = []
    engine = queue.container.db.engine.sync_engine

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        claimed = await queue.container.webhooks.claim(
            "w1", limit=16, per_endpoint=8, exclude_endpoints=set(), look_first=False
        )
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert queue.per_endpoint(claimed) == {"big": 8, "small": 4}
    touching = [s for s in statements if "webhook_deliveries" in s]
    assert len(touching) == 1 and touching[0].lstrip().upper().startswith("WITH")
