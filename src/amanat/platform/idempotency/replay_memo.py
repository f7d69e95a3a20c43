"""Completed idempotency records this process has read, kept in memory for their replays.

A completed key's record never changes: its answer is written once, in the transaction
that claimed it, and the row is only ever deleted after the key has expired (retention
keeps it longer than the 24 hours the contract promises). So a retry storm — a partner's
client that times out and retries the same request, often many times — needs the
database once per process, not once per retry: the first replay reads the record, the
next ones find it here. Without this, every replay of a payout joined a write batch
to claim its key and find it taken.

What is kept is the record as stored: the answer stays sealed and is opened for each
replay (AES-GCM, microseconds), so no personal data is held here in clear, and a record
whose data key can no longer be read is dropped and read again from the database. An
entry is used only while its key is unexpired for the request at hand. At most ``size``
records are kept, the least recently replayed dropped first (``OrderedDict``: the standard
library's own LRU building block; a cache library would add a dependency for ten lines).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from amanat.platform.idempotency.ports import IdempotencyRecord

MEMO_SIZE = 8192  # about 16 MB a process at its fullest (AMANAT_HTTP__REPLAY_MEMO_SIZE)


class ReplayMemo:
    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._size = size
        self._records: OrderedDict[tuple[str, str], IdempotencyRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def keep(self, record: IdempotencyRecord) -> None:
        """Remember a completed record read from the store (anything else is ignored)."""
        if record.status != "completed" or self._size <= 0:
            return
        where = (record.client_id, record.key)
        self._records[where] = record
        self._records.move_to_end(where)
        while len(self._records) > self._size:
            self._records.popitem(last=False)

    def find(self, client_id: str, key: str, now: datetime) -> IdempotencyRecord | None:
        """The completed record of this key, if kept and not expired at ``now``."""
        where = (client_id, key)
        record = self._records.get(where)
        if record is None:
            return None
        if record.expires_at <= now:
            del self._records[where]
            return None
        self._records.move_to_end(where)
        return record

    def forget(self, client_id: str, key: str) -> None:
        self._records.pop((client_id, key), None)
