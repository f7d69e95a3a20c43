"""Idempotency keys as a service: claim a key, run the business change under it, keep the
answer, replay it (see docs/api-contract.md).

The key record, the business change and the completed record are written in one
transaction, so a crash can never leave one without the others, and the request costs one
commit. The key's primary key lets exactly one request win: a concurrent request with the
same key waits on that row until the first commits, then gets its stored result. A
business refusal rolls the change back and is then kept as the key's result. Stored
answers echo personal data (names, IBANs), so they are kept encrypted.

HTTP stays at the edge (protocol.py): this service speaks in records, statuses and
JSON documents.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import structlog

from amanat.kernel.clock import Clock
from amanat.kernel.errors import Contention
from amanat.platform.crypto.field_cipher import FieldContext
from amanat.platform.db.ports import UnitOfWork
from amanat.platform.idempotency.ports import IdempotencyRecord, IdempotencyTx
from amanat.platform.idempotency.replay_counts import ReplayCounts
from amanat.platform.idempotency.replay_memo import MEMO_MB, ReplayMemo
from amanat.platform.protection.service import DataProtectionService

log = structlog.get_logger("amanat.idempotency")

KEY_LIFETIME = timedelta(hours=24)
LOCK = timedelta(seconds=30)

Operation = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]
ResourceOf = Callable[[Any], str | None]
"""What a successful answer created or acted on, read from the answer (an API whose answer
does not name it by a top-level ``id``)."""


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The answer kept for a key, as first given (replayed byte for byte)."""

    status: int
    body: str
    headers: dict[str, str]


class KeyReused(Exception):
    """The key was used for a different request (``method`` ``path``)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"{method} {path}")
        self.method = method
        self.path = path


class KeyInUse(Exception):
    """A request with this key is running now; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class Replay(Exception):
    """The key already has an answer: give it again."""

    def __init__(self, answer: StoredAnswer) -> None:
        super().__init__()
        self.answer = answer


RESOURCE_ID_WIDTH = 64  # idempotency_keys.resource_id


def resource_of(status: int, payload: Any) -> str | None:
    """What a request created or acted on, as its stored answer names it: the top-level
    ``id`` of a successful answer (a payment, a refund, an endpoint…); None for a refusal
    or an answer without one."""
    if status >= 400 or not isinstance(payload, dict):
        return None
    found = payload.get("id")
    return found if isinstance(found, str) and 0 < len(found) <= RESOURCE_ID_WIDTH else None


def _resource(given: str | ResourceOf | None, status: int, payload: Any) -> str | None:
    if status >= 400:
        return None
    found = given(payload) if callable(given) else given
    if isinstance(found, str) and 0 < len(found) <= RESOURCE_ID_WIDTH:
        return found
    return resource_of(status, payload)


def _where(record: IdempotencyRecord) -> dict[str, str]:
    return {
        "table": "idempotency_keys",
        "column": "response_body",
        "row_id": f"{record.client_id}:{record.key}",
    }


class IdempotencyService:
    def __init__(
        self,
        transactions: UnitOfWork[IdempotencyTx],
        clock: Clock,
        protection: DataProtectionService,
        *,
        contention_retries: int = 3,
        read_before_claim: bool = False,
        replay_memo_mb: int = MEMO_MB,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._protection = protection
        self._retries = contention_retries
        self.replay_counts = ReplayCounts(transactions, clock)
        self.replay_memo = ReplayMemo(replay_memo_mb * 1024 * 1024)
        self.read_before_claim = read_before_claim
        """Whether a batched write reads its key before it joins a batch (see
        platform/idempotency/protocol.py)."""
        self._retries_lately = False

    @property
    def expects_retries(self) -> bool:
        """Whether the last key found in the database for a request the replay memo did not
        know was a completed one: a retry, as in a storm of them after a timeout. While so,
        such a request reads its key before it is validated (protocol.py,
        ``replay_if_remembered``); the first key found free or in progress turns it off, so
        new requests pay for no read they do not need."""
        return self._retries_lately

    def new_record(
        self, client_id: str, key: str, request_hash: str, method: str, path: str
    ) -> IdempotencyRecord:
        now = self._clock.now()
        return IdempotencyRecord(
            client_id=client_id,
            key=key,
            request_hash=request_hash,
            method=method,
            path=path,
            status="in_progress",
            response_status=None,
            response_body=None,
            response_headers=None,
            created_at=now,
            locked_until=now + LOCK,
            expires_at=now + KEY_LIFETIME,
        )

    async def _answer(self, record: IdempotencyRecord) -> StoredAnswer:
        body = await self._protection.unseal(record.response_body or "", **_where(record))
        return StoredAnswer(
            record.response_status or 200, body, dict(record.response_headers or {})
        )

    async def stored(self, record: IdempotencyRecord) -> StoredAnswer | None:
        """The answer of a completed, unexpired key, read without taking a write lock;
        ``None`` sends the request down the claiming path (new, in progress or expired).

        Retries are the common case after a timeout, and on SQLite the claiming path
        queues them behind every payout for the one write lock."""
        async with self._tx.lookup() as tx:
            existing = await tx.idempotency.get(record.client_id, record.key, for_update=False)
        return await self.answer_of(record, existing)

    async def answer_of(
        self, record: IdempotencyRecord, existing: IdempotencyRecord | None
    ) -> StoredAnswer | None:
        """What a request (``record``) gets from the record found under its key: the stored
        answer when that is completed and unexpired (KeyReused when its body differs), else
        ``None``: the claiming path decides (new, in progress or expired)."""
        if (
            existing is None
            or existing.status != "completed"
            or existing.expires_at <= record.created_at
        ):
            # The key is free, in progress or expired now: nothing of it may be replayed.
            self.replay_memo.forget(record.client_id, record.key)
            self._retries_lately = False
            return None
        if existing.request_hash != record.request_hash:
            raise KeyReused(existing.method, existing.path)
        answer = await self._answer(existing)
        self.replay_memo.keep(existing, record.created_at)
        self._retries_lately = True
        return answer

    async def remembered(self, record: IdempotencyRecord) -> StoredAnswer | None:
        """The stored answer of a key this process has read completed before
        (replay_memo.py), without the database; KeyReused when this body differs. None:
        not remembered, or its answer cannot be opened now (forgotten, so the database
        path reads it afresh and decides)."""
        known = self.replay_memo.find(record.client_id, record.key, record.created_at)
        if known is None:
            return None
        if known.request_hash != record.request_hash:
            raise KeyReused(known.method, known.path)
        try:
            return await self._answer(known)
        except Exception:
            self.replay_memo.forget(record.client_id, record.key)
            log.warning("idempotency_remembered_answer_unreadable", exc_info=True)
            return None

    async def run(
        self,
        record: IdempotencyRecord,
        operation: Operation,
        *,
        resource_id: str | ResourceOf | None = None,
    ) -> tuple[int, Any]:
        """Run ``operation`` under the key, retried as a whole when the database gave up
        on the transaction to let others through (after the last try: Contention).

        The stored answer keeps what the request created or acted on: ``resource_id``
        when the caller knows it (or reads it from the answer), else the answer's
        top-level ``id`` (:func:`resource_of`)."""
        for attempt in range(self._retries + 1):
            try:
                return await self._run_once(record, operation, resource_id)
            except Contention:
                # The database rolled the whole unit of work back (deadlock, serialization
                # failure, lock timeout): nothing of it stands, so it runs again from the
                # top. After the last try the client gets 503 with Retry-After and a free
                # key.
                if attempt == self._retries:
                    raise
                log.info("unit_of_work_retried", attempt=attempt + 1)
                await asyncio.sleep(random.uniform(0.01, 0.05) * 2**attempt)
        raise AssertionError("unreachable")

    async def _run_once(
        self,
        record: IdempotencyRecord,
        operation: Operation,
        resource_id: str | ResourceOf | None,
    ) -> tuple[int, Any]:
        # One transaction: the key, the business change and the stored answer commit
        # together or not at all.
        async with self._tx.atomic() as tx:
            await self._claim(tx, record)
            status, payload = await operation()
            sealed = await self._protection.seal(orjson.dumps(payload).decode(), **_where(record))
            await tx.idempotency.complete(
                record.client_id,
                record.key,
                status,
                sealed,
                {},
                resource_id=_resource(resource_id, status, payload),
            )
        return status, payload

    async def count_replay(self, record: IdempotencyRecord) -> bool:
        """Count that the key's stored answer was given again (the timeline shows how
        often, and when last). Best effort, and never in the replay's way: the count is
        kept in memory and written a moment later with others (replay_counts.py); any
        failure is logged, never raised. Whether it was taken."""
        return self.replay_counts.add(record.client_id, record.key)

    async def flush_replay_counts(self) -> int:
        """Write the replay counts waiting in this process now (tests, shutdown)."""
        return await self.replay_counts.flush()

    async def answer_key(self) -> str:
        """The key stored answers are sealed under now (read once for a whole batch)."""
        return await self._protection.active_fields_key()

    async def seal_answer(self, record: IdempotencyRecord, payload: Any, *, key_id: str) -> str:
        """The answer as :meth:`run` stores it, sealed under ``key_id`` (from
        :meth:`answer_key`), for a batch that completes many keys at once."""
        return await self._protection.cipher.encrypt(
            orjson.dumps(payload).decode(), context=FieldContext(**_where(record)), key_id=key_id
        )

    async def keep_refusal(
        self, record: IdempotencyRecord, status: int, problem: dict[str, Any]
    ) -> None:
        """The request ran and a business rule refused it: that outcome is the key's
        result (as Stripe does); nothing else was committed."""
        sealed = await self._protection.seal(orjson.dumps(problem).decode(), **_where(record))
        async with self._tx.write() as tx:
            await tx.idempotency.delete_expired(record.client_id, record.key, record.created_at)
            if await tx.idempotency.try_insert(record):
                await tx.idempotency.complete(record.client_id, record.key, status, sealed, {})
            # else: a concurrent request with this key ran meanwhile; its result stands.

    async def _claim(self, tx: IdempotencyTx, record: IdempotencyRecord) -> None:
        """Insert the key as in progress, in the business transaction. A concurrent
        request with the same key waits on the key's row until this one commits or rolls
        back, then finds the stored result (replayed) or a free key."""
        now = record.created_at
        if await tx.idempotency.try_insert(record):
            return
        # The key is taken. A record past its lifetime no longer counts: remove it, claim
        # afresh.
        if await tx.idempotency.delete_expired(
            record.client_id, record.key, now
        ) and await tx.idempotency.try_insert(record):
            return
        existing = await tx.idempotency.get(record.client_id, record.key, for_update=True)
        if existing is None or existing.status != "completed":
            self.replay_memo.forget(record.client_id, record.key)
        if existing is None:  # expired and removed by a concurrent request: rare
            raise KeyInUse()
        if existing.request_hash != record.request_hash:
            raise KeyReused(existing.method, existing.path)
        if existing.status == "completed":
            answer = await self._answer(existing)
            self.replay_memo.keep(existing, now)
            self._retries_lately = True
            raise Replay(answer)
        # An in-progress record that was committed: left by an older version of amanat
        # that claimed keys in a transaction of their own. Taken over once its lock has
        # expired.
        lock = existing.locked_until
        if lock is not None and lock > now:
            wait = max(1, math.ceil((lock - now).total_seconds()))
            raise KeyInUse(min(wait, 5))
        if not await tx.idempotency.take_over(record.client_id, record.key, lock, now + LOCK):
            raise KeyInUse()
        log.warning("idempotency_takeover", key_age_s=(now - existing.created_at).seconds)
