"""The audit source of the alert inbox: a sealer failure recorded in the trail (and its
recovery), records left unchained, records left unsealed. Each read from the database,
as a web process sees it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.integration.platform.audit.test_audit_integrity import append, log  # noqa: F401
from tests.support.oauth import audit_actions

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.health import SEAL_FAILED, SEAL_RECOVERED, AuditHealth
from amanat.platform.audit.sealer import AuditSealer
from amanat.platform.audit.witness import FileWitness

ACTOR = Actor(type="operator", id="op_tester")


async def kinds(container: Container) -> dict[str, Any]:
    health = container.get(AuditHealth)
    return {a.kind: a for a in await health.alerts(container.clock.now())}


def sealer(container: Container) -> AuditSealer:
    return AuditSealer(
        container.audit_integrity,
        every_records=1000,
        every_seconds=2.0,
        health=container.get(AuditHealth),
    )


async def record_one(container: Container, clock: FrozenClock) -> None:
    async with container.transactions.write() as tx:
        await audit.record(tx, clock, ACTOR, "partner.updated", target_type="partner")


async def test_records_left_in_the_inbox_are_an_alert_until_chained(
    log: Container,  # noqa: F811
    clock: FrozenClock,
) -> None:
    await record_one(log, clock)
    clock.advance(minutes=4)
    assert "audit_chain_stalled" not in await kinds(log)
    clock.advance(minutes=2)
    stalled = (await kinds(log))["audit_chain_stalled"]
    assert stalled.severity == "critical" and stalled.key.startswith("audit_chain_stalled:")
    await log.audit_integrity.chain_pending()
    assert "audit_chain_stalled" not in await kinds(log)


async def test_records_left_unsealed_are_an_alert_until_sealed(
    log: Container,  # noqa: F811
    clock: FrozenClock,
) -> None:
    await append(log, clock, 2)
    assert await sealer(log).run_once() is not None  # seals both
    await append(log, clock, 1)
    clock.advance(minutes=5)  # within 2 s + 5 min
    assert "audit_seal_overdue" not in await kinds(log)
    clock.advance(seconds=3)
    overdue = (await kinds(log))["audit_seal_overdue"]
    assert overdue.key == "audit_seal_overdue:2"
    await sealer(log).run_once()
    assert "audit_seal_overdue" not in await kinds(log)


async def test_a_sealer_failure_is_recorded_and_so_is_its_recovery(
    log: Container,  # noqa: F811
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await append(log, clock, 2)
    real_append = FileWitness._append

    def unavailable(self: FileWitness, seals: list[Any]) -> None:
        raise OSError("witness storage unmounted: /mnt/secret-path")

    monkeypatch.setattr(FileWitness, "_append", unavailable)
    worker = sealer(log)
    await worker.tick()
    await worker.tick()  # the same streak: recorded once
    (failed,) = await audit_actions(log, SEAL_FAILED)
    payload = json.loads(failed["payload"])
    assert payload == {"error": "WitnessUnavailable", "witness": "file: OSError"}
    alert = (await kinds(log))["audit_seal_failed"]
    assert alert.key == f"audit_seal_failed:{failed['id']}"
    assert "file: OSError" in alert.detail and "/mnt" not in alert.detail
    assert alert.playbook == "playbooks.md#audit_seal_failed"

    monkeypatch.setattr(FileWitness, "_append", real_append)
    await worker.tick()
    assert len(await audit_actions(log, SEAL_RECOVERED)) == 1
    assert "audit_seal_failed" not in await kinds(log)
    await worker.tick()
    assert len(await audit_actions(log, SEAL_RECOVERED)) == 1


async def test_a_new_sealer_clears_a_failure_another_process_left(
    log: Container,  # noqa: F811
    clock: FrozenClock,
) -> None:
    await log.get(AuditHealth).note_failure(Actor(type="system", id="sealer"), RuntimeError("x"))
    assert "audit_seal_failed" in await kinds(log)
    fresh = sealer(log)  # a restarted worker, which never failed itself
    await fresh.tick()
    assert "audit_seal_failed" not in await kinds(log)
    assert await log.get(AuditHealth).note_recovered(Actor(type="system", id="s")) is False
