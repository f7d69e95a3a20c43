"""Chaining, sealing and verifying the audit chain.

``chain_pending`` is the sequencer: it moves committed records from the inbox into the
chain (see platform/audit/store.py).
``seal`` signs the current head and hands the seal to the witnesses (copies outside the
database); ``verify`` walks the whole chain in batches and reports every bad record, checking
the chain against the database's seals, its own ``audit.sealed`` records and the witness.
Both look only at (sequence, hash) pairs at sealed points, so they do not depend on how
appends build the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from amanat.kernel.clock import Clock, format_timestamp
from amanat.kernel.ids import new_id
from amanat.platform.audit.domain import (
    Actor,
    AuditRecord,
    ChainVerifier,
    Finding,
    Seal,
    WitnessLine,
    seal_message,
)
from amanat.platform.audit.ports import AuditTx, SealSigner, SealWitness
from amanat.platform.db.ports import TransactionFactory

BATCH = 1000
CHAIN_BATCH = 1000
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
        transactions: TransactionFactory[AuditTx],
        clock: Clock,
        signer: SealSigner,
        witnesses: list[SealWitness] | None = None,
        read_witness: Callable[[], Iterable[WitnessLine]] | None = None,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._signer = signer
        self._witnesses = list(witnesses or [])
        self._read_witness = read_witness
        self._witness_behind = True  # until a publish succeeds, check for seals to catch up

    async def _nothing_new(self, tx: AuditTx, seq: int, latest: Seal | None) -> bool:
        """Nothing was appended since the latest seal but (maybe) its own audit.sealed
        record, which does not count: sealing an idle log twice signs nothing more."""
        if seq == 0 or (latest is not None and latest.seq >= seq):
            return True
        if latest is not None and seq == latest.seq + 1:
            newest = await tx.audit.stored_records(seq - 1, 1)
            return bool(newest) and _is_seal_record(newest[0].record, latest.seq)
        return False

    async def chain_pending(self) -> int:
        """Chain every record committed so far; returns how many. Safe to run anywhere, at
        any time, by any number of processes: they take turns at the head's lock."""
        async with self._tx.lookup() as tx:
            if not await tx.audit.any_pending():
                return 0
        total = 0
        while True:
            async with self._tx.write() as tx:
                chained = await tx.audit.chain_pending(CHAIN_BATCH)
            total += chained
            if chained < CHAIN_BATCH:
                return total

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
        await self.chain_pending()
        async with self._tx.write() as tx:
            # Under the head's lock: what committed since the pass above is chained too,
            # so the seal covers every record committed before it.
            while await tx.audit.chain_pending(CHAIN_BATCH) == CHAIN_BATCH:
                pass
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
                # Straight into the chain, right after the head it signs.
                await tx.audit.append(
                    record_id=new_id("audit"),
                    occurred_at=self._clock.now(),
                    actor=actor,
                    action=SEALED,
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

    async def verify(self, witness: Iterable[WitnessLine] | None = None) -> VerificationReport:
        """Walk the chain and report every finding; ``witness`` overrides the configured
        witness file (e.g. a copy of what an HTTP witness received).

        Records, the database's seals and the witness are read together in sequence order,
        one batch at a time, so memory stays flat however long the log grows. (On PostgreSQL
        the snapshot is held for the whole walk: run it where a long read transaction is
        acceptable.)
        """
        # Records committed before the walk belong in it: chain what the sequencer has not
        # reached yet (a worker that is down, or killed, between commit and chaining).
        await self.chain_pending()
        # The witness is opened first: each seal it holds was committed before it was
        # written, so the database snapshot taken next contains every record it covers.
        if witness is None and self._read_witness is not None:
            witness = self._read_witness()
        witness_lines = _Upto(witness if witness is not None else ())
        # One snapshot for the whole walk: records, seals and the head appended meanwhile
        # are not half-seen.
        async with self._tx.snapshot() as tx:
            head_seq, head_hash = await tx.audit.head()
            verifier = ChainVerifier(self._signature_ok, head_seq=head_seq, sealed_action=SEALED)
            after = 0
            while True:
                batch = await tx.audit.stored_records(after, BATCH)
                if not batch:
                    break
                last = batch[-1].record.seq
                db_seals = await tx.audit.seals(after_seq=after, up_to=last)
                verifier.feed_batch(batch, db_seals, witness_lines.take(last))
                after = last
                if len(batch) < BATCH:
                    break
            beyond = await tx.audit.seals(after_seq=after)
        findings = verifier.finish(
            beyond, witness_lines.rest(), head_hash=head_hash, head_seq_after=head_seq
        )
        return VerificationReport(
            ok=not findings,
            checked=verifier.checked,
            head_seq=head_seq,
            seals=verifier.db_seals,
            findings=findings,
            witnessed=None if witness is None else verifier.witnessed,
        )

    def _signature_ok(self, seal: Seal) -> bool:
        return seal.public_key == self._signer.public_key and self._signer.verify(
            seal.public_key, seal.message(), seal.signature
        )

    async def export_records(self) -> list[dict[str, Any]]:
        """Every record with its stored hash, oldest first, for an offline copy."""
        await self.chain_pending()
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


class _Upto:
    """Hands out witness lines up to a sequence number, reading no further than needed."""

    def __init__(self, lines: Iterable[WitnessLine]) -> None:
        self._lines = iter(lines)
        self._held: WitnessLine | None = None

    def take(self, up_to: int) -> list[WitnessLine]:
        out: list[WitnessLine] = []
        while True:
            line = self._held if self._held is not None else next(self._lines, None)
            self._held = None
            if line is None:
                return out
            if isinstance(line, Seal) and line.seq > up_to:
                self._held = line
                return out
            out.append(line)

    def rest(self) -> list[WitnessLine]:
        held = [self._held] if self._held is not None else []
        self._held = None
        return held + list(self._lines)
