"""Sealing and verifying the audit chain.

``seal`` signs the current head and hands the seal to the witnesses (copies outside the
database); ``verify`` walks the whole chain in batches and reports every bad record, checking
the chain against the database's seals, its own ``audit.sealed`` records and the witness.
Both look only at (sequence, hash) pairs at sealed points, so they do not depend on how
appends build the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from amanat.domain.audit import (
    Actor,
    AuditRecord,
    ChainVerifier,
    Finding,
    Seal,
    WitnessContents,
    seal_message,
)
from amanat.domain.clock import Clock, format_timestamp
from amanat.services import audit
from amanat.services.ports import SealSigner, SealWitness, Transaction, TransactionFactory

BATCH = 1000
SEALED = "audit.sealed"


def _is_seal_record(record: AuditRecord, sealed_seq: int) -> bool:
    return record.action == SEALED and record.target_id == str(sealed_seq)


class WitnessUnavailable(Exception):
    """A seal was made but at least one witness did not take it; the next run catches up."""


@dataclass(frozen=True, slots=True)
class VerificationReport:
    ok: bool
    checked: int
    head_seq: int
    seals: int
    findings: list[Finding] = field(default_factory=list)
    witnessed: int | None = None  # seals in the witness; None: no witness was checked

    @property
    def finding(self) -> Finding | None:
        return self.findings[0] if self.findings else None


class AuditIntegrityService:
    def __init__(
        self,
        transactions: TransactionFactory,
        clock: Clock,
        signer: SealSigner,
        witnesses: list[SealWitness] | None = None,
        read_witness: Callable[[], WitnessContents] | None = None,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._signer = signer
        self._witnesses = list(witnesses or [])
        self._read_witness = read_witness
        self._witness_behind = True  # until a publish succeeds, check for seals to catch up

    @property
    def has_witness(self) -> bool:
        return self._read_witness is not None

    async def _nothing_new(self, tx: Transaction, seq: int, latest: Seal | None) -> bool:
        """Nothing was appended since the latest seal but (maybe) its own audit.sealed
        record, which does not count: sealing an idle log twice signs nothing more."""
        if seq == 0 or (latest is not None and latest.seq >= seq):
            return True
        if latest is not None and seq == latest.seq + 1:
            newest = await tx.audit.stored_records(seq - 1, 1)
            return bool(newest) and _is_seal_record(newest[0].record, latest.seq)
        return False

    async def seal_if_due(
        self, actor: Actor, *, every_records: int, every: timedelta
    ) -> Seal | None:
        """Seal when ``every_records`` records or ``every`` time passed since the last seal
        (whichever first), without taking the head's lock unless a seal is due."""
        async with self._tx.read() as tx:
            seq, _ = await tx.audit.head()
            latest = await tx.audit.latest_seal()
            idle = await self._nothing_new(tx, seq, latest)
        due = not idle and (
            latest is None
            or seq - latest.seq >= every_records
            or self._clock.now() - latest.sealed_at >= every
        )
        if due:
            return await self.seal(actor)
        if self._witness_behind:
            await self.publish_to_witnesses(None)
        return None

    async def seal(self, actor: Actor) -> Seal | None:
        """Sign the current head and give the seal to every witness; returns None when
        nothing new was appended since the last seal.

        The seal's own ``audit.sealed`` record is appended after the head it signs, in the
        same transaction, so verify can tell a missing seal or a removed tail from it. The
        witnesses get the seal after commit: a witness never holds a seal the database
        rolled back, and one that missed a seal is caught up at the next run.
        """
        now = self._clock.now().replace(microsecond=0)
        async with self._tx.write() as tx:
            seq, head_hash = await tx.audit.head(lock=True)
            if await self._nothing_new(tx, seq, await tx.audit.latest_seal()):
                made = None
            else:
                made = Seal(
                    seq=seq,
                    head_hash=head_hash,
                    signature=self._signer.sign(seal_message(seq, head_hash, now)),
                    public_key=self._signer.public_key,
                    sealed_at=now,
                )
                await tx.audit.add_seal(made)
                await audit.record(
                    tx,
                    self._clock,
                    actor,
                    SEALED,
                    target_type="audit",
                    target_id=str(seq),
                    payload={"head_hash": head_hash},
                )
        if made is not None or self._witness_behind:
            await self.publish_to_witnesses(made)
        return made

    async def publish_to_witnesses(self, made: Seal | None) -> None:
        """Send each witness the seals it lacks (those after the newest it holds)."""
        failed: list[str] = []
        for witness in self._witnesses:
            try:
                up_to = await witness.published_up_to()
                if up_to is None:
                    missing = [made] if made is not None else []
                else:
                    async with self._tx.read() as tx:
                        missing = await tx.audit.seals(after_seq=up_to)
                await witness.publish(missing)
            except Exception as exc:  # noqa: BLE001 - every witness gets its chance
                failed.append(f"{witness.name}: {type(exc).__name__}")
        self._witness_behind = bool(failed)
        if failed:
            raise WitnessUnavailable("; ".join(failed))

    async def verify(self, witness: WitnessContents | None = None) -> VerificationReport:
        """Walk the chain and report every finding; ``witness`` overrides the configured
        witness file (e.g. a copy of what an HTTP witness received)."""
        if witness is None and self._read_witness is not None:
            witness = self._read_witness()
        witnessed = witness.seals if witness is not None else []
        async with self._tx.read() as tx:
            seals = await tx.audit.seals()
            head_seq, head_hash = await tx.audit.head()
        verifier = ChainVerifier(
            remember={s.seq for s in seals} | {s.seq for s in witnessed} | {head_seq}
        )
        if witness is not None:
            for line, why in witness.unreadable:
                verifier.report(0, "witness_unreadable", f"witness line {line}: {why}")
        after = 0
        while True:
            async with self._tx.read() as tx:
                batch = await tx.audit.stored_records(after, BATCH)
            for stored in batch:
                verifier.feed(stored, sealed_action=SEALED)
            if len(batch) < BATCH:
                break
            after = batch[-1].record.seq
        verifier.check_seals(seals, self._signatures(seals), source="audit_seals")
        if witness is not None:
            verifier.check_seals(witnessed, self._signatures(witnessed), source="witness")
            verifier.check_witness(witnessed, seals)
        verifier.check_claimed_seals(seals)
        verifier.check_seal_records(sorted({s.seq for s in seals} | {s.seq for s in witnessed}))
        verifier.check_head(head_seq, head_hash)
        # Records appended while we walked are fine; a head behind them is not.
        async with self._tx.read() as tx:
            final_seq, _ = await tx.audit.head()
        verifier.check_head_not_behind(final_seq)
        findings = _first_of_each(verifier.findings)
        return VerificationReport(
            ok=not findings,
            checked=verifier.checked,
            head_seq=head_seq,
            seals=len(seals),
            findings=findings,
            witnessed=None if witness is None else len(witnessed),
        )

    def _signatures(self, seals: list[Seal]) -> dict[int, bool]:
        return {
            s.seq: (
                s.public_key == self._signer.public_key
                and self._signer.verify(s.public_key, s.message(), s.signature)
            )
            for s in seals
        }

    async def export_records(self) -> list[dict[str, Any]]:
        """Every record with its stored hash, oldest first, for an offline copy."""
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            async with self._tx.read() as tx:
                batch = await tx.audit.stored_records(after, BATCH)
            for stored in batch:
                out.append(
                    stored.record.content()
                    | {"prev_hash": stored.record.prev_hash, "hash": stored.stored_hash}
                )
            if len(batch) < BATCH:
                return out
            after = batch[-1].record.seq

    async def export_seals(self) -> list[dict[str, Any]]:
        async with self._tx.read() as tx:
            seals = await tx.audit.seals()
        return [
            {
                "seq": s.seq,
                "head_hash": s.head_hash,
                "signature": s.signature,
                "public_key": s.public_key,
                "sealed_at": format_timestamp(s.sealed_at),
            }
            for s in seals
        ]


def _first_of_each(findings: list[Finding]) -> list[Finding]:
    """One finding per (record, kind), in record order: the same truncation seen by the
    head, the database's seals and the witness is one finding."""
    seen: set[tuple[int, str]] = set()
    out: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.seq, f.kind)):
        if (finding.seq, finding.kind) not in seen:
            seen.add((finding.seq, finding.kind))
            out.append(finding)
    return out
