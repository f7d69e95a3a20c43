"""The in-memory unit of work keeps SqlTransactions' promises: a failed transaction changes
nothing, nested calls inside atomic() join one transaction, published events run before
commit (and roll back with it), audit records append at commit and chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from amanat.kernel.clock import FrozenClock
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import GENESIS_HASH, SYSTEM
from amanat.platform.crypto.field_cipher import FieldContext, KeyUnavailable
from amanat.platform.fakes import (
    FakeFieldEncryptor,
    FakeProtectionTx,
    FakeTransactions,
    protection_database,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CLOCK = FrozenClock(NOW)


@dataclass(frozen=True)
class Happened:
    what: str


class Boom(Exception):
    pass


def transactions() -> FakeTransactions[FakeProtectionTx]:
    return FakeTransactions(protection_database(), FakeProtectionTx)


async def test_a_failed_transaction_leaves_every_store_as_it_was() -> None:
    uow = transactions()
    async with uow.write() as tx:
        await tx.outbox.enqueue("kept", "s1", {}, NOW)
    with pytest.raises(Boom), uow.database.unchanged():
        async with uow.write() as tx:
            await tx.outbox.enqueue("lost", "s2", {}, NOW)
            await audit.record(tx, CLOCK, SYSTEM, "lost.action")
            raise Boom
    assert [j.kind for j in uow.database.outbox.pending()] == ["kept"]
    assert uow.database.audit_log.actions == []
    assert (uow.commits, uow.rollbacks) == (1, 1)


async def test_inside_atomic_every_use_case_joins_one_transaction() -> None:
    uow = transactions()
    with pytest.raises(Boom):
        async with uow.atomic() as outer:
            async with uow.write() as inner:
                assert inner is outer
                await inner.outbox.enqueue("first", "s1", {}, NOW)
            async with uow.write() as again:
                await again.outbox.enqueue("second", "s1", {}, NOW)
            raise Boom
    assert uow.database.outbox.pending() == []
    with pytest.raises(RuntimeError, match="does not nest"):
        async with uow.atomic(), uow.atomic():
            pass


async def test_a_second_writer_while_one_is_open_is_refused() -> None:
    uow = transactions()
    with pytest.raises(RuntimeError, match="another transaction is open"):
        async with uow.write(), uow.write():
            pass


async def test_handlers_run_in_the_transaction_before_commit_and_roll_back_with_it() -> None:
    uow = transactions()

    async def follow(event: Happened, tx: FakeProtectionTx) -> None:
        await tx.outbox.enqueue(f"after {event.what}", "s", {}, NOW)

    uow.subscribe(Happened, follow)
    async with uow.write() as tx:
        tx.publish(Happened("one"))
        assert uow.database.outbox.pending() == []  # not before the block ends
    assert [j.kind for j in uow.database.outbox.pending()] == ["after one"]

    async def fail(event: Happened, tx: FakeProtectionTx) -> None:
        raise Boom

    uow.subscribe(Happened, fail)
    with pytest.raises(Boom):
        async with uow.write() as tx:
            tx.publish(Happened("two"))
    assert [j.kind for j in uow.database.outbox.pending()] == ["after one"]


async def test_lookup_refuses_events_and_audit_records() -> None:
    uow = transactions()
    with pytest.raises(RuntimeError, match="need a transaction"):
        async with uow.lookup() as tx:
            tx.publish(Happened("x"))


async def test_audit_records_chain_from_genesis() -> None:
    uow = transactions()
    for action in ("a", "b"):
        async with uow.write() as tx:
            await audit.record(tx, CLOCK, SYSTEM, action, payload={"n": 1})
    first, second = (s.record for s in uow.database.audit_log.records)
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.compute_hash())


async def test_the_fake_cipher_binds_context_and_forgets_keys() -> None:
    cipher = FakeFieldEncryptor()
    here = FieldContext("t", "c", "row1")
    sealed = await cipher.encrypt("secret", context=here, key_id="k1")
    assert "secret" not in sealed
    assert await cipher.decrypt(sealed, context=here) == "secret"
    assert cipher.key_id_of(sealed) == "k1"
    with pytest.raises(KeyUnavailable):
        await cipher.decrypt(sealed, context=FieldContext("t", "c", "row2"))
    cipher.forget("k1")
    with pytest.raises(KeyUnavailable):
        await cipher.decrypt(sealed, context=here)
