"""The audit log on the real database: appends never fork, seals sign the head, and tampering
done directly in SQL (as a superuser stepping around the append-only triggers) is named at
the first bad record by ``verify``."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from tests.conftest import TEST_DB, wipe

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock, format_timestamp, parse_timestamp
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor, StoredRecord, canonical_json, seal_message
from amanat.platform.audit.integrity import VerificationReport
from amanat.platform.audit.seals import Ed25519SealSigner
from amanat.platform.audit.tables import audit_seals

ACTOR = Actor(type="operator", id="op_tester", source_ip="10.1.2.3", request_id="req_1")
SEALER = Actor(type="cli", id="tester")


@pytest.fixture
async def log(container: Container) -> Container:
    """The container over an empty log, whatever an earlier test left behind."""
    await wipe(container)
    return container


async def append(container: Container, clock: FrozenClock, count: int) -> None:
    for _ in range(count):
        clock.advance(seconds=1)
        async with container.transactions.write() as tx:
            n = (await tx.audit.head())[0] + 1
            await audit.record(
                tx,
                clock,
                ACTOR,
                "partner.updated",
                target_type="partner",
                target_id=f"partner_{n}",
                payload={"n": n, "name": "Ayesha Traders", "limits": [1, 2.5, None]},
            )
        await container.audit_integrity.chain_pending()


Statement = str | tuple[str, dict[str, Any]]


async def tamper(container: Container, *statements: Statement) -> None:
    """Run SQL the way only a database superuser can: around the append-only triggers."""
    async with container.db.write() as conn:
        triggers: list[str] = []
        if container.db.is_sqlite:
            rows = await conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type='trigger' "
                "AND tbl_name IN ('audit_log', 'audit_seals')"
            )
            for name, sql in rows.all():
                triggers.append(sql)
                await conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
            assert len(triggers) == 4
        else:
            await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for statement in statements:
            sql, params = (statement, {}) if isinstance(statement, str) else statement
            await conn.execute(sa.text(sql), params)
        for sql in triggers:
            await conn.exec_driver_sql(sql)


async def stored(container: Container) -> list[StoredRecord]:
    """The chain, after the sequencer has chained everything committed."""
    await container.audit_integrity.chain_pending()
    async with container.transactions.read() as tx:
        return await tx.audit.stored_records(0, 10_000)


def where(report: VerificationReport) -> tuple[int, str] | None:
    return None if report.finding is None else (report.finding.seq, report.finding.kind)


def found(report: VerificationReport) -> list[tuple[int, str]]:
    return [(f.seq, f.kind) for f in report.findings]


# -- a clean log --------------------------------------------------------------------------


async def test_an_empty_log_verifies(log: Container) -> None:
    report = await log.audit_integrity.verify()
    assert report == VerificationReport(
        ok=True, checked=0, head_seq=0, seals=0, findings=[], witnessed=0
    )


async def test_a_clean_log_verifies_with_the_right_count(
    log: Container, clock: FrozenClock
) -> None:
    await append(log, clock, 12)
    assert await log.audit_integrity.seal(SEALER) is not None  # seals 12, records 13
    await append(log, clock, 3)
    report = await log.audit_integrity.verify()
    assert report.ok, report.finding
    assert (report.checked, report.head_seq, report.seals) == (16, 16, 1)
    records = await stored(log)
    assert [s.record.seq for s in records] == list(range(1, 17))
    assert records[12].record.action == "audit.sealed"
    assert records[0].record.payload == {"n": 1, "name": "Ayesha Traders", "limits": [1, 2.5, None]}
    assert records[0].record.actor == ACTOR


async def test_a_rolled_back_append_leaves_no_gap(log: Container, clock: FrozenClock) -> None:
    await append(log, clock, 2)
    with pytest.raises(RuntimeError, match="abandon"):
        async with log.transactions.write() as tx:
            await audit.record(tx, clock, ACTOR, "partner.updated")
            raise RuntimeError("abandon")
    await append(log, clock, 1)
    assert [s.record.seq for s in await stored(log)] == [1, 2, 3]
    assert (await log.audit_integrity.verify()).ok


async def test_fifty_concurrent_appends_never_fork_the_chain(
    log: Container, clock: FrozenClock
) -> None:
    async def one(i: int) -> None:
        async with log.transactions.write() as tx:
            await audit.record(
                tx, clock, ACTOR, "test.concurrent", target_id=str(i), payload={"i": i}
            )

    await asyncio.gather(*(one(i) for i in range(50)))
    records = await stored(log)
    assert [s.record.seq for s in records] == list(range(1, 51))
    assert sorted(s.record.payload["i"] for s in records) == list(range(50))
    for before, after in itertools.pairwise(records):
        assert after.record.prev_hash == before.stored_hash
    report = await log.audit_integrity.verify()
    assert report.ok, report.finding
    assert (report.checked, report.head_seq) == (50, 50)


# -- the append-only guard ----------------------------------------------------------------


async def refused_as_append_only(log: Container, table: str, *statements: str) -> None:
    """Each statement (and, on PostgreSQL, TRUNCATE of ``table``) fails on the
    append-only guard."""
    if TEST_DB == "postgresql":
        statements = (*statements, f"TRUNCATE {table}")
    for statement in statements:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with log.db.write() as conn:
                await conn.execute(sa.text(statement))


async def test_ordinary_update_and_delete_on_the_log_are_refused(
    log: Container, clock: FrozenClock
) -> None:
    await append(log, clock, 3)
    await tamper(log, "UPDATE audit_head SET id = 1 WHERE id = 1")  # triggers put back
    await refused_as_append_only(
        log,
        "audit_log",
        "UPDATE audit_log SET action = 'x.y' WHERE seq = 2",
        "UPDATE audit_log SET seq = 99 WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 3",
        "DELETE FROM audit_log",
    )
    records = await stored(log)
    assert [s.record.seq for s in records] == [1, 2, 3]
    assert records[1].record.action == "partner.updated"
    assert (await log.audit_integrity.verify()).ok


# -- tampering in SQL ---------------------------------------------------------------------
# The log: records 1-8, a seal over 8, its audit.sealed record 9, then records 10 and 11.

TAMPERING = {
    "edit action": (["UPDATE audit_log SET action = 'partner.viewed' WHERE seq = 4"], 4, "edited"),
    "edit payload": (
        [("UPDATE audit_log SET payload = :p WHERE seq = 4", {"p": '{"n":4,"name":"Else"}'})],
        4,
        "edited",
    ),
    "edit actor": (["UPDATE audit_log SET actor_id = 'op_other' WHERE seq = 2"], 2, "edited"),
    "edit source ip": (["UPDATE audit_log SET source_ip = NULL WHERE seq = 10"], 10, "edited"),
    "edit stored hash": (
        [("UPDATE audit_log SET hash = :h WHERE seq = 6", {"h": "e" * 64})],
        6,
        "edited",
    ),
    "delete a middle record": (["DELETE FROM audit_log WHERE seq = 5"], 5, "gap"),
    "delete the first record": (["DELETE FROM audit_log WHERE seq = 1"], 1, "gap"),
    "swap two seqs": (
        [
            "UPDATE audit_log SET seq = 1000000 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = 6",
            "UPDATE audit_log SET seq = 6 WHERE seq = 1000000",
        ],
        3,
        "broken_link",
    ),
    "swap two neighbours": (
        [
            "UPDATE audit_log SET seq = 1000000 WHERE seq = 7",
            "UPDATE audit_log SET seq = 7 WHERE seq = 8",
            "UPDATE audit_log SET seq = 8 WHERE seq = 1000000",
        ],
        7,
        "broken_link",
    ),
    "truncate below the seal": (["DELETE FROM audit_log WHERE seq >= 7"], 7, "truncated"),
    "truncate below the seal and rewind the head": (
        [
            "DELETE FROM audit_log WHERE seq >= 7",
            "UPDATE audit_head SET seq = 6, "
            "hash = (SELECT hash FROM audit_log WHERE seq = 6) WHERE id = 1",
        ],
        7,
        "truncated",
    ),
    "truncate the tail": (["DELETE FROM audit_log WHERE seq >= 10"], 10, "truncated"),
    "head hash changed": (
        [("UPDATE audit_head SET hash = :h WHERE id = 1", {"h": "f" * 64})],
        11,
        "head_mismatch",
    ),
    "head moved forward": (["UPDATE audit_head SET seq = 14 WHERE id = 1"], 12, "truncated"),
    "head moved back": (
        [
            "UPDATE audit_head SET seq = 9, "
            "hash = (SELECT hash FROM audit_log WHERE seq = 9) WHERE id = 1"
        ],
        10,
        "head_mismatch",
    ),
}


async def _sealed_log(container: Container, clock: FrozenClock) -> None:
    await append(container, clock, 8)
    seal = await container.audit_integrity.seal(SEALER)
    assert seal is not None
    assert seal.seq == 8
    await append(container, clock, 2)
    assert (await container.audit_integrity.verify()).ok


@pytest.mark.parametrize("case", list(TAMPERING))
async def test_tampering_is_named_at_the_first_bad_record(
    log: Container, clock: FrozenClock, case: str
) -> None:
    statements, seq, kind = TAMPERING[case]
    await _sealed_log(log, clock)
    await tamper(log, *statements)
    report = await log.audit_integrity.verify()
    assert not report.ok
    assert where(report) == (seq, kind), report.findings


async def test_a_rewritten_tail_with_recomputed_hashes_fails_the_seal(
    log: Container, clock: FrozenClock
) -> None:
    """An attacker who edits record 4 and rehashes everything after it (and the head) leaves
    a self-consistent chain; the seal over record 8 still names it."""
    await _sealed_log(log, clock)
    records = await stored(log)
    statements: list[Statement] = []
    prev = records[2].stored_hash
    for item in records[3:]:
        record = dataclasses.replace(item.record, prev_hash=prev)
        if record.seq == 4:
            record = dataclasses.replace(record, payload=record.payload | {"name": "Mallory"})
        prev = record.compute_hash()
        statements.append(
            (
                "UPDATE audit_log SET payload = :payload, prev_hash = :prev, hash = :hash "
                "WHERE seq = :seq",
                {
                    "payload": canonical_json(record.payload),
                    "prev": record.prev_hash,
                    "hash": prev,
                    "seq": record.seq,
                },
            )
        )
    statements.append(("UPDATE audit_head SET hash = :h WHERE id = 1", {"h": prev}))
    await tamper(log, *statements)
    report = await log.audit_integrity.verify()
    assert where(report) == (8, "seal_mismatch")
    assert report.checked == 11


# -- seals --------------------------------------------------------------------------------


async def test_sealing_without_new_records_returns_none(log: Container, clock: FrozenClock) -> None:
    assert await log.audit_integrity.seal(SEALER) is None  # nothing to seal yet
    await append(log, clock, 3)
    first = await log.audit_integrity.seal(SEALER)
    assert first is not None
    assert first.seq == 3
    clock.advance(minutes=10)
    assert await log.audit_integrity.seal(SEALER) is None
    assert await log.audit_integrity.seal(SEALER) is None
    await append(log, clock, 1)  # record 5, after the audit.sealed record 4
    second = await log.audit_integrity.seal(SEALER)
    assert second is not None
    assert second.seq == 5
    report = await log.audit_integrity.verify()
    assert report.ok, report.finding
    assert (report.checked, report.seals) == (6, 2)
    sealed = [s.record for s in await stored(log) if s.record.action == "audit.sealed"]
    assert [(r.seq, r.target_id) for r in sealed] == [(4, "3"), (6, "5")]


async def test_export_seals_lists_verifiable_signed_heads(
    log: Container, clock: FrozenClock
) -> None:
    await append(log, clock, 2)
    await log.audit_integrity.seal(SEALER)
    await append(log, clock, 2)
    clock.advance(hours=1)
    await log.audit_integrity.seal(SEALER)
    exported = await log.audit_integrity.export_seals()
    records = {s.record.seq: s.stored_hash for s in await stored(log)}
    assert [e["seq"] for e in exported] == [2, 5]
    own_key = Ed25519SealSigner.from_file(log.settings.crypto.audit_seal_key_file, create=False)
    for entry in exported:
        assert set(entry) == {"seq", "head_hash", "signature", "public_key", "sealed_at"}
        assert entry["head_hash"] == records[entry["seq"]]
        assert entry["public_key"] == own_key.public_key
        assert entry["sealed_at"].endswith(".000Z")
        message = seal_message(
            entry["seq"], entry["head_hash"], parse_timestamp(entry["sealed_at"])
        )
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"]))
        public.verify(base64.b64decode(entry["signature"]), message)  # raises if forged
    assert exported[1]["sealed_at"] > exported[0]["sealed_at"]
    json.dumps(exported)  # plain JSON, ready to keep elsewhere


@pytest.mark.parametrize("claims", ["its own key", "our key"])
async def test_a_forged_seal_is_a_bad_signature(
    log: Container, clock: FrozenClock, claims: str
) -> None:
    await append(log, clock, 3)
    await log.audit_integrity.seal(SEALER)  # seals 3; record 4 is its audit record
    await append(log, clock, 2)
    forger = Ed25519SealSigner(Ed25519PrivateKey.generate())
    head_seq, head_hash = 6, (await stored(log))[5].stored_hash
    sealed_at = clock.now().replace(microsecond=0)
    row: dict[str, Any] = {
        "seq": head_seq,
        "head_hash": head_hash,
        "signature": forger.sign(seal_message(head_seq, head_hash, sealed_at)),
        "public_key": forger.public_key,
        "sealed_at": sealed_at,
    }
    if claims == "our key":
        own = Ed25519SealSigner.from_file(log.settings.crypto.audit_seal_key_file, create=False)
        row["public_key"] = own.public_key
    async with log.db.write() as conn:
        await conn.execute(audit_seals.insert().values(**row))
    report = await log.audit_integrity.verify()
    assert where(report) == (6, "bad_signature")
    assert report.seals == 2
    assert format_timestamp(sealed_at).endswith(".000Z")


async def test_two_sealers_at_once_never_collide(container: Container) -> None:
    async with container.transactions.write() as tx:
        await audit.record(tx, container.clock, Actor(type="cli", id="t"), "test.concurrent")
    results = await asyncio.gather(
        container.audit_integrity.seal(Actor(type="cli", id="a")),
        container.audit_integrity.seal(Actor(type="cli", id="b")),
    )
    assert sum(r is not None for r in results) == 1
    assert (await container.audit_integrity.verify()).ok


# -- seals are append-only, and anchored outside the database ---------------------------


async def test_update_and_delete_on_seals_are_refused(log: Container, clock: FrozenClock) -> None:
    await append(log, clock, 2)
    assert await log.audit_integrity.seal(SEALER) is not None
    await refused_as_append_only(
        log,
        "audit_seals",
        "UPDATE audit_seals SET head_hash = 'x' WHERE seq = 2",
        "DELETE FROM audit_seals WHERE seq = 2",
        "DELETE FROM audit_seals",
    )
    assert (await log.audit_integrity.verify()).seals == 1


def witness_lines(container: Container) -> list[dict[str, Any]]:
    path = container.settings.audit.witness_file
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_every_seal_is_written_to_the_witness(log: Container, clock: FrozenClock) -> None:
    await append(log, clock, 3)
    await log.audit_integrity.seal(SEALER)
    await append(log, clock, 2)
    await log.audit_integrity.seal(SEALER)
    assert witness_lines(log) == await log.audit_integrity.export_seals()
    assert [line["seq"] for line in witness_lines(log)] == [3, 6]
    report = await log.audit_integrity.verify()
    assert report.ok, report.findings
    assert report.witnessed == 2


async def test_a_witness_that_missed_seals_is_caught_up(
    log: Container, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amanat.platform.audit.integrity import WitnessUnavailable
    from amanat.platform.audit.witness import FileWitness

    await append(log, clock, 2)
    real_append = FileWitness._append

    def unavailable(self: FileWitness, seals: list[Any]) -> None:
        raise OSError("witness storage unmounted")

    monkeypatch.setattr(FileWitness, "_append", unavailable)
    with pytest.raises(WitnessUnavailable, match="file: OSError"):
        await log.audit_integrity.seal(SEALER)
    monkeypatch.setattr(FileWitness, "_append", real_append)
    clock.advance(seconds=5)
    # Nothing new to seal, but the seal the witness missed is delivered now.
    assert (
        await log.audit_integrity.seal_if_due(SEALER, every_records=1000, every=timedelta(0))
        is None
    )
    assert [line["seq"] for line in witness_lines(log)] == [2]
    assert (await log.audit_integrity.verify()).ok


async def test_seals_are_due_by_count_or_by_time(log: Container, clock: FrozenClock) -> None:
    every = timedelta(seconds=2)
    service = log.audit_integrity
    assert await service.seal_if_due(SEALER, every_records=5, every=every) is None  # empty
    await append(log, clock, 1)
    first = await service.seal_if_due(SEALER, every_records=5, every=every)
    assert first is not None  # the first record is sealed at once
    assert first.seq == 1
    await append(log, clock, 4)  # time moves 1 s a record: 4 s, 4 records + 1 sealed record
    by_count = await service.seal_if_due(SEALER, every_records=5, every=timedelta(hours=1))
    assert by_count is not None
    assert by_count.seq == 6
    await append(log, clock, 1)
    assert await service.seal_if_due(SEALER, every_records=5, every=every) is None  # 1 s
    clock.advance(seconds=1)
    by_time = await service.seal_if_due(SEALER, every_records=5, every=every)
    assert by_time is not None
    assert by_time.seq == 8
    clock.advance(seconds=60)  # idle: only its own audit.sealed record is new
    assert await service.seal_if_due(SEALER, every_records=5, every=every) is None
    assert [line["seq"] for line in witness_lines(log)] == [1, 6, 8]


async def test_the_sealer_worker_seals_in_the_background(
    log: Container, clock: FrozenClock
) -> None:
    from amanat.platform.audit.sealer import AuditSealer

    await append(log, clock, 3)
    sealer = AuditSealer(log.audit_integrity, every_records=1000, every_seconds=2.0)
    seal = await sealer.run_once()
    assert seal is not None
    assert seal.seq == 3
    assert await sealer.run_once() is None
    assert (await log.audit_integrity.verify()).witnessed == 1


async def test_an_http_witness_receives_each_seal(log: Container, clock: FrozenClock) -> None:
    import httpx

    from amanat.platform.audit.integrity import AuditIntegrityService
    from amanat.platform.audit.witness import HttpWitness, seal_from_json

    received: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(json.loads(request.content))
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        witness = HttpWitness(http, "https://witness.example/seals", timeout_seconds=1)
        signer = Ed25519SealSigner.from_file(log.settings.crypto.audit_seal_key_file, create=True)
        service = AuditIntegrityService(log.transactions, clock, signer, [witness])
        await append(log, clock, 2)
        await service.seal(SEALER)
        await append(log, clock, 1)
        await service.seal(SEALER)
    assert [r["seq"] for r in received] == [2, 4]
    assert [seal_from_json(r).seq for r in received] == [2, 4]


# -- every finding, never a traceback -------------------------------------------------------


async def test_an_unparsable_payload_and_timestamp_are_findings_not_crashes(
    log: Container, clock: FrozenClock
) -> None:
    await _sealed_log(log, clock)
    await tamper(
        log,
        'UPDATE audit_log SET payload = \'{"n": 3, "name": \' WHERE seq = 3',
        "UPDATE audit_log SET payload = '[1, 2]' WHERE seq = 5",
        "UPDATE audit_log SET actor_id = 'op_other' WHERE seq = 10",
    )
    report = await log.audit_integrity.verify()
    assert found(report) == [(3, "unparsable"), (5, "unparsable"), (10, "edited")]
    assert report.checked == 11
    page = await _list(log)  # the operator's listing shows the record instead of failing
    assert {r.seq: r.payload for r in page}[3] == {}


async def _list(container: Container) -> list[Any]:
    async with container.transactions.read() as tx:
        return list((await tx.audit.list_records(100, None, None, None)).items)


@pytest.mark.sqlite_only  # PostgreSQL's timestamptz column cannot hold a non-timestamp
async def test_an_unparsable_timestamp_is_a_finding(log: Container, clock: FrozenClock) -> None:
    await _sealed_log(log, clock)
    await tamper(log, "UPDATE audit_log SET occurred_at = 'yesterday' WHERE seq = 2")
    report = await log.audit_integrity.verify()
    assert found(report) == [(2, "unparsable")]
    assert "occurred_at" in report.findings[0].detail


async def test_deleting_every_seal_and_rewriting_the_chain_is_caught_by_the_witness(
    log: Container, clock: FrozenClock
) -> None:
    from tests.audit_drill import attack

    await _sealed_log(log, clock)  # seal over 8 (witnessed), records 9-11
    await attack(log.settings.database.url, "delete-seals-rewrite-chain")
    report = await log.audit_integrity.verify()
    assert found(report) == [(8, "seal_mismatch"), (8, "seal_missing")]
    assert report.seals == 0
    assert report.witnessed == 1


async def test_a_witness_line_that_does_not_parse_is_a_finding(
    log: Container, clock: FrozenClock
) -> None:
    await _sealed_log(log, clock)
    path = log.settings.audit.witness_file
    assert path is not None
    with path.open("a") as handle:
        handle.write('{"seq": 9, "head_hash": \n')
    report = await log.audit_integrity.verify()
    assert found(report) == [(0, "witness_unreadable")]
    assert "line 2" in report.findings[0].detail


async def test_a_seal_missing_from_the_witness_is_a_finding(
    log: Container, clock: FrozenClock
) -> None:
    await append(log, clock, 2)
    await log.audit_integrity.seal(SEALER)  # 2
    await append(log, clock, 2)
    await log.audit_integrity.seal(SEALER)  # 5
    await append(log, clock, 2)
    await log.audit_integrity.seal(SEALER)  # 8
    path = log.settings.audit.witness_file
    assert path is not None
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[2] + "\n")
    report = await log.audit_integrity.verify()
    assert found(report) == [(5, "unwitnessed")]


@pytest.mark.parametrize(
    "case", ["delete a middle record", "swap two neighbours", "truncate the tail"]
)
async def test_small_batches_find_the_same(
    log: Container, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Records, seals and the witness are read together batch by batch; a seal and its
    audit.sealed record on either side of a batch boundary change nothing."""
    from amanat.platform.audit import integrity as audit_integrity

    statements, _, _ = TAMPERING[case]
    await _sealed_log(log, clock)
    await append(log, clock, 3)
    await log.audit_integrity.seal(SEALER)  # seals 14, its record is 15
    for size in (1, 3):
        monkeypatch.setattr(audit_integrity, "BATCH", size)
        assert (await log.audit_integrity.verify()).ok, size
    monkeypatch.setattr(audit_integrity, "BATCH", 1000)
    await tamper(log, *statements)
    whole = found(await log.audit_integrity.verify())
    assert whole
    for size in (1, 3, 8, 9):
        monkeypatch.setattr(audit_integrity, "BATCH", size)
        assert found(await log.audit_integrity.verify()) == whole, size


async def test_records_and_seals_made_while_verify_walks_are_not_findings(
    log: Container, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify reads one snapshot: a seal made mid-walk over records it has not seen (and
    written to the witness) is neither a truncation nor a missing record."""
    from amanat.platform.audit import integrity as audit_integrity
    from amanat.platform.audit.store import SqlAuditRepository

    await _sealed_log(log, clock)
    monkeypatch.setattr(audit_integrity, "BATCH", 4)
    original = SqlAuditRepository.stored_records
    calls = 0

    async def stored_records_while_busy(
        self: SqlAuditRepository, after_seq: int, limit: int
    ) -> list[StoredRecord]:
        nonlocal calls
        calls += 1
        batch = await original(self, after_seq, limit)
        if calls == 3:  # the walk has read the last batch: the application goes on
            await append(log, clock, 3)
            assert await log.audit_integrity.seal(SEALER) is not None
        return batch

    monkeypatch.setattr(SqlAuditRepository, "stored_records", stored_records_while_busy)
    report = await log.audit_integrity.verify()
    assert report.ok, report.findings
    assert report.checked == 11  # what the snapshot held
    monkeypatch.setattr(SqlAuditRepository, "stored_records", original)
    after = await log.audit_integrity.verify()
    assert after.ok, after.findings
    assert (after.checked, after.witnessed) == (15, 2)
