"""Payouts' group commit: concurrent payouts of this process commit together.

A payout costs the database far less as one of many in a transaction of set-based
statements than in a transaction of its own (one claim of all the idempotency keys, one
locking read of the balance shards, one insert per table, one update of the shards, one
COMMIT). Each request's answer is worked out before its payout is written, so its key is
claimed with the answer already in it: the key's row is written once, not claimed and
then completed. A request puts its checked payout in the queue and waits; one flusher takes
everything queued (up to ``max_batch``) whenever the previous batch has committed, so an
idle server adds no delay and a busy one makes bigger batches. Every request is answered
only after its batch's COMMIT: durability is as before.

After a large batch commits, its requests' clients send their next payouts within a few
milliseconds, but the first one or two reach the queue before the rest. A flusher that
took them at once would run a whole transaction for one payout while the others wait
behind it: in the bench, half of one process's batches held a single payout, and each
held up some thirty. So when the queue holds less than a quarter of the last batch, the
flusher first waits, for at most a quarter of the last batch's time and never more than
``GATHER_LIMIT``, until it holds half of it (as PostgreSQL's ``commit_delay`` waits only
when other transactions are active). After a batch of one or a few, or once the last
batch ended longer ago than it took, it never waits: a lone request is not delayed.

What each request gets back, in :func:`run_idempotent`'s terms (platform/idempotency):

- its answer (201 and the payment), stored under its key in the same transaction;
- its business refusal (insufficient funds, limit...) as the problem document the route
  renders: nothing of the payout was written, and the refusal is stored as the key's
  result in the same transaction (as any request's refusal is kept);
- the stored answer of its key, when the key was already taken by a completed request
  (a retry): raised as :class:`Replay`, or :class:`KeyReused` when the body differs, as
  the per-request path would raise them; the batch reads all such keys in one statement
  (before it plans anything, while the batches before it found keys taken: a retry then
  costs a read, not a payout's planning);
- ``None``: its key is held by a request still in progress or has expired, or the batch
  failed as a whole (a deadlock, a bug): the request then takes the per-request path,
  which waits for the key and replays it, or creates the payout in a transaction of its
  own. One bad payout can therefore never fail others.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from amanat.kernel.errors import DomainError
from amanat.payments import views
from amanat.payments.domain.payments import Payment
from amanat.payments.ports import PayoutBatchTx
from amanat.payments.service import PaymentService, PayoutRequest, PlannedPayout
from amanat.platform.db.ports import UnitOfWork
from amanat.platform.idempotency.ports import IdempotencyRecord
from amanat.platform.idempotency.service import IdempotencyService, KeyReused, Replay
from amanat.platform.idempotency.store import record_id

log = structlog.get_logger("amanat.payments")

MAX_BATCH = 128
GATHER_LIMIT = 0.005  # seconds: the longest a flusher waits for a batch to gather

Answer = tuple[int, dict[str, Any]]
# An exception is the request's answer too: run_idempotent turns Replay and KeyReused
# into the replayed answer and the 422.
Outcome = Answer | Exception | None
Refusal = Callable[[DomainError], Answer]


@dataclass(slots=True)
class _Waiting:
    record: IdempotencyRecord
    request: PayoutRequest | None  # None: refused before it reached the batch
    refused: DomainError | None
    refusal: Refusal = field(repr=False)
    answer: asyncio.Future[Answer | None] = field(repr=False)


class PayoutBatcher:
    def __init__(
        self,
        transactions: UnitOfWork[PayoutBatchTx],
        payments: PaymentService,
        idempotency: IdempotencyService,
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._tx = transactions
        self._payments = payments
        self._idempotency = idempotency
        self._max_batch = max_batch
        self._queue: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None
        # Whether the last batch found keys taken (a retry storm): then the next reads its
        # keys before it plans its payouts (_answer_taken); a batch of new payouts does not
        # pay for that read.
        self._expect_taken = False
        # The last batch's size and time, and the event that ends a gathering wait.
        self._last_size = 0
        self._last_seconds = 0.0
        self._last_end = 0.0  # by the event loop's clock
        self._gathered: asyncio.Event | None = None
        self._gather_to = 0
        self.batches = 0  # committed batches, for tests and measurements
        self.fallbacks = 0  # batches that failed as a whole
        self.gathers = 0  # waits for a batch to gather

    async def create(
        self,
        record: IdempotencyRecord,
        refusal: Refusal,
        prepare: Callable[[], Awaitable[PayoutRequest]],
    ) -> Answer | None:
        """Create the payout ``prepare`` checks, in the next batch, under ``record``'s key.

        Returns the answer (the payment, or the refusal as ``refusal`` renders it; either
        stored under the key), or None: the caller runs the request on the per-request
        path (see the module docstring)."""
        request: PayoutRequest | None = None
        refused: DomainError | None = None
        try:
            request = await prepare()
        except DomainError as exc:
            # Refused before the batch, but the key decides first: a key already taken
            # is replayed (or refused as reused) rather than this refusal answered.
            refused = exc
        loop = asyncio.get_running_loop()
        waiting = _Waiting(record, request, refused, refusal, loop.create_future())
        flusher = self._flusher
        if flusher is not None and flusher.get_loop().is_closed():
            # An event loop that ended (a CLI command, a test) with requests in flight:
            # they are gone with it. A loop that still runs keeps its own flusher.
            self._queue = [w for w in self._queue if not w.answer.get_loop().is_closed()]
            flusher = None
        elif flusher is not None and flusher.get_loop() is not loop:
            # Two live loops in one process (tests): this loop's requests go their own
            # way, one at a time, rather than be served from the other loop.
            return None
        self._queue.append(waiting)
        if self._gathered is not None and len(self._queue) >= self._gather_to:
            self._gathered.set()
        if flusher is None or flusher.done():
            # A context of its own: the flusher serves many requests, not the first one.
            self._flusher = loop.create_task(self._drain(), context=contextvars.Context())
        return await waiting.answer

    async def _drain(self) -> None:
        try:
            await self._drain_queue()
        finally:
            # Left non-empty only when the flusher was canceled (shutdown).
            left, self._queue = self._queue, []
            for waiting in left:
                if not waiting.answer.done():
                    waiting.answer.set_result(None)

    async def _drain_queue(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            await self._gather()
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            outcomes: dict[int, Outcome] = {}
            started = loop.time()
            try:
                outcomes = await self._commit(batch)
                self.batches += 1
                self._last_end = loop.time()
                self._last_size, self._last_seconds = len(batch), self._last_end - started
            except Exception:
                # Nothing of the batch stands (its transaction rolled back): every request
                # in it goes its own way, retried and answered as it would be alone.
                self.fallbacks += 1
                log.warning("payout_batch_failed", size=len(batch), exc_info=True)
                outcomes = {}
            finally:
                # Even when the flusher itself is canceled (shutdown), no request is left
                # waiting: those without an outcome take the per-request path.
                for i, waiting in enumerate(batch):
                    if waiting.answer.done():  # a request canceled meanwhile is gone
                        continue
                    outcome = outcomes.get(i)
                    if isinstance(outcome, Exception):
                        waiting.answer.set_exception(outcome)
                    else:
                        waiting.answer.set_result(outcome)

    async def _gather(self) -> None:
        """Wait a moment for the next batch to gather, when the last batch was large and
        the queue holds only its first few requests (see the module)."""
        if len(self._queue) * 4 >= self._last_size:
            return
        if asyncio.get_running_loop().time() - self._last_end > self._last_seconds:
            return  # not a stream of batches: the last one ended a while ago
        self._gather_to = self._last_size // 2
        self._gathered = asyncio.Event()
        try:
            async with asyncio.timeout(min(GATHER_LIMIT, self._last_seconds / 4)):
                await self._gathered.wait()
        except TimeoutError:
            pass  # the requests that came meanwhile make the batch
        finally:
            self._gathered = None
        self.gathers += 1

    async def _commit(self, batch: list[_Waiting]) -> dict[int, Outcome]:
        """One transaction for the whole batch; the outcome of each of its requests by
        position (absent: the per-request path)."""
        first: dict[str, int] = {}
        for i, waiting in enumerate(batch):
            first.setdefault(record_id(waiting.record.client_id, waiting.record.key), i)
        outcomes: dict[int, Outcome] = {}
        taken_before = False
        if self._expect_taken:
            left = await self._answer_taken(batch, first, outcomes)
            taken_before, first = len(left) < len(first), left
            if not first:
                return outcomes  # retries only: nothing to write
        await self._payments.recall_accounts(
            w.request for i in first.values() if (w := batch[i]).request is not None
        )
        async with self._tx.atomic() as tx:
            # One read of the active key for the descriptions and the stored answers.
            answer_key = await self._idempotency.answer_key()
            # Each request's answer is known before anything of it is written (its payment
            # as it will be if the balance covers it, or its refusal), so its key is
            # claimed with that answer in one write. The few the balance then does not
            # cover have their key's answer replaced by the refusal.
            to_plan = [i for i in first.values() if batch[i].request is not None]
            plans = dict(
                zip(
                    to_plan,
                    await self._payments.plan_payouts(
                        [r for i in to_plan if (r := batch[i].request) is not None],
                        fields_key=answer_key or None,
                    ),
                    strict=True,
                )
            )
            presumed: dict[int, Answer] = {}
            claims: list[tuple[IdempotencyRecord, int, str, str | None]] = []
            for i in first.values():
                waiting = batch[i]
                plan = plans.get(i, waiting.refused)
                if isinstance(plan, PlannedPayout):
                    # An empty description is stored as none: answer as GET will.
                    clear = plan.request.description or None
                    presumed[i] = (201, views.payment_view(plan.payment, clear))
                    created_id: str | None = plan.payment.id
                else:
                    assert plan is not None
                    # Refused: nothing of the payout is written; the refusal is the key's
                    # result, as run_idempotent keeps any request's.
                    presumed[i] = waiting.refusal(plan)
                    created_id = None
                status, payload = presumed[i]
                sealed = await self._seal(waiting.record, payload, answer_key)
                claims.append((waiting.record, status, sealed, created_id))
            claimed = await tx.idempotency.claim_many(claims)
            mine = [i for key, i in first.items() if key in claimed]
            # Keys taken before this batch (retries, mostly): every request under one of
            # them is answered from it here, the repeats of a key within the batch too.
            taken = [key for key in first if key not in claimed]
            self._expect_taken = taken_before or bool(taken)
            await self._answer_from(batch, await tx.idempotency.get_many(taken), outcomes)
            to_write = [i for i in mine if isinstance(plans.get(i), PlannedPayout)]
            written = await self._payments.write_payouts(
                tx, [p for i in to_write if isinstance(p := plans[i], PlannedPayout)]
            )
            uncovered = {
                i: result
                for i, result in zip(to_write, written, strict=True)
                if not isinstance(result, Payment)
            }
            answers: list[tuple[str, str, int, str, str | None]] = []
            for i in mine:
                outcomes[i] = presumed[i]
                refused = uncovered.get(i)
                if refused is None:
                    continue
                waiting = batch[i]
                outcomes[i] = answer = waiting.refusal(refused)
                sealed = await self._seal(waiting.record, answer[1], answer_key)
                record = waiting.record
                answers.append((record.client_id, record.key, answer[0], sealed, None))
            await tx.idempotency.complete_many(answers)
        return outcomes

    async def _answer_taken(
        self, batch: list[_Waiting], first: dict[str, int], outcomes: dict[int, Outcome]
    ) -> dict[str, int]:
        """Answer the requests whose keys are taken already, from one read of the batch's
        keys before anything is planned; the keys left to claim.

        A retry that this process has not answered before (the replay memo misses: the
        first retry of each key on each process) would otherwise cost as much as a new
        payout: its creditor looked up, its description and answer sealed, its claim
        sent, all thrown away when the claim finds the key taken. The read is one
        statement without a transaction, and a key taken after it is still found by the
        claim (ON CONFLICT), so it decides nothing; it only saves that work."""
        async with self._tx.lookup() as tx:
            found = await tx.idempotency.get_many(list(first))
        await self._answer_from(batch, found, outcomes)
        return {key: i for key, i in first.items() if key not in found}

    async def _answer_from(
        self,
        batch: list[_Waiting],
        found: dict[str, IdempotencyRecord],
        outcomes: dict[int, Outcome],
    ) -> None:
        """The outcome of every request whose key is among the records ``found`` (taken
        keys, by id), the repeats of a key within the batch too."""
        for i, waiting in enumerate(batch):
            existing = found.get(record_id(waiting.record.client_id, waiting.record.key))
            if existing is not None:
                outcomes[i] = await self._settled(waiting.record, existing)

    async def _seal(self, record: IdempotencyRecord, payload: dict[str, Any], key: str) -> str:
        return await self._idempotency.seal_answer(record, payload, key_id=key)

    async def _settled(
        self, record: IdempotencyRecord, existing: IdempotencyRecord
    ) -> Exception | None:
        """A taken key's outcome for the request under it: its replay, the refusal of a
        reused key, or None (in progress or expired: the per-request path decides)."""
        try:
            stored = await self._idempotency.answer_of(record, existing)
        except KeyReused as exc:
            return exc
        except Exception:
            # A stored answer this process cannot read now (its data key, the master
            # key's service): that request alone goes the per-request path, not the batch.
            log.warning("payout_batch_replay_unreadable", exc_info=True)
            return None
        return Replay(stored) if stored is not None else None
