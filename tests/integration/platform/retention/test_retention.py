"""Retention on the real database: what is due goes (deleted or crypto-shredded) in batches,
a dry run changes nothing, a legal hold protects its record until released, and every run
leaves one audit record naming the policy version."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import wipe

from amanat.auth.ports import AuthorizationCode, RefreshToken
from amanat.auth.tables import (
    authorization_codes,
    client_assertion_jtis,
    refresh_tokens,
    revoked_tokens,
)
from amanat.bootstrap import Container
from amanat.identity.ports import SessionRecord
from amanat.identity.tables import operator_sessions
from amanat.kernel.clock import FrozenClock
from amanat.kernel.errors import InvalidInput
from amanat.platform.audit.domain import Actor, AuditRecord
from amanat.platform.audit.tables import audit_inbox, audit_log
from amanat.platform.idempotency.ports import IdempotencyRecord
from amanat.platform.idempotency.tables import idempotency_keys
from amanat.platform.protection.tables import data_keys, data_subjects
from amanat.platform.retention.service import ClassOutcome, hold_key, load_policies
from amanat.platform.retention.tables import legal_holds

ACTOR = Actor(type="cli", id="compliance")
IBAN = "PK36SCBL0000001123456702"
DAY = timedelta(days=1)
TEN_YEARS = timedelta(days=3653)
OAUTH_TABLES = (authorization_codes, refresh_tokens, revoked_tokens, client_assertion_jtis)
RETAINED = {"payments_and_ledger", "consents", "dispute_evidence", "audit"}


@pytest.fixture
async def box(container: Container) -> Container:
    """The container over empty tables, whatever an earlier test left behind."""
    await wipe(container)
    return container


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def oauth_artifacts(container: Container, tag: str, expires_at: datetime) -> list[str]:
    """One row in each OAuth table; returns their qualified retention ids."""
    now = container.clock.now()
    code_hash, token_hash = digest(f"code-{tag}"), digest(f"refresh-{tag}")
    async with container.transactions.write() as tx:
        await tx.tokens.add_code(
            AuthorizationCode(
                code_hash=code_hash,
                client_id="client_ret",
                redirect_uri="https://tpp.example.pk/cb",
                scopes=("accounts",),
                code_challenge="c" * 43,
                subject="psu_1",
                consent_id=None,
                created_at=now,
                expires_at=expires_at,
                used_at=None,
                family_id=None,
            )
        )
        await tx.tokens.add_refresh(
            RefreshToken(
                token_hash=token_hash,
                family_id=f"family_{tag}",
                client_id="client_ret",
                scopes=("accounts",),
                subject="psu_1",
                consent_id=None,
                access_jti=f"access_{tag}",
                access_expires_at=now + timedelta(minutes=5),
                issued_at=now,
                expires_at=expires_at,
                used_at=None,
                revoked_at=None,
            )
        )
        await tx.tokens.revoke_jti(f"revoked_{tag}", "client_ret", expires_at, now, "logout")
        assert await tx.tokens.remember_assertion("client_ret", f"assert_{tag}", expires_at)
    return [
        f"authorization_codes:{code_hash}",
        f"refresh_tokens:{token_hash}",
        f"revoked_tokens:revoked_{tag}",
        f"client_assertion_jtis:client_ret|assert_{tag}",
    ]


async def operator_id(container: Container) -> str:
    created = await container.operators.create_operator(
        ACTOR,
        email="retention@amanat.example.pk",
        name="Retention Officer",
        roles=["support"],
        password="correct horse battery staple",
    )
    return created.operator.id


async def session(container: Container, operator: str, tag: str, expires_at: datetime) -> str:
    id_hash = digest(f"session-{tag}")
    async with container.transactions.write() as tx:
        await tx.operators.add_session(
            SessionRecord(
                id_hash=id_hash,
                operator_id=operator,
                csrf_token=digest(tag),
                created_at=container.clock.now(),
                expires_at=expires_at,
                idle_expires_at=expires_at,
                source_ip="10.0.0.9",
                user_agent="pytest",
                revoked_at=None,
            )
        )
    return id_hash


async def subject(container: Container, partner: str, name: str) -> str:
    record = await container.protection.create_subject(ACTOR, partner, name=name, iban=IBAN)
    return record.id


async def partner_id(container: Container) -> str:
    partner = await container.partners.create_partner(
        ACTOR, name="Retention Traders", roles=["merchant"], mode="sandbox"
    )
    return partner.id


async def idempotency_record(container: Container, key: str) -> str:
    now = container.clock.now()
    async with container.transactions.write() as tx:
        assert await tx.idempotency.try_insert(
            IdempotencyRecord(
                client_id="client_ret",
                key=key,
                request_hash="h" * 64,
                method="POST",
                path="/v1/payments",
                status="in_progress",
                response_status=None,
                response_body=None,
                response_headers=None,
                created_at=now,
                locked_until=None,
                expires_at=now + timedelta(hours=24),
            )
        )
    return f"client_ret:{key}"


async def count(container: Container, table: sa.Table, *where: Any) -> int:
    async with container.db.read() as conn:
        stmt = sa.select(sa.func.count()).select_from(table)
        if where:
            stmt = stmt.where(*where)
        return int((await conn.execute(stmt)).scalar_one())


async def snapshot(container: Container) -> dict[str, int]:
    tables = (
        *OAUTH_TABLES,
        operator_sessions,
        idempotency_keys,
        legal_holds,
        audit_log,
        audit_inbox,
    )
    counts = {t.name: await count(container, t) for t in tables}
    counts["erased"] = await count(container, data_subjects, data_subjects.c.erased_at.isnot(None))
    counts["shredded keys"] = await count(container, data_keys, data_keys.c.status == "shredded")
    return counts


async def oauth_left(container: Container) -> int:
    return sum([await count(container, t) for t in OAUTH_TABLES])


async def is_erased(container: Container, subject_id: str) -> bool:
    details = await container.protection.reveal(subject_id, partner_id=None)
    if details.erased:
        assert details.name is None
        assert details.iban is None
    else:
        assert details.iban == IBAN
    return details.erased


async def retention_records(container: Container) -> list[AuditRecord]:
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.transactions.read() as tx:
        page = await tx.audit.list_records(100, None, "retention.run", None)
    return list(page.items)


def by_class(outcomes: list[ClassOutcome]) -> dict[str, ClassOutcome]:
    return {o.data_class: o for o in outcomes}


# -- the policy file ----------------------------------------------------------------------


def test_the_shipped_policies_load() -> None:
    policies = load_policies()
    assert policies.version == 2
    assert set(policies.policies) == {
        "oauth_artifacts",
        "operator_sessions",
        "console_access_log",
        "idempotency_records",
        "webhook_deliveries",
        "data_subjects",
        *RETAINED,
    }
    assert policies.policies["oauth_artifacts"].keep == timedelta(days=30)
    assert policies.policies["operator_sessions"].keep == timedelta(days=90)
    assert policies.policies["data_subjects"].action == "shred"
    assert {p.action for p in policies.policies.values() if p.data_class in RETAINED} == {"retain"}


@pytest.mark.parametrize(
    "body",
    [
        'version = 2\n[classes.oauth_artifacts]\nkeep_days = 30\naction = "purge"\n',
        "version = 2\n[classes.oauth_artifacts]\nkeep_days = 30\n",
        'version = 2\n[classes.oauth_artifacts]\nkeep_days = "30"\naction = "delete"\n',
        'version = 2\n[classes.oauth_artifacts]\nkeep_days = -1\naction = "delete"\n',
        'version = 2\n[classes.oauth_artifacts]\nkeep_days = true\naction = "delete"\n',
        '[classes.oauth_artifacts]\nkeep_days = 30\naction = "delete"\n',
        'version = 2\nclasses = "all"\n',
        'version = 2\n[classes.idempotency_records]\nkeep_days = 1\naction = "delete"\n',
    ],
    ids=[
        "bad action",
        "no action",
        "text days",
        "negative days",
        "bool days",
        "no version",
        "classes not a table",
        "idempotency records kept less than the contract's 24 hours and a margin",
    ],
)
def test_a_bad_policy_file_is_refused(tmp_path: Path, body: str) -> None:
    path = tmp_path / "retention.toml"
    path.write_text(body)
    with pytest.raises(InvalidInput):
        load_policies(path)


async def test_a_custom_policy_file_is_applied_and_its_version_recorded(
    box: Container, clock: FrozenClock, tmp_path: Path
) -> None:
    path = tmp_path / "retention.toml"
    path.write_text(
        "version = 7\n"
        '[classes.oauth_artifacts]\nkeep_days = 0\naction = "delete"\n'
        '[classes.data_subjects]\nkeep_days = 0\naction = "delete"\n'
        '[classes.webhook_deliveries]\nkeep_days = 1\naction = "delete"\n'
        '[classes.audit]\nkeep_days = 3653\naction = "retain"\n'
    )
    box.retention.policies = load_policies(path)
    expired = await oauth_artifacts(box, "c", clock.now() + timedelta(minutes=10))
    person = await subject(box, await partner_id(box), "Bilal Ahmed")
    clock.advance(hours=1)
    outcomes = by_class(await box.retention.run(ACTOR, dry_run=False))
    assert list(outcomes) == ["oauth_artifacts", "data_subjects", "webhook_deliveries", "audit"]
    assert (outcomes["oauth_artifacts"].due, outcomes["oauth_artifacts"].done) == (4, 4)
    assert len(expired) == 4
    assert await oauth_left(box) == 0
    assert "not supported" in outcomes["data_subjects"].note
    assert outcomes["data_subjects"].done == 0
    assert not await is_erased(box, person), "a subject is never deleted by rows"
    assert not outcomes["webhook_deliveries"].note
    assert outcomes["webhook_deliveries"].done == 0, "nothing of the kind was stored"
    assert outcomes["audit"].note.startswith("retained")
    [record] = await retention_records(box)
    assert record.target_id == "7"
    assert record.payload["policy_version"] == 7


# -- runs ---------------------------------------------------------------------------------


async def test_dry_run_reports_and_run_removes_exactly_what_is_due(
    box: Container, clock: FrozenClock
) -> None:
    partner, operator = await partner_id(box), await operator_id(box)
    t0 = clock.now()
    old_oauth = await oauth_artifacts(box, "old", t0 + timedelta(hours=1))
    old_sessions = [
        await session(box, operator, f"old{i}", t0 + timedelta(hours=12)) for i in range(2)
    ]
    old_people = [await subject(box, partner, f"Old Person {i}") for i in range(2)]
    await idempotency_record(box, "old-key")
    clock.advance(days=3653 + 2)
    fresh_oauth = await oauth_artifacts(box, "fresh", clock.now() + timedelta(hours=1))
    fresh_session = await session(box, operator, "fresh", clock.now() + timedelta(hours=12))
    fresh_person = await subject(box, partner, "New Person")
    fresh_key = await idempotency_record(box, "fresh-key")
    clock.advance(hours=2)

    await box.audit_integrity.chain_pending()
    before = await snapshot(box)
    async with box.transactions.read() as tx:
        head_before = await tx.audit.head()
    dry = by_class(await box.retention.run(ACTOR, dry_run=True))
    assert {k: (o.due, o.done, o.held) for k, o in dry.items() if not o.note} == {
        "oauth_artifacts": (4, 0, 0),
        "operator_sessions": (2, 0, 0),
        "idempotency_records": (1, 0, 0),
        "data_subjects": (2, 0, 0),
        "webhook_deliveries": (0, 0, 0),
        "console_access_log": (0, 0, 0),
    }
    for name in RETAINED:
        assert dry[name].action == "retain"
        assert dry[name].note.startswith("retained for 3653 days")
        assert dry[name].due == 0
    assert await snapshot(box) == before, "a dry run changes nothing"
    await box.audit_integrity.chain_pending()
    async with box.transactions.read() as tx:
        assert await tx.audit.head() == head_before, "not even the audit log"

    done = by_class(await box.retention.run(ACTOR, dry_run=False))
    assert {k: (o.due, o.done) for k, o in done.items() if not o.note} == {
        "oauth_artifacts": (4, 4),
        "operator_sessions": (2, 2),
        "idempotency_records": (1, 1),
        "data_subjects": (2, 2),
        "webhook_deliveries": (0, 0),
        "console_access_log": (0, 0),
    }
    after = await snapshot(box)
    assert after["authorization_codes"] == after["refresh_tokens"] == 1
    assert after["revoked_tokens"] == after["client_assertion_jtis"] == 1
    assert after["operator_sessions"] == 1
    assert after["idempotency_keys"] == 1
    assert after["erased"] == 2
    assert after["shredded keys"] == 2
    async with box.db.read() as conn:
        codes = (await conn.execute(sa.select(authorization_codes.c.code_hash))).scalars().all()
        sessions = (await conn.execute(sa.select(operator_sessions.c.id_hash))).scalars().all()
        keys = (await conn.execute(sa.select(idempotency_keys.c.id))).scalars().all()
    assert [f"authorization_codes:{c}" for c in codes] == [fresh_oauth[0]]
    assert old_oauth[0] != fresh_oauth[0]
    assert sessions == [fresh_session]
    assert set(old_sessions).isdisjoint(sessions)
    assert keys == [fresh_key]
    assert [await is_erased(box, p) for p in old_people] == [True, True]
    assert not await is_erased(box, fresh_person)

    [record] = await retention_records(box)
    assert record.actor.id == "compliance"
    assert record.target_id == "2"
    assert record.payload["policy_version"] == 2
    assert record.payload["classes"]["oauth_artifacts"] == {"due": 4, "done": 4, "held": 0}
    assert record.payload["classes"]["data_subjects"] == {"due": 2, "done": 2, "held": 0}
    assert not RETAINED & set(record.payload["classes"])
    report = await box.audit_integrity.verify()
    assert report.ok, report.finding  # the audit class is retained: the log is whole

    again = by_class(await box.retention.run(ACTOR, dry_run=False))
    assert all(o.due == o.done == 0 for o in again.values())
    assert len(await retention_records(box)) == 2


async def test_each_class_waits_for_its_own_keep_period(box: Container, clock: FrozenClock) -> None:
    partner, operator = await partner_id(box), await operator_id(box)
    t0 = clock.now()
    await oauth_artifacts(box, "a", t0)
    await session(box, operator, "a", t0)
    person = await subject(box, partner, "Ayesha Khan")

    async def run_at(offset: timedelta) -> dict[str, int]:
        clock.set(t0 + offset)
        outcomes = await box.retention.run(ACTOR, dry_run=False)
        return {o.data_class: o.done for o in outcomes if o.done}

    assert await run_at(30 * DAY - timedelta(minutes=1)) == {}
    assert await run_at(30 * DAY + timedelta(minutes=1)) == {"oauth_artifacts": 4}
    assert await run_at(90 * DAY - timedelta(minutes=1)) == {}
    assert await run_at(90 * DAY + timedelta(minutes=1)) == {"operator_sessions": 1}
    assert await run_at(TEN_YEARS - timedelta(minutes=1)) == {}
    assert not await is_erased(box, person)
    assert await run_at(TEN_YEARS + timedelta(minutes=1)) == {"data_subjects": 1}
    assert await is_erased(box, person)
    assert len(await retention_records(box)) == 6


# -- legal holds --------------------------------------------------------------------------


async def test_a_held_record_survives_until_its_hold_is_released(
    box: Container, clock: FrozenClock
) -> None:
    partner, operator = await partner_id(box), await operator_id(box)
    oauth = await oauth_artifacts(box, "held", clock.now())
    sessions = [await session(box, operator, f"s{i}", clock.now()) for i in range(2)]
    people = [await subject(box, partner, f"Person {i}") for i in range(2)]
    held_token = oauth[1]  # "refresh_tokens:<64 hex>": longer than the hold column
    assert len(held_token) > 64
    await box.retention.hold(ACTOR, "oauth_artifacts", held_token, "FIA request 2026/114")
    await box.retention.hold(ACTOR, "operator_sessions", sessions[0], "incident 42")
    await box.retention.hold(ACTOR, "data_subjects", people[0], "court order")
    with pytest.raises(InvalidInput):
        await box.retention.hold(ACTOR, "no_such_class", "x", "typo")
    clock.advance(days=3653 + 1)

    dry = by_class(await box.retention.run(ACTOR, dry_run=True))
    assert (dry["oauth_artifacts"].due, dry["oauth_artifacts"].held) == (3, 1)
    assert (dry["operator_sessions"].due, dry["operator_sessions"].held) == (1, 1)
    assert (dry["data_subjects"].due, dry["data_subjects"].held) == (1, 1)

    ran = by_class(await box.retention.run(ACTOR, dry_run=False))
    assert {k: (ran[k].done, ran[k].held) for k in dry if not dry[k].note} == {
        "oauth_artifacts": (3, 1),
        "operator_sessions": (1, 1),
        "data_subjects": (1, 1),
        "idempotency_records": (0, 0),
        "webhook_deliveries": (0, 0),
        "console_access_log": (0, 0),
    }
    assert await count(box, refresh_tokens) == 1
    assert await oauth_left(box) == 1
    async with box.db.read() as conn:
        assert (await conn.execute(sa.select(operator_sessions.c.id_hash))).scalars().all() == [
            sessions[0]
        ]
    assert [await is_erased(box, p) for p in people] == [False, True]
    holds = await box.retention.run(ACTOR, dry_run=False)
    assert sum(o.done for o in holds) == 0, "still held"

    assert await box.retention.release(ACTOR, "oauth_artifacts", held_token) == 1
    assert await box.retention.release(ACTOR, "oauth_artifacts", held_token) == 0
    assert await box.retention.release(ACTOR, "operator_sessions", sessions[0]) == 1
    assert await box.retention.release(ACTOR, "data_subjects", people[0]) == 1
    released = by_class(await box.retention.run(ACTOR, dry_run=False))
    assert {k: (o.done, o.held) for k, o in released.items() if o.done} == {
        "oauth_artifacts": (1, 0),
        "operator_sessions": (1, 0),
        "data_subjects": (1, 0),
    }
    assert await oauth_left(box) == 0
    assert await count(box, operator_sessions) == 0
    assert await is_erased(box, people[0])

    await box.audit_integrity.chain_pending()  # the sequencer's work, now
    async with box.transactions.read() as tx:
        placed = await tx.audit.list_records(10, None, "legal_hold.placed", None)
    targets = {(r.target_type, r.target_id) for r in placed.items}
    assert ("oauth_artifacts", hold_key(held_token)) in targets
    assert ("data_subjects", people[0]) in targets
    assert (await box.audit_integrity.verify()).ok


# -- batches ------------------------------------------------------------------------------


async def test_batches_smaller_than_the_due_count_finish_the_job(
    box: Container, clock: FrozenClock
) -> None:
    partner, operator = await partner_id(box), await operator_id(box)
    people = []
    for i in range(5):
        people.append(await subject(box, partner, f"Person {i}"))
        clock.advance(seconds=1)
    sessions = [await session(box, operator, f"b{i}", clock.now()) for i in range(7)]
    for i in range(3):
        await oauth_artifacts(box, f"b{i}", clock.now())
    # The oldest subject (first in the due order) and two sessions are held.
    await box.retention.hold(ACTOR, "data_subjects", people[0], "audit")
    for held in sessions[:2]:
        await box.retention.hold(ACTOR, "operator_sessions", held, "audit")
    clock.advance(days=3653 + 1)

    outcomes = by_class(await box.retention.run(ACTOR, dry_run=False, batch_size=2))
    assert (outcomes["data_subjects"].due, outcomes["data_subjects"].done) == (4, 4)
    assert (outcomes["operator_sessions"].due, outcomes["operator_sessions"].done) == (5, 5)
    assert (outcomes["oauth_artifacts"].due, outcomes["oauth_artifacts"].done) == (12, 12)
    assert [await is_erased(box, p) for p in people] == [False, True, True, True, True]
    assert await count(box, operator_sessions) == 2
    assert await oauth_left(box) == 0
    assert all(not o.note for o in outcomes.values() if o.action != "retain" and o.done)


async def test_a_run_that_hits_max_batches_says_so(box: Container, clock: FrozenClock) -> None:
    operator = await operator_id(box)
    for i in range(5):
        await session(box, operator, f"m{i}", clock.now())
    clock.advance(days=91)
    first = by_class(await box.retention.run(ACTOR, dry_run=False, batch_size=1, max_batches=2))
    assert first["operator_sessions"].done == 2
    assert "run again" in first["operator_sessions"].note
    second = by_class(await box.retention.run(ACTOR, dry_run=False, batch_size=10))
    assert second["operator_sessions"].done == 3
    assert second["operator_sessions"].note == ""
    assert await count(box, operator_sessions) == 0
