"""Whether the audit chain is being chained, sealed and witnessed: the alert inbox's
``audit`` source, and where the sealer leaves word of its failures.

The sequencer and sealer run in the worker (:mod:`amanat.platform.audit.sealer`); until
now a failure there only reached the worker's log, which a web process cannot read. Three
signals make it visible to the console, each read from the database:

- ``audit_seal_failed:<record id>`` (critical): the sealer records ``audit.seal_failed``
  in the audit trail when a failure streak starts (a witness that refused the seal, the
  signing key, the database) and ``audit.seal_recovered`` when a run succeeds again. The
  alert stands while the newest of the two is a failure. A record in the trail itself,
  rather than a table of its own: it needs no migration, it is evidence an auditor wants
  anyway (the witness missed seals from this moment), and it rides the same append path
  as every other record. A witness outage is exactly what the records show; a database
  outage may prevent the record, which the next two signals catch.
- ``audit_chain_stalled:<inbox position>`` (critical): a committed record has waited in
  the inbox, unchained, for longer than ``AMANAT_OPERATIONS__AUDIT_STALL_MINUTES``: no
  sequencer runs, or it fails.
- ``audit_seal_overdue:<seal seq>`` (critical): records were chained after the newest seal
  and the oldest of them is older than ``AMANAT_AUDIT__SEAL_EVERY_SECONDS`` plus that
  grace: no seal is being made, whatever the reason.

Reading the witness itself from a web process was the other option; it was not taken:
the witness file is often mounted on the worker hosts only, and asking an HTTP witness on
every inbox view would put a third party's latency on the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from amanat.kernel.alerts import Alert, Severity
from amanat.kernel.clock import Clock
from amanat.platform.audit import recorder
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.integrity import WitnessUnavailable
from amanat.platform.audit.ports import AuditTx
from amanat.platform.db.ports import TransactionFactory

SEAL_FAILED = "audit.seal_failed"
SEAL_RECOVERED = "audit.seal_recovered"
NOTES = (SEAL_FAILED, SEAL_RECOVERED)
PLAYBOOK = "playbooks.md#{}"


@dataclass(frozen=True, slots=True)
class Note:
    id: str
    action: str
    at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Waiting:
    """The oldest committed record not yet chained."""

    pos: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Unsealed:
    """The oldest chained record after the newest seal (its own record aside)."""

    after_seal_seq: int
    at: datetime


class AuditHealthRows(Protocol):
    async def latest_note(self, actions: Sequence[str]) -> Note | None: ...
    async def oldest_waiting(self) -> Waiting | None: ...
    async def oldest_unsealed(self) -> Unsealed | None: ...


class AuditHealthTx(AuditTx, Protocol):
    @property
    def audit_health(self) -> AuditHealthRows: ...


def _problem(error: BaseException) -> dict[str, Any]:
    """What to keep of a failure: its class, and for a witness which ones refused (their
    names and error classes, nothing a message could leak)."""
    payload: dict[str, Any] = {"error": type(error).__name__}
    if isinstance(error, WitnessUnavailable):
        payload["witness"] = str(error)[:200]
    return payload


class AuditHealth:
    name = "audit"

    def __init__(
        self,
        transactions: TransactionFactory[AuditHealthTx],
        clock: Clock,
        *,
        stall_after: timedelta,
        seal_every: timedelta,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._stall_after = stall_after
        self._seal_every = seal_every

    # -- the sealer's side ----------------------------------------------------------------

    async def note_failure(self, actor: Actor, error: BaseException) -> None:
        async with self._tx.write() as tx:
            await recorder.record(
                tx, self._clock, actor, SEAL_FAILED, target_type="audit", payload=_problem(error)
            )

    async def note_recovered(self, actor: Actor) -> bool:
        """Record the recovery if the newest note is a failure (any process's); whether it
        was recorded."""
        async with self._tx.write() as tx:
            latest = await tx.audit_health.latest_note(NOTES)
            if latest is None or latest.action != SEAL_FAILED:
                return False
            await recorder.record(
                tx,
                self._clock,
                actor,
                SEAL_RECOVERED,
                target_type="audit",
                payload={"failed_at": latest.at.isoformat(), "failure": latest.id},
            )
        return True

    # -- the alert inbox's side -----------------------------------------------------------

    async def alerts(self, now: datetime) -> Sequence[Alert]:
        async with self._tx.read() as tx:
            note = await tx.audit_health.latest_note(NOTES)
            waiting = await tx.audit_health.oldest_waiting()
            unsealed = await tx.audit_health.oldest_unsealed()
        found: list[Alert] = []
        if note is not None and note.action == SEAL_FAILED:
            witness = note.payload.get("witness")
            found.append(
                Alert(
                    key=f"audit_seal_failed:{note.id}",
                    kind="audit_seal_failed",
                    severity=Severity.CRITICAL,
                    title="Audit sealing is failing",
                    detail=(
                        f"Witness refused the seal: {witness}."
                        if witness
                        else f"The sealer failed with {note.payload.get('error', 'an error')}."
                    )
                    + " The worker's log has the details; it retries twice a second.",
                    since=note.at,
                    playbook=PLAYBOOK.format("audit_seal_failed"),
                )
            )
        if waiting is not None and now - waiting.at > self._stall_after:
            found.append(
                Alert(
                    key=f"audit_chain_stalled:{waiting.pos}",
                    kind="audit_chain_stalled",
                    severity=Severity.CRITICAL,
                    title="Audit records are not being chained",
                    detail="Committed audit records wait in the inbox: no worker runs the "
                    "sequencer, or it fails.",
                    since=waiting.at,
                    playbook=PLAYBOOK.format("audit_chain_stalled"),
                )
            )
        if unsealed is not None and now - unsealed.at > self._seal_every + self._stall_after:
            found.append(
                Alert(
                    key=f"audit_seal_overdue:{unsealed.after_seal_seq}",
                    kind="audit_seal_overdue",
                    severity=Severity.CRITICAL,
                    title="Audit records are not being sealed",
                    detail=f"Records chained after seal {unsealed.after_seal_seq} have no "
                    "seal yet: nothing proves they were not removed or rewritten.",
                    since=unsealed.at,
                    playbook=PLAYBOOK.format("audit_seal_overdue"),
                )
            )
        return found
