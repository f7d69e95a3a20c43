"""Deadlines: Pakistan business days from the settlement calendar (its configured
holidays too), the expiry job that closes an unanswered dispute ``lost`` (idempotent, and
safe with two workers at once), and the alerts of disputes near or past a deadline."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import httpx
import pytest
from tests.conftest import _outbound_http
from tests.support import disputes as d

from amanat.bootstrap import Container, build_container
from amanat.disputes.domain.disputes import DisputeStatus
from amanat.disputes.services.disputes import DisputeService
from amanat.kernel.alerts import Severity
from amanat.kernel.clock import FrozenClock
from amanat.platform.settings import Settings, SettlementSettings

HOLIDAY = date(2026, 11, 26)  # a Thursday, closed by configuration
# Opened on Tuesday 24 November 2026; seven business days, the 26th closed: 4 December.
RESPOND_BY = date(2026, 12, 4)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"settlement": SettlementSettings(holidays=[HOLIDAY])})


def karachi_evening(day: date, hour: int, minute: int = 0) -> datetime:
    """``hour``:``minute`` in Karachi on ``day``, in UTC (Karachi is UTC+5)."""
    return datetime(day.year, day.month, day.day, hour - 5, minute, tzinfo=UTC)


async def _disputes(
    client: httpx.AsyncClient, container: Container, count: int
) -> tuple[d.Shop, list[str]]:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    ids = [(await d.opened(client, shop, payment, amount=10_000))["id"] for _ in range(count)]
    return shop, ids


async def test_the_deadline_counts_configured_holidays(
    client: httpx.AsyncClient, container: Container
) -> None:
    _, [dispute_id] = await _disputes(client, container, 1)
    detail = await d.service(container).get(dispute_id)
    assert detail.dispute.respond_by == RESPOND_BY


async def test_an_unanswered_dispute_is_lost_the_day_after_its_deadline(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop, [dispute_id] = await _disputes(client, container, 1)
    service = d.service(container)
    clock.set(karachi_evening(RESPOND_BY, 23, 59))
    assert await service.expire_overdue() == []
    clock.set(karachi_evening(RESPOND_BY, 24))
    assert await service.expire_overdue() == [dispute_id]
    detail = await service.get(dispute_id)
    dispute = detail.dispute
    assert dispute.status is DisputeStatus.LOST
    assert dispute.close_note == "no response by deadline"
    assert (dispute.funds.reversed, dispute.funds.held) == (10_000, 0)
    last = detail.history[-1]
    assert (last.from_status, last.to_status, last.action, last.actor_type) == (
        "needs_response",
        "lost",
        "expire",
        "system",
    )
    assert last.journal_ids
    await shop.sign_in(client)
    assert [e["type"] for e in await d.events(client, shop)][-1] == "dispute.closed"
    assert await d.balance(client, shop) == {"available": 90_000, "held": 0}
    assert await service.expire_overdue() == []  # nothing twice


async def test_an_answered_dispute_never_expires(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop, [answered, accepted] = await _disputes(client, container, 2)
    await d.act(client, shop, answered, "respond", explanation="Delivered.")
    await d.act(client, shop, accepted, "accept")
    clock.set(karachi_evening(date(2027, 2, 1), 12))
    assert await d.service(container).expire_overdue() == []


async def test_two_workers_expire_each_dispute_once(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, settings: Settings
) -> None:
    shop, ids = await _disputes(client, container, 6)
    clock.set(karachi_evening(date(2026, 12, 10), 9))
    other = build_container(settings, clock=clock, http=_outbound_http())
    try:
        first, second = await asyncio.gather(
            d.service(container).expire_overdue(), other.get(DisputeService).expire_overdue()
        )
    finally:
        await other.close()
    assert sorted(first + second) == sorted(ids)
    assert not set(first) & set(second)
    for dispute_id in ids:
        detail = await d.service(container).get(dispute_id)
        assert [t.action for t in detail.history] == ["open", "expire"]
        kinds = [k for k, _, amount in await d.journals(container, dispute_id) if amount > 0]
        assert kinds == ["dispute_hold", "dispute_reversal"]
    assert await d.ledger(container, shop.partner_id) == {"merchant": 40_000, "dispute_held": 0}
    assert len(await d.audits(container, "dispute.expired")) == len(ids)


async def test_the_worker_runs_the_job(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    _, [dispute_id] = await _disputes(client, container, 1)
    [job] = [j for j in container.periodic_jobs() if j.name == "disputes.expire_overdue"]
    assert await job.run() == "no dispute overdue"
    clock.set(karachi_evening(date(2026, 12, 10), 9))
    assert dispute_id in await job.run()


async def test_alerts_near_and_past_the_deadlines(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop, [waiting, reviewed] = await _disputes(client, container, 2)
    await d.act(client, shop, reviewed, "respond", explanation="Delivered.")
    [source] = [
        build(container.services)
        for build in container.registry.alert_sources
        if build(container.services).name == "dispute"
    ]
    assert await source.alerts(clock.now()) == []
    # Wednesday 2 December: Thursday 3 and Friday 4 are the next two business days.
    clock.set(karachi_evening(date(2026, 12, 2), 10))
    [warning] = await source.alerts(clock.now())
    assert (warning.key, warning.severity) == (f"dispute_response_due:{waiting}", Severity.WARNING)
    assert warning.playbook == f"playbooks.md#{warning.kind}"
    assert warning.subject_id == waiting and "2026-12-04" in warning.detail
    clock.set(karachi_evening(date(2026, 12, 5), 10))  # Saturday: past the deadline
    [critical] = await source.alerts(clock.now())
    assert (critical.kind, critical.severity) == ("dispute_response_overdue", Severity.CRITICAL)
    await d.service(container).expire_overdue()
    assert await source.alerts(clock.now()) == []  # closed: the alert is gone
    decide_by = (await d.service(container).get(reviewed)).dispute.decide_by
    clock.set(karachi_evening(decide_by, 10))
    [due] = await source.alerts(clock.now())
    assert (due.kind, due.severity) == ("dispute_decision_due", Severity.WARNING)
    clock.set(karachi_evening(date(2027, 3, 1), 10))
    [late] = await source.alerts(clock.now())
    assert (late.key, late.severity) == (f"dispute_decision_overdue:{reviewed}", Severity.CRITICAL)
    near = await d.service(container).near_deadline()
    assert [(n.dispute.id, n.urgency.overdue) for n in near] == [(reviewed, True)]
