"""The audit record and its hash chain.

Each record's hash covers the previous record's hash and a canonical JSON form of the
record itself (sorted keys, no insignificant white space, UTF-8), so editing, deleting or
reordering any record breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amanat.domain.clock import format_timestamp

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
class WitnessContents:
    """What a witness holds: its seals, and the lines of it that no longer parse."""

    seals: list[Seal]
    unreadable: list[tuple[int, str]]  # (line number, why)


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
    "witness_unreadable": "a line of the witness file does not parse",
}


class ChainVerifier:
    """Feeds records in sequence order and collects every problem, not just the first.

    Detects edited fields (hash mismatch), fields that no longer parse, deleted records
    (sequence gap), reordered or replaced records (the previous-hash link breaks),
    truncation below a seal, the chain head or a witnessed seal, and seals that are
    missing, forged or disagree with the chain. It checks only (sequence, hash) pairs at
    sealed points, so it does not depend on how appends build the chain.
    """

    def __init__(self, remember: set[int] | None = None) -> None:
        self.remember = set(remember or ())
        self.expected_seq = 1
        self.last_seq = 0
        # The link to the next record is accepted against either the previous record's
        # stored hash or its recomputed hash, so one edit is reported once, not twice.
        self._link_ok: set[str] = {GENESIS_HASH}
        self.hashes_at: dict[int, str] = {}
        self.claimed_seals: dict[int, str] = {}  # from the chain's audit.sealed records
        self.findings: list[Finding] = []
        self.checked = 0

    @property
    def finding(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def report(self, seq: int, kind: str, detail: str) -> None:
        self.findings.append(Finding(seq, kind, detail))

    def feed(self, stored: StoredRecord, *, sealed_action: str = "audit.sealed") -> None:
        record = stored.record
        check_link = True
        if record.seq < self.expected_seq:
            self.report(
                record.seq,
                "duplicate",
                f"record {record.seq} comes after record {self.last_seq}: "
                "a record was renumbered or duplicated",
            )
            check_link = False
        elif record.seq > self.expected_seq:
            missing = (
                str(self.expected_seq)
                if record.seq == self.expected_seq + 1
                else f"{self.expected_seq}-{record.seq - 1}"
            )
            self.report(
                self.expected_seq,
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
        if record.seq in self.remember:
            self.hashes_at[record.seq] = stored.stored_hash
        if record.action == sealed_action and not stored.unreadable:
            claimed = record.payload.get("head_hash")
            if record.target_id and record.target_id.isdigit() and isinstance(claimed, str):
                self.claimed_seals[int(record.target_id)] = claimed
        self._link_ok = {stored.stored_hash, computed}
        self.last_seq = max(self.last_seq, record.seq)
        self.expected_seq = self.last_seq + 1
        self.checked += 1

    def check_seals(
        self,
        seals: list[Seal],
        valid_signature: dict[int, bool],
        *,
        source: str = "audit_seals",
    ) -> None:
        """Every seal must verify and match the chain at its sequence number."""
        for seal in sorted(seals, key=lambda s: s.seq):
            if not valid_signature.get(seal.seq, False):
                self.report(
                    seal.seq, "bad_signature", f"the {source} seal's signature does not verify"
                )
                continue
            if seal.seq > self.last_seq:
                self.report(
                    self.last_seq + 1,
                    "truncated",
                    f"the log ends at {self.last_seq} but a seal in {source} covers "
                    f"{seal.seq}: records {self.last_seq + 1}-{seal.seq} were removed "
                    "from the end",
                )
                continue
            found = self.hashes_at.get(seal.seq)
            if found != seal.head_hash:
                self.report(
                    seal.seq,
                    "seal_mismatch",
                    f"the record differs from the {source} seal over it "
                    + ("(the record is missing)" if found is None else "(hash differs)"),
                )

    def check_witness(self, witnessed: list[Seal], in_database: list[Seal]) -> None:
        """The witness is the reference: each witnessed seal must be in the database, and
        no database seal inside the witnessed range may be missing from the witness."""
        if not witnessed:
            return
        db = {s.seq: s for s in in_database}
        seen = {s.seq for s in witnessed}
        for seal in witnessed:
            kept = db.get(seal.seq)
            if kept is None:
                self.report(
                    seal.seq, "seal_missing", "a witnessed seal is missing from audit_seals"
                )
            elif (kept.head_hash, kept.signature) != (seal.head_hash, seal.signature):
                self.report(
                    seal.seq, "seal_mismatch", "audit_seals disagrees with the witness's seal"
                )
        oldest, newest = min(seen), max(seen)
        for seq in sorted(db):
            if oldest <= seq <= newest and seq not in seen:
                self.report(seq, "unwitnessed", "a seal in audit_seals the witness never received")

    def check_claimed_seals(self, in_database: list[Seal]) -> None:
        """Each ``audit.sealed`` record in the chain names a seal that must still exist."""
        db = {s.seq: s for s in in_database}
        for seq, head_hash in sorted(self.claimed_seals.items()):
            kept = db.get(seq)
            if kept is None:
                self.report(
                    seq,
                    "seal_missing",
                    f"the chain records a seal over {seq} but audit_seals has none",
                )
            elif kept.head_hash != head_hash:
                self.report(
                    seq, "seal_mismatch", "audit_seals disagrees with the chain's audit.sealed"
                )

    def check_seal_records(self, sealed_seqs: list[int]) -> None:
        """Each seal is made together with an ``audit.sealed`` record appended after the
        point it seals; without it, the records after that point were removed (even when
        the head was rewound to hide it) or the record itself was."""
        for seq in sealed_seqs:
            if seq in self.claimed_seals or self.last_seq < seq:  # the latter: check_seals
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
                    seq,
                    "seal_missing",
                    f"the chain holds no audit.sealed record for the seal over {seq}",
                )

    def check_head(self, seq: int, head_hash: str) -> None:
        """Compare the chain head, read *before* the walk, with the records fed.

        The head row is written in the same transaction as each record, so every record
        up to the head must have been fed, and the record at the head must carry its hash.
        Put ``seq`` in ``remember``.
        """
        last = self.last_seq
        if seq > last:
            self.report(
                last + 1,
                "truncated",
                f"the chain head says {seq} records but the log ends at {last}",
            )
            return
        expected = GENESIS_HASH if seq == 0 else self.hashes_at.get(seq)
        if expected != head_hash:
            self.report(
                max(seq, 1),
                "head_mismatch",
                f"the chain head's hash differs from the hash of record {seq}",
            )

    def check_head_not_behind(self, seq: int) -> None:
        """Compare the chain head, read *after* the walk, with the last record fed.

        Every record fed had committed before this read, so a head behind it was moved back.
        """
        if seq < self.last_seq:
            self.report(
                seq + 1,
                "head_mismatch",
                f"the chain head says {seq} records but the log holds {self.last_seq}",
            )
