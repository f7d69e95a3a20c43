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
