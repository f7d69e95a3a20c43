"""The audit record and its hash chain.

Each record's hash covers the previous record's hash and a canonical JSON form of the
record itself (sorted keys, no insignificant white space, UTF-8), so editing, deleting or
reordering any record breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amanat.kernel.clock import format_timestamp

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it, and from where."""

    type: str  # operator | client | system | cli
    id: str
    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


SYSTEM = Actor(type="system", id="amanat")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    id: str
    occurred_at: datetime
    actor: Actor
    action: str
    target_type: str | None
    target_id: str | None
    payload: dict[str, Any]
    prev_hash: str

    def content(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "occurred_at": format_timestamp(self.occurred_at),
            "actor_type": self.actor.type,
            "actor_id": self.actor.id,
            "source_ip": self.actor.source_ip,
            "user_agent": self.actor.user_agent,
            "request_id": self.actor.request_id,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "payload": self.payload,
        }

    def compute_hash(self) -> str:
        material = f"{self.prev_hash}\n{canonical_json(self.content())}".encode()
        return hashlib.sha256(material).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """An audit record as read back, with the hash stored beside it.

    ``unreadable`` names the stored fields that no longer parse (a payload that is not JSON,
    a timestamp that is not one); the record then carries placeholders for them and can
    never match its hash, but the walk goes on past it.
    """

    record: AuditRecord
    stored_hash: str
    unreadable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Seal:
    """A signed statement that the chain had ``head_hash`` at ``seq``."""

    seq: int
    head_hash: str
    signature: str
    public_key: str
    sealed_at: datetime

    def message(self) -> bytes:
        return seal_message(self.seq, self.head_hash, self.sealed_at)


def seal_message(seq: int, head_hash: str, sealed_at: datetime) -> bytes:
    return f"amanat-audit-seal:v1:{seq}:{head_hash}:{format_timestamp(sealed_at)}".encode()


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with the log, named by the record (sequence number) it concerns.

    ``kind`` is one of :data:`FINDING_KINDS`.
    """

    seq: int
    kind: str
    detail: str


FINDING_KINDS = {
    "gap": "records are missing from the middle of the sequence (deleted or renumbered)",
    "duplicate": "a sequence number appears twice or goes backwards",
    "unparsable": "a stored field no longer parses (edited to something that is not JSON or "
    "not a timestamp)",
    "edited": "the record's content no longer matches its stored hash",
    "broken_link": "the record does not chain to the one before it (reordered or replaced)",
    "truncated": "records were removed from the end of the log",
    "head_mismatch": "the chain head row disagrees with the log",
    "seal_mismatch": "the record at a sealed position differs from the seal",
    "bad_signature": "a seal's signature does not verify with the configured seal key",
    "seal_missing": "a seal known elsewhere (witness, or the chain's own audit.sealed "
    "record) is missing from the audit_seals table",
    "unwitnessed": "a seal in the database that the witness never received",
    "witness_unreadable": "a line of the witness file does not parse or is out of order",
}


@dataclass(frozen=True, slots=True)
class UnreadableLine:
    """A line of a witness that does not parse."""

    number: int
    why: str


WitnessLine = Seal | UnreadableLine


class ChainVerifier:
    """Walks the chain in sequence order, batch by batch, and collects every problem.

    Detects edited fields (hash mismatch), fields that no longer parse, deleted records
    (sequence gap), reordered or replaced records (the previous-hash link breaks),
    truncation below the chain head, a seal, a witnessed seal or a seal's own
    ``audit.sealed`` record, and seals that are missing, forged or disagree with the chain
    or with each other. It checks only (sequence, hash) pairs at sealed points, so it does
    not depend on how appends build the chain, and it holds one batch at a time, so its
    memory does not grow with the log: give each batch of records with the seals (from the
    database and from the witness) whose sequence falls inside it.
    """

    def __init__(
        self,
        signature_ok: Callable[[Seal], bool],
        *,
        head_seq: int,
        sealed_action: str | None = "audit.sealed",
    ) -> None:
        """``sealed_action`` names the record every seal is followed by; None when seals
        come without one (then a removed tail after the newest seal goes unnoticed)."""
        self._signature_ok = signature_ok
        self._sealed_action = sealed_action
        self.head_seq = head_seq
        self.head_stored_hash: str | None = None
        self.last_seq = 0
        # The link to the next record is accepted against either the previous record's
        # stored hash or its recomputed hash, so one edit is reported once, not twice.
        self._link_ok: set[str] = {GENESIS_HASH}
        # Seals (database or witness) whose audit.sealed record has not been seen yet;
        # the sealer appends it right after, so this stays small.
        self._awaiting_record: dict[int, str] = {}
        self._claimed: set[int] = set()
        self._db_since_witness: list[int] = []  # database seals the witness may yet show
        self._witness_started = False
        self._witness_last = 0
        self.findings: list[Finding] = []
        self.checked = 0
        self.db_seals = 0
        self.witnessed = 0

    @property
    def finding(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def report(self, seq: int, kind: str, detail: str) -> None:
        self.findings.append(Finding(seq, kind, detail))

    # -- records ------------------------------------------------------------------------

    def feed_batch(
        self, batch: list[StoredRecord], db_seals: list[Seal], witnessed: list[WitnessLine]
    ) -> None:
        """One batch of records, in order, with every seal whose sequence is after the
        previous batch and not after this batch's last record."""
        hashes: dict[int, str] = {}
        claims: list[tuple[int, int, str]] = []
        for stored in batch:
            self._feed(stored)
            hashes[stored.record.seq] = stored.stored_hash
            claim = self._claim(stored)
            if claim is not None:
                claims.append((stored.record.seq, *claim))
        self._seals(db_seals, witnessed, hashes)
        for _, sealed_seq, head_hash in claims:
            self._check_claim(sealed_seq, head_hash)

    def _feed(self, stored: StoredRecord) -> None:
        record = stored.record
        check_link = True
        if record.seq <= self.last_seq:
            self.report(
                record.seq,
                "duplicate",
                f"record {record.seq} comes after record {self.last_seq}: "
                "a record was renumbered or duplicated",
            )
            check_link = False
        elif record.seq > self.last_seq + 1:
            first = self.last_seq + 1
            missing = str(first) if record.seq == first + 1 else f"{first}-{record.seq - 1}"
            self.report(
                first,
                "gap",
                f"record(s) {missing} missing before record {record.seq}: deleted or renumbered",
            )
            check_link = False  # the link over a gap is broken by the gap itself
        if stored.unreadable:
            self.report(
                record.seq,
                "unparsable",
                f"stored {', '.join(stored.unreadable)} no longer parses: the record was edited",
            )
        if check_link and record.prev_hash not in self._link_ok:
            self.report(
                record.seq,
                "broken_link",
                "prev_hash does not match the previous record: records were "
                "reordered, replaced or removed",
            )
        computed = record.compute_hash()
        if not stored.unreadable and computed != stored.stored_hash:
            self.report(
                record.seq,
                "edited",
                "the record's content no longer matches its stored hash: a field was edited",
            )
        if record.seq == self.head_seq:
            self.head_stored_hash = stored.stored_hash
        self._link_ok = {stored.stored_hash, computed}
        self.last_seq = max(self.last_seq, record.seq)
        self.checked += 1

    def _claim(self, stored: StoredRecord) -> tuple[int, str] | None:
        record = stored.record
        if self._sealed_action is None or record.action != self._sealed_action:
            return None
        if stored.unreadable:
            return None
        claimed = record.payload.get("head_hash")
        if record.target_id and record.target_id.isdigit() and isinstance(claimed, str):
            return int(record.target_id), claimed
        return None

    # -- seals --------------------------------------------------------------------------

    def _seals(
        self, db_seals: list[Seal], witnessed: list[WitnessLine], hashes: dict[int, str]
    ) -> None:
        for seal in db_seals:
            self.db_seals += 1
            self._check_seal(seal, hashes, "audit_seals")
        witness_seals: dict[int, Seal] = {}
        for line in witnessed:
            if isinstance(line, UnreadableLine):
                self.report(0, "witness_unreadable", f"witness line {line.number}: {line.why}")
                continue
            if line.seq <= self._witness_last:
                self.report(
                    0,
                    "witness_unreadable",
                    f"witness seal over {line.seq} comes after one over {self._witness_last}: "
                    "the witness is out of order",
                )
                continue
            self._witness_last = line.seq
            self.witnessed += 1
            witness_seals[line.seq] = line
            self._check_seal(line, hashes, "witness")
        self._cross_check(db_seals, witness_seals)

    def _check_seal(self, seal: Seal, hashes: dict[int, str], source: str) -> None:
        if not self._signature_ok(seal):
            self.report(seal.seq, "bad_signature", f"the {source} seal's signature does not verify")
            return
        self._awaiting_record.setdefault(seal.seq, seal.head_hash)
        found = hashes.get(seal.seq)
        if found is None and seal.seq > self.last_seq:
            self.report(
                self.last_seq + 1,
                "truncated",
                f"the log ends at {self.last_seq} but a seal in {source} covers "
                f"{seal.seq}: records {self.last_seq + 1}-{seal.seq} were removed from the end",
            )
        elif found != seal.head_hash:
            self.report(
                seal.seq,
                "seal_mismatch",
                f"the record differs from the {source} seal over it "
                + ("(the record is missing)" if found is None else "(hash differs)"),
            )

    def _cross_check(self, db_seals: list[Seal], witness_seals: dict[int, Seal]) -> None:
        """The witness is the reference: each witnessed seal must be in the database, and a
        database seal between two witnessed ones must be in the witness too."""
        db = {s.seq: s for s in db_seals}
        for seq, seal in witness_seals.items():
            kept = db.get(seq)
            if kept is None:
                self.report(seq, "seal_missing", "a witnessed seal is missing from audit_seals")
            elif (kept.head_hash, kept.signature) != (seal.head_hash, seal.signature):
                self.report(seq, "seal_mismatch", "audit_seals disagrees with the witness's seal")
        for seq in sorted(db):
            if seq in witness_seals:
                continue
            if self._witness_started or (witness_seals and seq > min(witness_seals)):
                self._db_since_witness.append(seq)
        if witness_seals:
            self._witness_started = True
            newest = max(witness_seals)
            for seq in [s for s in self._db_since_witness if s < newest]:
                self.report(seq, "unwitnessed", "a seal in audit_seals the witness never received")
            self._db_since_witness = [s for s in self._db_since_witness if s > newest]

    def _check_claim(self, sealed_seq: int, head_hash: str) -> None:
        """An ``audit.sealed`` record names a seal that must still exist and agree."""
        self._claimed.add(sealed_seq)
        expected = self._awaiting_record.pop(sealed_seq, None)
        if expected is None:
            self.report(
                sealed_seq,
                "seal_missing",
                f"the chain records a seal over {sealed_seq} but no seal is left for it",
            )
        elif expected != head_hash:
            self.report(
                sealed_seq,
                "seal_mismatch",
                "the seal disagrees with the chain's audit.sealed record",
            )

    # -- the end ------------------------------------------------------------------------

    def finish(
        self,
        db_seals_beyond: list[Seal],
        witnessed_beyond: list[WitnessLine],
        *,
        head_hash: str,
        head_seq_after: int,
    ) -> list[Finding]:
        """Seals past the last record, seals never followed by their record, and the head.

        ``head_hash`` is the head row's hash read before the walk (with ``head_seq``);
        ``head_seq_after`` is the head read after it. Returns the findings, one per record
        and kind, in record order.
        """
        self._seals(db_seals_beyond, witnessed_beyond, {})
        for seq in sorted(self._awaiting_record) if self._sealed_action else ():
            if seq in self._claimed or self.last_seq < seq:  # the latter: truncated above
                continue
            if self.last_seq == seq:
                self.report(
                    seq + 1,
                    "truncated",
                    f"the log ends at {self.last_seq}, but the seal over {seq} was recorded "
                    f"after it: record(s) from {seq + 1} on were removed from the end",
                )
            else:
                self.report(
                    seq, "seal_missing", f"the chain holds no audit.sealed record for {seq}"
                )
        self._check_head(head_hash)
        if head_seq_after < self.last_seq:
            # Every record fed had committed before this read: a head behind was moved back.
            self.report(
                head_seq_after + 1,
                "head_mismatch",
                f"the chain head says {head_seq_after} records but the log holds {self.last_seq}",
            )
        seen: set[tuple[int, str]] = set()
        out: list[Finding] = []
        for finding in sorted(self.findings, key=lambda f: (f.seq, f.kind)):
            if (finding.seq, finding.kind) not in seen:
                seen.add((finding.seq, finding.kind))
                out.append(finding)
        return out

    def _check_head(self, head_hash: str) -> None:
        """The head row is written in the same transaction as each record, so every record
        up to the head must be there, and the record at the head must carry its hash."""
        if self.head_seq > self.last_seq:
            self.report(
                self.last_seq + 1,
                "truncated",
                f"the chain head says {self.head_seq} records but the log ends at {self.last_seq}",
            )
            return
        expected = GENESIS_HASH if self.head_seq == 0 else self.head_stored_hash
        if expected != head_hash:
            self.report(
                max(self.head_seq, 1),
                "head_mismatch",
                f"the chain head's hash differs from the hash of record {self.head_seq}",
            )
