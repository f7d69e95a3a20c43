"""Payments' and webhooks' operations queries on the real database: the backlog drawn for
the past from creation and final-change times, what counts as stuck, and recovery."""

from __future__ import annotations

from datetime import timedelta

import httpx
from tests.api.console.test_operations import collection, payout
from tests.support.oauth import bearer, funded_merchant

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.payments.operations import PaymentOperationsQueries
from amanat.webhooks.operations import WebhookOperationsQueries


async def test_the_backlog_over_time_and_recovery(
    container: Container, clock: FrozenClock, client: httpx.AsyncClient
) -> None:
    t0 = clock.now()
    rail = container.payments.apply_rail_status
    shop = await funded_merchant(container, "Shop")
    auth = await bearer(client, shop)
    first = await payout(client, auth, "p1", 100_000, "SCBL", 1)
    clock.advance(minutes=2)
    second = await payout(client, auth, "p2", 100_000, "HABB", 2)
    clock.advance(minutes=3)  # t0 + 5
    await rail(first, "accepted", sequence=1, cause="t")
    clock.advance(minutes=2)  # t0 + 7
    await rail(second, "rejected", sequence=1, reason_code="AB08", cause="t")
    clock.advance(minutes=3)  # t0 + 10
    await rail(first, "settled", sequence=2, cause="t")
    clock.advance(minutes=2)  # t0 + 12
    await payout(client, await bearer(client, shop), "p3", 100_000, "SCBL", 3)  # stays pending
    clock.advance(minutes=3)  # t0 + 15

    queries = container.get(PaymentOperationsQueries)
    series = await queries.backlog_series(t0 - timedelta(minutes=5), clock.now(), 4)
    assert [at - t0 for at, _ in series] == [timedelta(minutes=m) for m in (-5, 0, 5, 10, 15)]
    assert [n for _, n in series] == [0, 1, 2, 0, 1]

    recovery = await queries.recovery(t0, clock.now(), timedelta(minutes=5))
    assert (recovery.recovered, recovery.median_seconds) == (1, 600.0)  # in flight 10 min
    assert (await queries.recovery(t0, clock.now(), timedelta(minutes=11))).recovered == 0

    failures = await queries.failures(t0, clock.now())
    assert (failures.total.finished, failures.total.failed) == (2, 1)
    assert [(o.key, o.failed) for o in failures.by_code] == [("rail_ab08", 1)]
    assert (await queries.failures(t0 + timedelta(minutes=8), clock.now())).total.failed == 0


async def test_what_counts_as_stuck(
    container: Container, clock: FrozenClock, client: httpx.AsyncClient
) -> None:
    rail = container.payments.apply_rail_status
    auth = await bearer(client, await funded_merchant(container, "Shop"))
    pending = await payout(client, auth, "p1", 100_000, "SCBL", 1)
    processing = await payout(client, auth, "p2", 200_000, "SCBL", 2)
    await rail(processing, "accepted", sequence=1, cause="t")
    awaiting = await collection(client, auth, "c1", 30_000)  # payable for 15 minutes
    await rail(awaiting, "accepted", sequence=1, cause="t")
    queries = container.get(PaymentOperationsQueries)
    ten = timedelta(minutes=10)

    clock.advance(minutes=11)
    stuck = await queries.stuck(clock.now(), ten)
    assert [p.id for p in stuck.oldest] == [pending, processing]
    assert (stuck.count, stuck.amount) == (2, 300_000)
    assert [p.status for p in stuck.oldest] == ["pending", "processing"]

    clock.advance(minutes=15)  # the collection expired 11 minutes ago and is still waiting
    stuck = await queries.stuck(clock.now(), ten, limit=2)
    assert stuck.count == 3 and len(stuck.oldest) == 2
    everything = await queries.stuck(clock.now(), ten)
    awaited = next(p for p in everything.oldest if p.id == awaiting)
    assert awaited.status == "awaiting_approval"
    assert clock.now() - awaited.since == timedelta(minutes=11)  # since its expiry

    impact = await queries.impact(clock.now() - ten, clock.now(), clock.now(), ten)
    assert (impact.partners, impact.customers, impact.stuck_amount) == (1, 3, 330_000)


async def test_the_webhook_backlog_over_time(
    container: Container, clock: FrozenClock, client: httpx.AsyncClient
) -> None:
    t0 = clock.now()
    registered = await funded_merchant(container, "Shop")
    auth = await bearer(client, registered)
    created = await client.post(
        "/v1/webhook_endpoints",
        json={"url": "https://example.pk/hooks", "enabled_events": ["balance.topped_up"]},
        headers=auth | {"Idempotency-Key": "hook"},
    )
    assert created.status_code == 201, created.text
    for n in range(2):
        clock.advance(minutes=5)  # a token lives 5 minutes: a fresh one each time
        auth = await bearer(client, registered)
        topped = await client.post(
            "/v1/sandbox/top_ups", json={"amount": 100}, headers=auth | {"Idempotency-Key": f"{n}"}
        )
        assert topped.status_code == 200, topped.text
    webhooks = container.get(WebhookOperationsQueries)
    points = [t0 + timedelta(minutes=m) for m in (0, 5, 10)]
    assert [n for _, n in await webhooks.backlog_series(points)] == [0, 1, 2]
    backlog = await webhooks.backlog()
    assert (backlog.pending, backlog.held) == (2, 0)
    assert backlog.oldest is not None and backlog.oldest.host == "example.pk"
    assert backlog.oldest.created_at == t0 + timedelta(minutes=5)
    aged = await webhooks.aged_backlogs(clock.now(), timedelta(minutes=4))
    assert [(b.host, b.pending) for b in aged] == [("example.pk", 2)]
    assert await webhooks.aged_backlogs(clock.now(), timedelta(minutes=6)) == []
