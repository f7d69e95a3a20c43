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
    """An audit record as read back, with the hash stored beside it."""

    record: AuditRecord
    stored_hash: str


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
    """The first thing wrong with the chain, named precisely."""

    seq: int
    # gap | duplicate | edited | broken_link | truncated | head_mismatch | seal_mismatch
    # | bad_signature
    kind: str
    detail: str


class ChainVerifier:
    """Feeds records in sequence order; stops at the first problem.

    Detects an edited field (hash mismatch), a deleted record (sequence gap), reordered
    records (the previous-hash link breaks), truncation below the last seal or the chain
    head, and a chain head that disagrees with the log.
    """

    def __init__(self) -> None:
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.hashes_at: dict[int, str] = {}
        self.finding: Finding | None = None
        self.checked = 0

    def feed(self, stored: StoredRecord, *, remember: set[int]) -> bool:
        if self.finding is not None:
            return False
        record = stored.record
        if record.seq != self.expected_seq:
            kind = "gap" if record.seq > self.expected_seq else "duplicate"
            self.finding = Finding(
                self.expected_seq,
                kind,
                f"expected record {self.expected_seq}, found {record.seq}: "
                "a record was deleted or renumbered",
            )
            return False
        if record.prev_hash != self.prev_hash:
            self.finding = Finding(
                record.seq,
                "broken_link",
                "prev_hash does not match the previous record: records were "
                "reordered, replaced or removed",
            )
            return False
        if record.compute_hash() != stored.stored_hash:
            self.finding = Finding(
                record.seq,
                "edited",
                "the record's content no longer matches its hash: a field was edited",
            )
            return False
        if record.seq in remember:
            self.hashes_at[record.seq] = stored.stored_hash
        self.prev_hash = stored.stored_hash
        self.expected_seq += 1
        self.checked += 1
        return True

    def check_seals(self, seals: list[Seal], valid_signature: dict[int, bool]) -> None:
        if self.finding is not None:
            return
        last_seq = self.expected_seq - 1
        for seal in sorted(seals, key=lambda s: s.seq):
            if not valid_signature.get(seal.seq, False):
                self.finding = Finding(
                    seal.seq, "bad_signature", "a seal's signature does not verify"
                )
                return
            if seal.seq > last_seq:
                self.finding = Finding(
                    last_seq + 1,
                    "truncated",
                    f"the log ends at {last_seq} but a seal covers "
                    f"{seal.seq}: records were removed from the end",
                )
                return
            if self.hashes_at.get(seal.seq) != seal.head_hash:
                self.finding = Finding(
                    seal.seq,
                    "seal_mismatch",
                    "the record at a sealed position differs from the seal",
                )
                return

    def check_head(self, seq: int, head_hash: str) -> None:
        """Compare the chain head, read *before* the walk, with the records fed.

        The head row is written in the same transaction as each record, so every record
        up to the head must have been fed, and the record at the head must carry its hash.
        Pass ``seq`` in ``remember`` while feeding.
        """
        if self.finding is not None:
            return
        last = self.expected_seq - 1
        if seq > last:
            self.finding = Finding(
                last + 1,
                "truncated",
                f"the chain head says {seq} records but the log ends at {last}",
            )
            return
        expected = GENESIS_HASH if seq == 0 else self.hashes_at.get(seq)
        if expected != head_hash:
            self.finding = Finding(
                max(seq, 1),
                "head_mismatch",
                f"the chain head's hash differs from the hash of record {seq}",
            )

    def check_head_not_behind(self, seq: int) -> None:
        """Compare the chain head, read *after* the walk, with the last record fed.

        Every record fed had committed before this read, so a head behind it was moved back.
        """
        if self.finding is not None:
            return
        last = self.expected_seq - 1
        if seq < last:
            self.finding = Finding(
                seq + 1,
                "head_mismatch",
                f"the chain head says {seq} records but the log holds {last}",
            )
