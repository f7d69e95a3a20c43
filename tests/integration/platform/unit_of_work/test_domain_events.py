"""Domain events run in the publishing transaction, on both databases: the change and
what a subscriber derives from it commit together, or neither does."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from amanat.bootstrap import Container
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.tables import audit_log
from amanat.platform.unit_of_work.sql import SqlTransaction

ACTOR = Actor(type="cli", id="test")


@dataclass(frozen=True)
class Happened:
    what: str


@dataclass(frozen=True)
class Echoed:
    what: str


async def _actions(container: Container) -> list[str]:
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.db.read() as conn:
        rows = await conn.execute(sa.select(audit_log.c.action).order_by(audit_log.c.seq))
        return [r[0] for r in rows]


async def test_a_subscriber_writes_in_the_publishing_transaction(container: Container) -> None:
    seen: list[str] = []

    async def echo(event: Happened, tx: SqlTransaction) -> None:
        seen.append(event.what)
        await audit.record(tx, container.clock, ACTOR, f"echo.{event.what}")
        tx.publish(Echoed(event.what))  # a handler may publish in turn

    async def last(event: Echoed, tx: SqlTransaction) -> None:
        await audit.record(tx, container.clock, ACTOR, f"last.{event.what}")

    container.transactions.subscribe(Happened, echo)
    container.transactions.subscribe(Echoed, last)
    async with container.transactions.write() as tx:
        await audit.record(tx, container.clock, ACTOR, "change.made")
        tx.publish(Happened("made"))
        assert seen == [], "handlers run when the block ends, before the commit"
    assert seen == ["made"]
    assert await _actions(container) == ["change.made", "echo.made", "last.made"]


async def test_a_failing_subscriber_rolls_the_change_back(container: Container) -> None:
    async def refuse(event: Happened, tx: SqlTransaction) -> None:
        raise RuntimeError("the subscriber cannot take it")

    container.transactions.subscribe(Happened, refuse)
    with pytest.raises(RuntimeError):
        async with container.transactions.write() as tx:
            await audit.record(tx, container.clock, ACTOR, "change.made")
            tx.publish(Happened("made"))
    assert await _actions(container) == []


async def test_events_published_inside_atomic_run_once_at_its_end(container: Container) -> None:
    seen: list[str] = []

    async def count(event: Happened, tx: SqlTransaction) -> None:
        seen.append(event.what)

    container.transactions.subscribe(Happened, count)
    async with container.transactions.atomic():
        async with container.transactions.write() as tx:  # joins the atomic transaction
            tx.publish(Happened("inner"))
        assert seen == []
    assert seen == ["inner"]


async def test_a_lookup_cannot_publish(container: Container) -> None:
    with pytest.raises(RuntimeError, match="domain events need a transaction"):
        async with container.transactions.lookup() as tx:
            tx.publish(Happened("nowhere"))


async def test_repositories_are_built_only_when_touched(container: Container) -> None:
    async with container.transactions.read() as tx:
        assert "payments" not in vars(tx)
        first = tx.payments
        assert tx.payments is first
        assert "payments" in vars(tx)
        assert "webhooks" not in vars(tx)
        with pytest.raises(AttributeError):
            _ = tx.no_such_repository
