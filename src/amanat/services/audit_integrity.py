"""Sealing and verifying the audit chain.

``seal`` signs the current head so a copy kept outside the database can prove what the
log contained; ``verify`` walks the whole chain in batches and names the first bad record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amanat.domain.audit import Actor, AuditRecord, ChainVerifier, Finding, Seal, seal_message
from amanat.domain.clock import Clock, format_timestamp
from amanat.services import audit
from amanat.services.ports import SealSigner, TransactionFactory

BATCH = 1000
SEALED = "audit.sealed"


def _is_seal_record(record: AuditRecord, sealed_seq: int) -> bool:
    return record.action == SEALED and record.target_id == str(sealed_seq)


@dataclass(frozen=True, slots=True)
class VerificationReport:
    ok: bool
    checked: int
    head_seq: int
    seals: int
    finding: Finding | None


class AuditIntegrityService:
    def __init__(self, transactions: TransactionFactory, clock: Clock, signer: SealSigner) -> None:
        self._tx = transactions
        self._clock = clock
        self._signer = signer

    async def seal(self, actor: Actor) -> Seal | None:
        """Sign the current head; returns None when nothing new was appended since.

        The seal's own ``audit.sealed`` record is appended after the head it signs, so it
        does not count as something new: sealing an idle log twice signs nothing more.
        """
        now = self._clock.now().replace(microsecond=0)
        async with self._tx.write() as tx:
            seq, head_hash = await tx.audit.head(lock=True)
            existing = await tx.audit.seals()
            if seq == 0 or (existing and existing[-1].seq >= seq):
                return None
            if existing and seq == existing[-1].seq + 1:
                latest = await tx.audit.stored_records(seq - 1, 1)
                if latest and _is_seal_record(latest[0].record, existing[-1].seq):
                    return None
            seal = Seal(
                seq=seq,
                head_hash=head_hash,
                signature=self._signer.sign(seal_message(seq, head_hash, now)),
                public_key=self._signer.public_key,
                sealed_at=now,
            )
            await tx.audit.add_seal(seal)
            await audit.record(
                tx,
                self._clock,
                actor,
                SEALED,
                target_type="audit",
                target_id=str(seq),
                payload={"head_hash": head_hash},
            )
        return seal

    async def verify(self) -> VerificationReport:
        async with self._tx.read() as tx:
            seals = await tx.audit.seals()
            head_seq, head_hash = await tx.audit.head()
        verifier = ChainVerifier()
        remember = {s.seq for s in seals} | {head_seq}
        after = 0
        while verifier.finding is None:
            async with self._tx.read() as tx:
                batch = await tx.audit.stored_records(after, BATCH)
            for stored in batch:
                if not verifier.feed(stored, remember=remember):
                    break
            if len(batch) < BATCH:
                break
            after = batch[-1].record.seq
        valid = {
            s.seq: (
                s.public_key == self._signer.public_key
                and self._signer.verify(s.public_key, s.message(), s.signature)
            )
            for s in seals
        }
        verifier.check_seals(seals, valid)
        verifier.check_head(head_seq, head_hash)
        if verifier.finding is None:
            # Records appended while we walked are fine; a head behind them is not.
            async with self._tx.read() as tx:
                final_seq, _ = await tx.audit.head()
            verifier.check_head_not_behind(final_seq)
        return VerificationReport(
            ok=verifier.finding is None,
            checked=verifier.checked,
            head_seq=head_seq,
            seals=len(seals),
            finding=verifier.finding,
        )

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
