"""Completed idempotency records this process has read, kept in memory for their replays.

A completed key's record never changes: its answer is written once, in the transaction
that claimed it, and the row is deleted only after the key has expired (the retention
policy of ``idempotency_records`` cannot be set below two days; a key lives one). So a
retry storm (a partner's client that times out and retries the same request, often
many times) needs the database once per process, not once per retry: the first replay
reads the record, the next ones find it here. Without this, every replay of a payout
joined a write batch to claim its key and find it taken. It assumes what every other
guarantee of a stored answer assumes: a commit is not lost afterwards (no restore of an
older backup, no failover to a standby that had not received it).

What is kept is the record as stored: the answer stays sealed and is opened for each
replay (AES-GCM, microseconds), so no personal data is held here in clear. Only a
record whose answer opened is kept. An entry is used only while its key is unexpired for
the request at hand, and expired entries at the least recently used end are dropped as
others come and go.

The memo is bounded by bytes, not entries: an answer echoes the request's metadata and
description, so one can be a hundred times the size of another. A record costs its
strings plus :data:`ENTRY_OVERHEAD` (the record object, its times, the dictionary slot;
measured with tracemalloc); one whose answer is over :data:`LARGEST_ANSWER` is never
kept (read from the database each time). The least recently used go first
(``OrderedDict``: the standard library's own LRU building block; a cache library would
add a dependency for these few lines).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from amanat.platform.idempotency.ports import IdempotencyRecord

MEMO_MB = 16  # AMANAT_HTTP__REPLAY_MEMO_MB
ENTRY_OVERHEAD = 600
LARGEST_ANSWER = 16 * 1024  # characters of the sealed answer (base64 text)


def cost_of(record: IdempotencyRecord) -> int:
    """Bytes a kept record takes, near enough: its ASCII strings plus the overhead."""
    return ENTRY_OVERHEAD + sum(
        len(text)
        for text in (
            record.client_id,
            record.key,
            record.request_hash,
            record.method,
            record.path,
            record.response_body or "",
        )
    )


class ReplayMemo:
    def __init__(self, max_bytes: int = MEMO_MB * 1024 * 1024) -> None:
        self._budget = max_bytes
        self._used = 0
        self._records: OrderedDict[tuple[str, str], tuple[IdempotencyRecord, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    @property
    def used_bytes(self) -> int:
        return self._used

    def keep(self, record: IdempotencyRecord, now: datetime) -> None:
        """Remember a completed, unexpired record read from the store, in place of any
        kept for its key (a record that is not completed, expired or too large replaces
        it with nothing)."""
        where = (record.client_id, record.key)
        self._drop(where)
        if record.status != "completed" or record.expires_at <= now:
            return
        if len(record.response_body or "") > LARGEST_ANSWER:
            return
        cost = cost_of(record)
        if cost > self._budget:
            return
        self._records[where] = (record, cost)
        self._used += cost
        self._drop_expired(now)
        while self._used > self._budget:
            self._drop(next(iter(self._records)))

    def find(self, client_id: str, key: str, now: datetime) -> IdempotencyRecord | None:
        """The completed record of this key, if kept and not expired at ``now``."""
        self._drop_expired(now)
        where = (client_id, key)
        kept = self._records.get(where)
        if kept is None:
            return None
        if kept[0].expires_at <= now:
            self._drop(where)
            return None
        self._records.move_to_end(where)
        return kept[0]

    def forget(self, client_id: str, key: str) -> None:
        self._drop((client_id, key))

    def _drop(self, where: tuple[str, str]) -> None:
        kept = self._records.pop(where, None)
        if kept is not None:
            self._used -= kept[1]

    def _drop_expired(self, now: datetime) -> None:
        # Only at the least recently used end: a few at a time, never a scan.
        while self._records:
            oldest = next(iter(self._records))
            if self._records[oldest][0].expires_at > now:
                return
            self._drop(oldest)
