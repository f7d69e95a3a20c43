"""Retention: delete or crypto-shred what is due, in batches, never touching a held record.

Policies come from the versioned ``config/retention.toml`` (or a file named by
``AMANAT_RETENTION_FILE``). Each data class with an action other than ``retain`` needs a
purger in the repository; a class whose records amanat does not store yet is reported as
such rather than silently skipped.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from amanat.kernel.clock import Clock
from amanat.kernel.errors import InvalidInput
from amanat.kernel.ids import new_id
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.ports import TransactionFactory
from amanat.platform.retention.ports import RetentionTx

ACTIONS = {"delete", "shred", "retain"}
# Classes whose records a promise keeps for a least time, whatever the policy file says:
# an Idempotency-Key replays its answer for 24 hours (docs/api-contract.md), and each API
# process answers retries of keys it has read from memory until they expire
# (platform/idempotency/replay_memo.py), so a record deleted earlier would let one
# process replay the first payout while another creates a second. Two days, not one:
# deletion counts from the record's creation on the retention job's clock, and the
# processes' clocks may disagree a little.
MINIMUM_KEEP_DAYS = {"idempotency_records": 2}
# Classes whose records are crypto-shredded (rows kept) rather than deleted.
SHREDDED_CLASSES = {"data_subjects"}
HOLD_KEY_LENGTH = 64  # legal_holds.target_id and audit_log.target_id


def hold_key(target_id: str) -> str:
    """The form in which a hold names its record: the id itself when it fits the column,
    else its SHA-256 (qualified OAuth artifact ids such as ``refresh_tokens:<hash>`` are
    longer than 64 characters)."""
    if len(target_id) <= HOLD_KEY_LENGTH:
        return target_id
    return hashlib.sha256(target_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Policy:
    data_class: str
    description: str
    basis: str
    keep: timedelta
    action: str


@dataclass(frozen=True, slots=True)
class PolicySet:
    version: int
    policies: dict[str, Policy]


def load_policies(path: Path | None = None) -> PolicySet:
    if path is None:
        text = (resources.files("amanat.platform.config") / "retention.toml").read_text()
    else:
        text = path.read_text()
    data = tomllib.loads(text)
    version = data.get("version")
    if not isinstance(version, int):
        raise InvalidInput("retention policy file needs an integer `version`")
    classes = data.get("classes", {})
    if not isinstance(classes, dict):
        raise InvalidInput("retention policy file: `classes` must be a table")
    policies: dict[str, Policy] = {}
    for name, entry in classes.items():
        raw: dict[str, Any] = entry if isinstance(entry, dict) else {}
        action = raw.get("action")
        keep_days = raw.get("keep_days")
        if (
            action not in ACTIONS
            or not isinstance(keep_days, int)
            or isinstance(keep_days, bool)
            or keep_days < 0
        ):
            raise InvalidInput(
                f"retention class {name}: action must be one of {sorted(ACTIONS)}"
                " and keep_days a non-negative integer"
            )
        least = MINIMUM_KEEP_DAYS.get(name, 0)
        if action != "retain" and keep_days < least:
            raise InvalidInput(f"retention class {name}: keep_days must be at least {least}")
        policies[name] = Policy(
            data_class=name,
            description=str(raw.get("description", "")),
            basis=str(raw.get("basis", "created")),
            keep=timedelta(days=keep_days),
            action=action,
        )
    return PolicySet(version=version, policies=policies)


@dataclass
class ClassOutcome:
    data_class: str
    action: str
    due: int = 0
    done: int = 0
    held: int = 0
    note: str = ""


class RetentionService:
    def __init__(
        self,
        transactions: TransactionFactory[RetentionTx],
        clock: Clock,
        shred_subject: Callable[[Actor, str], Awaitable[None]],
        policies: PolicySet,
    ) -> None:
        """``shred_subject(actor, subject_id)`` crypto-shreds one data subject."""
        self._tx = transactions
        self._clock = clock
        self._shred = shred_subject
        self.policies = policies

    async def run(
        self, actor: Actor, *, dry_run: bool, batch_size: int = 500, max_batches: int = 1000
    ) -> list[ClassOutcome]:
        now = self._clock.now()
        outcomes: list[ClassOutcome] = []
        for policy in self.policies.policies.values():
            outcome = ClassOutcome(policy.data_class, policy.action)
            outcomes.append(outcome)
            if policy.action == "retain":
                outcome.note = f"retained for {policy.keep.days} days; never deleted here"
                continue
            if (policy.action == "shred") != (policy.data_class in SHREDDED_CLASSES):
                outcome.note = f"action {policy.action} is not supported for this class"
                continue
            async with self._tx.read() as tx:
                repo = tx.retention
                if not repo.supports(policy.data_class):
                    outcome.note = "not stored by this version of amanat"
                    continue
                held = await repo.held_ids(policy.data_class)
            outcome.held = len(held)
            cutoff = now - policy.keep
            if dry_run:
                async with self._tx.read() as tx:
                    ids = await tx.retention.due(policy.data_class, cutoff, 100_000, held)
                outcome.due = len(ids)
                continue
            for _ in range(max_batches):
                async with self._tx.write() as tx:
                    repo = tx.retention
                    ids = await repo.due(policy.data_class, cutoff, batch_size, held)
                    outcome.due += len(ids)
                    if policy.action == "delete":
                        outcome.done += await repo.delete(policy.data_class, ids)
                if policy.action == "shred":
                    for subject_id in ids:
                        await self._shred(actor, subject_id)
                        outcome.done += 1
                if len(ids) < batch_size:
                    break
            else:
                outcome.note = f"stopped after {max_batches} batches; run again for the rest"
        if not dry_run:
            async with self._tx.write() as tx:
                await audit.record(
                    tx,
                    self._clock,
                    actor,
                    "retention.run",
                    target_type="retention",
                    target_id=str(self.policies.version),
                    payload={
                        "policy_version": self.policies.version,
                        "classes": {
                            o.data_class: {"due": o.due, "done": o.done, "held": o.held}
                            for o in outcomes
                            if o.action != "retain"
                        },
                    },
                )
        return outcomes

    async def hold(self, actor: Actor, data_class: str, target_id: str, reason: str) -> str:
        if data_class not in self.policies.policies:
            raise InvalidInput(f"Unknown data class '{data_class}'.", code="validation_error")
        hold_id = new_id("legal_hold")
        key = hold_key(target_id)
        async with self._tx.write() as tx:
            await tx.retention.add_hold(
                hold_id, data_class, key, reason, actor.id, self._clock.now()
            )
            await audit.record(
                tx,
                self._clock,
                actor,
                "legal_hold.placed",
                target_type=data_class,
                target_id=key,
                payload={"hold_id": hold_id, "reason": reason[:200], "record": target_id},
            )
        return hold_id

    async def release(self, actor: Actor, data_class: str, target_id: str) -> int:
        key = hold_key(target_id)
        async with self._tx.write() as tx:
            count = await tx.retention.release_hold(data_class, key, self._clock.now())
            await audit.record(
                tx,
                self._clock,
                actor,
                "legal_hold.released",
                target_type=data_class,
                target_id=key,
                payload={"released": count, "record": target_id},
            )
        return count
