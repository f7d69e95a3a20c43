"""The webhook deliverer: claims due deliveries in batches, runs their attempts
concurrently, and records finished attempts in batches.

* At most ``concurrency`` attempts are in flight in one worker process, and at most
  ``per_endpoint`` to any one endpoint, so a slow endpoint fills its own slots and
  nobody else's; the claim takes the first due delivery of every endpoint before the
  second of any.
* Claims are leases (``WebhooksConfig.lease``), taken by one statement per batch. A
  worker killed mid-attempt loses nothing: once the lease runs out another worker claims
  the delivery and sends it again with the same ``webhook-id`` (at-least-once; receivers
  de-duplicate by that id).
* Several workers claim with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so no attempt is
  made twice at the same time.
* Up to twice as many deliveries as there are slots are claimed (an endpoint is claimed
  for again while fewer than ``per_endpoint`` of its deliveries wait unsent), so the next
  request is at hand when a slot frees up; the slots alone decide how many requests are
  out. A claimed delivery whose lease could run out before its attempt would finish is
  not sent but given back (so no other worker can send it at the same time), as is
  everything not yet sent when the worker stops.
* An attempt holds its endpoint's slot (and counts against ``concurrency``) while its
  request is out, not while its outcome is being written: a slow write must not idle the
  HTTP slots. Finished attempts are recorded in batches (one transaction, one INSERT of
  the attempts, one UPDATE of the deliveries), so the database sees a few statements per
  batch instead of several per attempt. At most ``4 x concurrency`` attempts wait to be
  recorded; beyond that the deliverer claims nothing until the writes catch up. The
  lease of a delivery lasts until its outcome is recorded, so no other worker takes it
  meanwhile. A re-enabled endpoint's held backlog keeps one attempt at a time, request
  and record, so it arrives in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import structlog

from amanat.kernel.clock import Clock
from amanat.kernel.errors import Unavailable
from amanat.platform.observability.metrics import (
    WEBHOOK_ATTEMPTS,
    WEBHOOK_ENDPOINTS_DISABLED,
    WEBHOOK_LAG,
    WEBHOOK_LATENCY,
    WEBHOOK_PENDING,
)
from amanat.webhooks.domain.endpoints import Delivery, Verdict
from amanat.webhooks.events_service import HELD
from amanat.webhooks.service import Finished, Outgoing, Recorded, WebhookSender, WebhookService

log = structlog.get_logger("amanat.webhooks")

_RECORDING_BACKLOG = 4
"""Attempts waiting to be recorded, as a multiple of ``concurrency``, before claims pause."""
_CLAIM_AHEAD = 2
"""Deliveries claimed per slot of ``concurrency``; the slots still bound the requests out
at once."""
_LEASE_MARGIN = timedelta(seconds=2)
"""Left of a lease after an attempt's deadline, for its outcome to be written."""

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class Batcher(Generic[_In, _Out]):
    """Runs ``flush`` over everything submitted while the previous flush ran (at most
    ``size`` at once); each submitter gets its own item's result, or the flush's error.

    ``linger_seconds``: how long a flush that is not full waits for more items first.
    Fewer, larger transactions cost the database and the worker less per item, and the
    deliverer's attempts no longer hold a slot while their outcome is written."""

    def __init__(
        self,
        flush: Callable[[list[_In]], Awaitable[list[_Out]]],
        size: int,
        *,
        linger_seconds: float = 0.0,
    ) -> None:
        self._flush = flush
        self._size = size
        self._linger = linger_seconds
        self._waiting: list[tuple[_In, asyncio.Future[_Out]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def submit(self, item: _In) -> _Out:
        done: asyncio.Future[_Out] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._run())
        return await done

    async def _run(self) -> None:
        try:
            while self._waiting:
                if self._linger and len(self._waiting) < self._size:
                    await asyncio.sleep(self._linger)
                batch = self._waiting[: self._size]
                del self._waiting[: self._size]
                try:
                    results = await self._flush([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every submitter hears of it
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (_, done), result in zip(batch, results, strict=True):
                    if not done.done():
                        done.set_result(result)
        finally:
            self._flushing = None


class WebhookDeliverer:
    def __init__(
        self,
        service: WebhookService,
        sender: WebhookSender,
        clock: Clock,
        *,
        allow_private: bool,
        concurrency: int = 64,
        per_endpoint: int = 8,
        owner: str | None = None,
        record_batch: int = 256,
        record_linger_seconds: float = 0.02,
    ) -> None:
        self._service = service
        self._sender = sender
        self._clock = clock
        self._allow_private = allow_private
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:webhooks"
        # Claimed deliveries whose request is not over yet, per endpoint.
        self._claimed: dict[str, int] = defaultdict(int)
        self._sending = 0
        self._gates: dict[str, asyncio.Semaphore] = {}  # per endpoint
        self._slots = asyncio.Semaphore(concurrency)  # the whole process
        self._tasks: set[asyncio.Task[None]] = set()
        self._held_in_order: dict[str, asyncio.Lock] = {}
        self._records: Batcher[Finished, Recorded] = Batcher(
            self._record, record_batch, linger_seconds=record_linger_seconds
        )
        self._found_work = False  # the last claim found some: claim again without looking
        # Claim again once this many attempts finished since the last claim (or when
        # idle), not after every attempt: one claim statement per batch, not per delivery.
        self._refill_at = max(1, min(concurrency, 4 * per_endpoint) // 4)
        self._finished_since_claim = 0
        self._room = asyncio.Event()
        self._records_behind = False  # claims paused until recording catches up
        self._stopping = False
        # Deliveries with a task in this process: one claimed again after its lease ran
        # out (its old task still waiting) gets no second task, which could send it while
        # the first gives it back. Endpoints with a held backlog item outstanding get no
        # more until it is done, so a given-back item is claimed again before later ones.
        self._in_flight_ids: set[str] = set()
        self._held_outstanding: dict[str, int] = defaultdict(int)

    @property
    def in_flight(self) -> int:
        """Attempts started and not yet recorded."""
        return len(self._tasks)

    async def run_once(self) -> int:
        """Claim what fits and start it; returns how many deliveries were claimed."""
        self._finished_since_claim = 0
        # Claimed ahead: twice the slots, so the next requests are at hand when slots
        # free up instead of after a claim's round trip, and each claim takes more at once.
        free = _CLAIM_AHEAD * self._concurrency - self._sending
        if free <= 0:
            return 0
        if len(self._tasks) >= _RECORDING_BACKLOG * self._concurrency:
            self._records_behind = True  # a recorded attempt wakes the loop (_task_done)
            return 0
        # An endpoint with a round of deliveries waiting unsent gets no more: at most one
        # round waits behind the one being sent, well within the lease.
        saturated = {e for e, n in self._claimed.items() if n >= self._per_endpoint}
        saturated |= self._held_outstanding.keys()
        lease_ends = self._clock.now() + self._service.config.lease
        claimed = await self._service.claim(
            self._owner,
            limit=free,
            per_endpoint=self._per_endpoint,
            exclude_endpoints=saturated,
            look_first=not self._found_work,
        )
        self._found_work = bool(claimed)
        if not claimed:
            return 0
        for outgoing in await self._service.prepare_many(claimed, self._owner):
            delivery = outgoing.delivery
            if delivery.id in self._in_flight_ids:
                continue  # its earlier task sends it or gives it back
            endpoint_id = delivery.endpoint_id
            self._in_flight_ids.add(delivery.id)
            if delivery.trigger == HELD:
                self._held_outstanding[endpoint_id] += 1
            self._claimed[endpoint_id] += 1
            self._sending += 1
            task = asyncio.create_task(self._deliver(outgoing, lease_ends))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
        return len(claimed)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._records_behind and len(self._tasks) < _RECORDING_BACKLOG * self._concurrency:
            self._records_behind = False
            self._room.set()

    def _may_send(self, lease_ends: datetime) -> bool:
        """Whether an attempt starting now ends, and is written, inside its lease."""
        deadline = self._clock.now() + self._service.config.timeout + _LEASE_MARGIN
        return not self._stopping and deadline <= lease_ends

    def _sent(self, endpoint_id: str) -> None:
        """An attempt's request is over: its slots are free for the next claim."""
        self._sending -= 1
        self._claimed[endpoint_id] -= 1
        if self._claimed[endpoint_id] <= 0:
            self._claimed.pop(endpoint_id, None)
            self._gates.pop(endpoint_id, None)
            self._held_in_order.pop(endpoint_id, None)
        self._finished_since_claim += 1
        if self._finished_since_claim >= self._refill_at or not self._sending:
            self._room.set()

    def _gate(self, endpoint_id: str) -> asyncio.Semaphore:
        gate = self._gates.get(endpoint_id)
        if gate is None:
            gate = self._gates[endpoint_id] = asyncio.Semaphore(self._per_endpoint)
        return gate

    def _in_order(self, endpoint_id: str) -> asyncio.Lock:
        lock = self._held_in_order.get(endpoint_id)
        if lock is None:
            lock = self._held_in_order[endpoint_id] = asyncio.Lock()
        return lock

    async def _deliver(self, outgoing: Outgoing, lease_ends: datetime) -> None:
        delivery = outgoing.delivery
        endpoint_id = delivery.endpoint_id
        sent = False
        try:
            if delivery.trigger == HELD:
                # An endpoint's held backlog goes out one at a time in the order it was
                # claimed (oldest first): the lock wakes its waiters first come, first served,
                # and tasks start in the order they were created. Each is recorded at once
                # (no lingering for a batch) before the next goes.
                async with self._in_order(endpoint_id), self._gate(endpoint_id), self._slots:
                    if not self._may_send(lease_ends):
                        await self._give_back(delivery)
                        return
                    await self._record_one(await self._send(outgoing), batched=False)
                return
            # The endpoint's slot first: a task waiting for it holds no process slot.
            async with self._gate(endpoint_id), self._slots:
                done = await self._send(outgoing) if self._may_send(lease_ends) else None
            sent = True
            self._sent(endpoint_id)
            if done is None:
                await self._give_back(delivery)
            else:
                await self._record_one(done)
        except Exception:
            # The lease runs out and another claim retries; nothing is lost.
            log.exception("webhook_attempt_crashed", delivery_id=delivery.id)
        finally:
            if not sent:
                self._sent(endpoint_id)
            self._in_flight_ids.discard(delivery.id)
            if delivery.trigger == HELD:
                self._held_outstanding[endpoint_id] -= 1
                if self._held_outstanding[endpoint_id] <= 0:
                    del self._held_outstanding[endpoint_id]

    async def _send(self, outgoing: Outgoing) -> Finished:
        delivery = outgoing.delivery
        started_at = self._clock.now()
        if delivery.attempts == 0:
            WEBHOOK_LAG.observe(max((started_at - delivery.created_at).total_seconds(), 0.0))
        result = await self._sender.send(
            outgoing.url,
            self._service.headers(outgoing),
            outgoing.body,
            deadline_seconds=self._service.config.timeout.total_seconds(),
            allow_private=self._allow_private,
        )
        return Finished(delivery, result, started_at, outgoing.endpoint_failing)

    async def _give_back(self, delivery: Delivery) -> None:
        """Not sent: due again at once, for any worker, with its attempts unchanged."""
        await self._service.release([delivery.id], self._owner)
        log.info("webhook_delivery_given_back", delivery_id=delivery.id, stopping=self._stopping)

    async def _record_one(self, finished: Finished, *, batched: bool = True) -> None:
        delivery, result = finished.delivery, finished.result
        if batched:
            recorded = await self._records.submit(finished)
        else:
            (recorded,) = await self._record([finished])
        WEBHOOK_LATENCY.observe(result.latency_ms / 1000)
        WEBHOOK_ATTEMPTS.labels(recorded.verdict.value, result.error_class or "").inc()
        if recorded.verdict is not Verdict.DELIVERED:
            # Successes are counted per batch (``webhook_attempts_recorded``); every attempt,
            # success or not, is on record in webhook_attempts.
            log.info(
                "webhook_attempt",
                delivery_id=delivery.id,
                event_id=delivery.event_id,
                endpoint_id=delivery.endpoint_id,
                attempt=delivery.attempts + 1,
                status_code=result.status_code,
                error=result.error_class,
                latency_ms=result.latency_ms,
                verdict=recorded.verdict.value,
                retry_in_s=recorded.rescheduled_in.total_seconds()
                if recorded.rescheduled_in is not None
                else None,
            )
        if recorded.lease_lost:
            log.warning("webhook_lease_lost", delivery_id=delivery.id)
        if recorded.disabled:
            WEBHOOK_ENDPOINTS_DISABLED.inc()
            log.error(
                "operator_alert",
                alert="webhook_endpoint_disabled",
                endpoint_id=delivery.endpoint_id,
                partner_id=delivery.partner_id,
            )

    async def _record(self, finished: list[Finished]) -> list[Recorded]:
        recorded = await self._service.record_many(finished, owner=self._owner)
        delivered = sum(r.verdict is Verdict.DELIVERED for r in recorded)
        log.info(
            "webhook_attempts_recorded",
            attempts=len(recorded),
            delivered=delivered,
            not_delivered=len(recorded) - delivered,
        )
        return recorded

    async def drain(self, wait_seconds: float | None = None) -> None:
        """Wait for attempts in flight (tests, and a graceful stop)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=wait_seconds)

    async def run_forever(self, stop: asyncio.Event, *, idle_seconds: float = 0.1) -> None:
        """Claim, start, and claim again as soon as a batch's worth of attempts finished
        (or the last one did); otherwise look again every ``idle_seconds`` (with nothing
        due, a cheap read), so a delivery is picked up within that much of its event's
        commit."""
        log.info("webhook_deliverer_started", owner=self._owner)
        self._stopping = False
        ticks = 0
        while not stop.is_set():
            self._room.clear()  # before claiming: a wake-up during the claim is kept
            try:
                await self.run_once()
                ticks += 1
                if ticks % 50 == 0:
                    WEBHOOK_PENDING.set(await self._service.pending())
            except Unavailable as busy:
                # The database is busy or away (a restart): a warning per poll, no trace.
                log.warning("webhook_claim_deferred", error=str(busy))
            except Exception:
                log.exception("webhook_claim_failed")
            if self._finished_since_claim >= self._refill_at:
                continue  # a batch's worth finished meanwhile: claim again at once
            stopping = asyncio.ensure_future(stop.wait())
            room = asyncio.ensure_future(self._room.wait())
            waiters: set[asyncio.Future[Any]] = {stopping, room}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(
                    waiters,
                    # Busy: claim again when a batch's worth finished, or on the poll.
                    timeout=idle_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            stopping.cancel()
            room.cancel()
        # What waits unsent is given back at once; requests out finish within the timeout.
        self._stopping = True
        await self.drain((self._service.config.timeout + _LEASE_MARGIN * 2).total_seconds())
