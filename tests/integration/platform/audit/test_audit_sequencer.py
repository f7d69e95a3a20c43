"""The audit sequencer's hard cases, on the real database.

Business transactions write their records to the inbox without any shared lock; the
sequencer chains them after commit. These tests hold it to the promises of
docs/security.md: nothing committed is ever missing from the chain, nothing is chained
twice, the chain stays dense and verifiable, and its order is a real order of commits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from random import Random

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection
from tests.conftest import TEST_DB, wipe

from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import FrozenClock
from amanat.kernel.ids import new_id
from amanat.platform.audit import recorder as audit
from amanat.platform.audit import store as audit_store
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.queries import AuditQueries
from amanat.platform.audit.store import SqlAuditRepository
from amanat.platform.audit.tables import audit_inbox, audit_log
from amanat.platform.settings import Settings

ACTOR = Actor(type="client", id="client_seq", request_id="req_seq")
postgresql_only = pytest.mark.skipif(
    TEST_DB != "postgresql",
    reason="SQLite has one writer: a second transaction cannot commit while one is open",
)


@pytest.fixture
async def log(container: Container) -> Container:
    await wipe(container)
    return container


@pytest.fixture
async def machine_b(settings: Settings, clock: FrozenClock) -> AsyncIterator[Container]:
    """A second deployment on the same database: its own engine, pool and sequencer."""
    other = build_container(settings, clock=clock, http=httpx.AsyncClient())
    try:
        yield other
    finally:
        await other.close()


async def commit_record(container: Container, name: str) -> None:
    async with container.transactions.write() as tx:
        await audit.record(tx, container.clock, ACTOR, "test.sequenced", target_id=name)


async def write_uncommitted(conn: AsyncConnection, container: Container, name: str) -> None:
    """Write one record into the inbox inside the caller's still-open transaction."""
    repository = SqlAuditRepository(conn)
    await repository.append_at_commit(
        record_id=new_id("audit"),
        occurred_at=container.clock.now(),
        actor=ACTOR,
        action="test.sequenced",
        target_type=None,
        target_id=name,
        payload={},
    )
    await repository.flush()


async def chain(container: Container) -> list[str]:
    """Chain what is committed, then the chain's target ids, oldest first."""
    await container.audit_integrity.chain_pending()
    async with container.db.read() as conn:
        rows = await conn.execute(sa.select(audit_log.c.target_id).order_by(audit_log.c.seq))
        return [r.target_id for r in rows]


async def inbox_size(container: Container) -> int:
    async with container.db.read() as conn:
        return (
            await conn.execute(sa.select(sa.func.count()).select_from(audit_inbox))
        ).scalar_one()


async def seqs(container: Container) -> list[int]:
    async with container.db.read() as conn:
        return list(
            (await conn.execute(sa.select(audit_log.c.seq).order_by(audit_log.c.seq))).scalars()
        )


@postgresql_only
async def test_commits_finishing_out_of_position_order_are_chained_as_they_commit(
    log: Container,
) -> None:
    written, release = asyncio.Event(), asyncio.Event()

    async def slow_writer() -> None:
        # Takes its inbox position first, then commits last.
        async with log.db.write() as conn:
            await write_uncommitted(conn, log, "first-written")
            written.set()
            await release.wait()

    slow = asyncio.create_task(slow_writer())
    await written.wait()
    await commit_record(log, "first-committed")
    # The sequencer sees only what has committed: the open transaction's record waits.
    assert await chain(log) == ["first-committed"]
    assert await inbox_size(log) == 0  # the open transaction's row is not visible yet
    release.set()
    await slow
    assert await chain(log) == ["first-committed", "first-written"]
    async with log.db.read() as conn:
        # It had taken the earlier position, yet it is chained after: commit order wins.
        assert await conn.scalar(sa.select(sa.func.count()).select_from(audit_inbox)) == 0
    assert await seqs(log) == [1, 2]
    assert (await log.audit_integrity.verify()).ok


async def test_a_transaction_rolled_back_after_taking_a_position_leaves_no_gap(
    log: Container,
) -> None:
    await commit_record(log, "before")
    with pytest.raises(RuntimeError, match="abandon"):
        async with log.db.write() as conn:
            # The row, and its position, exist inside the transaction.
            await write_uncommitted(conn, log, "rolled-back")
            raise RuntimeError("abandon")
    await commit_record(log, "after")
    assert await chain(log) == ["before", "after"]
    assert await seqs(log) == [1, 2]
    assert (await log.audit_integrity.verify()).ok


async def test_a_crash_between_commit_and_chaining_loses_nothing(
    log: Container, machine_b: Container
) -> None:
    for i in range(5):
        await commit_record(log, f"r{i}")
    assert await inbox_size(log) == 5
    # The process that committed them dies before any sequencer ran; another machine's
    # `amanat audit verify` chains them first and finds the log whole.
    report = await machine_b.audit_integrity.verify()
    assert report.ok, report.findings
    assert report.checked == 5
    assert await chain(machine_b) == [f"r{i}" for i in range(5)]


async def test_a_crash_inside_the_sequencer_leaves_the_inbox_as_it_was(
    log: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        await commit_record(log, f"r{i}")
    real_delete = audit_store._DELETE_CHAINED

    class Crash(Exception):
        pass

    original_execute = sa.ext.asyncio.AsyncConnection.execute

    async def crashing_execute(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        if statement is real_delete:
            raise Crash  # after the chain rows were inserted, before commit
        return await original_execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(sa.ext.asyncio.AsyncConnection, "execute", crashing_execute)
    with pytest.raises(Crash):
        await log.audit_integrity.chain_pending()
    monkeypatch.undo()
    assert await seqs(log) == []
    assert await inbox_size(log) == 3
    assert await chain(log) == ["r0", "r1", "r2"]
    assert await inbox_size(log) == 0
    assert (await log.audit_integrity.verify()).ok


async def test_sequencers_on_two_machines_chain_every_record_exactly_once(
    log: Container, machine_b: Container
) -> None:
    names = [f"w{i}" for i in range(120)]
    done = asyncio.Event()

    async def writers() -> None:
        async def write(batch: list[str]) -> None:
            for name in batch:
                await commit_record(log if int(name[1:]) % 2 else machine_b, name)

        await asyncio.gather(*(write(names[i::4]) for i in range(4)))
        done.set()

    async def sequencer(container: Container) -> int:
        chained = 0
        while not done.is_set():
            chained += await container.audit_integrity.chain_pending()
            await asyncio.sleep(0)
        return chained

    results = await asyncio.gather(writers(), sequencer(log), sequencer(machine_b))
    drained = await log.audit_integrity.chain_pending()
    assert results[1] + results[2] + drained == len(names)
    chained = await chain(machine_b)
    assert sorted(chained) == sorted(names)  # every record, none twice
    assert await seqs(log) == list(range(1, len(names) + 1))  # dense, never forked
    assert await inbox_size(log) == 0
    assert (await machine_b.audit_integrity.verify()).ok


async def test_a_seal_covers_every_record_committed_before_it(log: Container) -> None:
    for i in range(4):
        await commit_record(log, f"r{i}")
    seal = await log.audit_integrity.seal(Actor(type="cli", id="tester"))
    assert seal is not None and seal.seq == 4
    # The seal's own record follows the head it signs, straight in the chain.
    assert await chain(log) == ["r0", "r1", "r2", "r3", "4"]
    assert (await log.audit_integrity.verify()).ok


async def test_the_audit_trail_read_model_shows_what_has_just_committed(log: Container) -> None:
    await commit_record(log, "fresh")
    page = await log.get(AuditQueries).records(10, None, None, None)
    assert [r.target_id for r in page.items] == ["fresh"]


# -- any interleaving ------------------------------------------------------------------------


@dataclass
class _Open:
    """A business transaction that wrote its record and waits to be told how to end."""

    name: str
    written: asyncio.Event = field(default_factory=asyncio.Event)
    decided: asyncio.Event = field(default_factory=asyncio.Event)
    commit: bool = True
    task: asyncio.Task[None] | None = None


_OPS = st.lists(
    st.sampled_from(["open", "commit", "rollback", "chain", "seal"]), min_size=1, max_size=14
)


@hypothesis_settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_OPS, pick=st.randoms(use_true_random=False))
def test_any_interleaving_chains_exactly_the_committed_records_in_a_real_commit_order(
    settings: Settings, ops: list[str], pick: Random
) -> None:
    """Transactions open, commit or roll back in any order while sequencers and sealers
    run between them. The chain ends up holding exactly the committed records, numbered
    densely, and verify finds nothing; each pass chains what committed since the pass
    before (so a record committed before a pass precedes every record committed after
    it), and within a pass records follow the order they were written in. Hence, for any
    two records, one whose transaction committed before the other's was written comes
    first: the chain's order is a real order of the commits."""

    async def run() -> None:
        container = build_container(settings, clock=FrozenClock(), http=httpx.AsyncClient())
        try:
            await wipe(container)
            if settings.audit.witness_file is not None:  # the last example's seals
                settings.audit.witness_file.unlink(missing_ok=True)
            opened: list[_Open] = []
            expected: list[str] = []  # the chain the model predicts
            unchained: list[_Open] = []  # committed since the last pass
            written_order: list[str] = []
            one_writer = container.db.is_sqlite  # a second open writer would wait forever

            async def writer(tx: _Open) -> None:
                async with container.db.write() as conn:
                    await write_uncommitted(conn, container, tx.name)  # its position is taken
                    tx.written.set()
                    await tx.decided.wait()
                    if not tx.commit:
                        raise LookupError  # rolls the transaction back

            async def finish(*, commit: bool) -> None:
                tx = opened.pop(pick.randrange(len(opened)))
                tx.commit = commit
                tx.decided.set()
                with contextlib.suppress(LookupError):
                    await tx.task
                if commit:
                    unchained.append(tx)

            def one_pass() -> None:
                unchained.sort(key=lambda tx: written_order.index(tx.name))
                expected.extend(tx.name for tx in unchained)
                unchained.clear()

            for step, op in enumerate(ops):
                if op == "open":
                    if one_writer and opened:
                        await finish(commit=True)
                    tx = _Open(name=f"r{step}")
                    tx.task = asyncio.create_task(writer(tx))
                    await tx.written.wait()
                    written_order.append(tx.name)
                    opened.append(tx)
                elif op in ("commit", "rollback"):
                    if opened:
                        await finish(commit=op == "commit")
                elif one_writer and opened:
                    continue  # the sequencer would wait for the open writer
                elif op == "chain":
                    await container.audit_integrity.chain_pending()
                    one_pass()
                else:
                    sealed = await container.audit_integrity.seal(Actor(type="cli", id="t"))
                    one_pass()
                    if sealed is not None:
                        expected.append(str(sealed.seq))  # its own audit.sealed record
            while opened:
                await finish(commit=True)
            one_pass()
            assert await chain(container) == expected
            assert await seqs(container) == list(range(1, len(expected) + 1))
            assert await inbox_size(container) == 0
            assert (await container.audit_integrity.verify()).ok
        finally:
            await wipe(container)
            await container.close()

    asyncio.run(run())
