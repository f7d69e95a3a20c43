"""The alert inbox over its sources: the order it lists them in, a source that fails, and
acknowledgements that belong to one occurrence of an alert."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from amanat.bootstrap import Container
from amanat.console.alerts import AlertGone, AlertInbox, AlreadyAcknowledged
from amanat.kernel.alerts import Alert, Severity
from amanat.kernel.clock import FrozenClock
from amanat.kernel.errors import InvalidInput
from amanat.platform.audit.domain import Actor

OPERATOR = Actor(type="operator", id="op_1")


class Source:
    def __init__(self, name: str, alerts: list[Alert] | None = None) -> None:
        self.name = name
        self.current = alerts or []

    async def alerts(self, now: datetime) -> Sequence[Alert]:
        return list(self.current)


class Broken:
    name = "broken"

    async def alerts(self, now: datetime) -> Sequence[Alert]:
        raise RuntimeError("the database went away")


def alert(key: str, severity: Severity, since: datetime) -> Alert:
    return Alert(
        key=key,
        kind=key.split(":")[0],
        severity=severity,
        title=key,
        detail="",
        since=since,
    )


@pytest.fixture
def source() -> Source:
    return Source("fake")


@pytest.fixture
def inbox(container: Container, source: Source) -> AlertInbox:
    return AlertInbox([source, Broken()], container.transactions, container.clock)


async def test_open_first_then_critical_then_newest(
    inbox: AlertInbox, source: Source, clock: FrozenClock
) -> None:
    now = clock.now()
    source.current = [
        alert("old_warning:1", Severity.WARNING, now - timedelta(hours=2)),
        alert("new_warning:1", Severity.WARNING, now - timedelta(minutes=1)),
        alert("old_critical:1", Severity.CRITICAL, now - timedelta(hours=3)),
        alert("new_critical:1", Severity.CRITICAL, now - timedelta(minutes=5)),
    ]
    await inbox.acknowledge(OPERATOR, "Ops One", "new_critical:1", "on it")
    listed = await inbox.inbox()
    assert [i.alert.key for i in listed.items] == [
        "old_critical:1",
        "new_warning:1",
        "old_warning:1",
        "new_critical:1",  # acknowledged: last
    ]
    assert listed.unavailable == ["broken"]  # the others are still listed
    assert [i.alert.key for i in listed.open] == [
        "old_critical:1",
        "new_warning:1",
        "old_warning:1",
    ]


async def test_an_acknowledgement_belongs_to_one_occurrence(
    inbox: AlertInbox, source: Source, clock: FrozenClock
) -> None:
    first_since = clock.now() - timedelta(minutes=1)
    source.current = [alert("webhook_backlog:we_1", Severity.WARNING, first_since)]
    await inbox.acknowledge(OPERATOR, "Ops One", "webhook_backlog:we_1", "partner told")
    with pytest.raises(AlreadyAcknowledged):
        await inbox.acknowledge(OPERATOR, "Ops Two", "webhook_backlog:we_1", "again")

    source.current = []  # the condition clears…
    with pytest.raises(AlertGone):
        await inbox.acknowledge(OPERATOR, "Ops Two", "webhook_backlog:we_1", "gone")
    clock.advance(minutes=30)  # …and comes back: a new occurrence, not acknowledged
    source.current = [alert("webhook_backlog:we_1", Severity.WARNING, clock.now())]
    (item,) = (await inbox.inbox()).items
    assert not item.acknowledged
    clock.advance(seconds=1)
    ack = await inbox.acknowledge(OPERATOR, "Ops Two", "webhook_backlog:we_1", "second time")
    (item,) = (await inbox.inbox()).items
    assert item.acknowledgement == ack and ack.operator_name == "Ops Two"


async def test_the_note_is_checked(inbox: AlertInbox, source: Source, clock: FrozenClock) -> None:
    source.current = [alert("payment_stuck:pay_1", Severity.CRITICAL, clock.now())]
    with pytest.raises(InvalidInput, match="required"):
        await inbox.acknowledge(OPERATOR, "Ops", "payment_stuck:pay_1", " \n ")
    with pytest.raises(InvalidInput, match="at most 1000"):
        await inbox.acknowledge(OPERATOR, "Ops", "payment_stuck:pay_1", "x" * 1001)
    ack = await inbox.acknowledge(OPERATOR, "Ops", "payment_stuck:pay_1", "  " + "x" * 1000 + " ")
    assert ack.note == "x" * 1000


def test_every_alert_source_is_registered(container: Container) -> None:
    built = container.get(AlertInbox)
    assert set(built.source_names) >= {"payments", "webhooks", "reconciliation", "audit"}
