"""The webhook deliverer: claims due deliveries and runs their attempts concurrently.

* At most ``concurrency`` attempts are in flight in one worker process, and at most
  ``per_endpoint`` to any one endpoint, so a slow endpoint fills its own slots and
  nobody else's; the claim takes the first due delivery of every endpoint before the
  second of any.
* Claims are leases (``WebhooksConfig.lease``). A worker killed mid-attempt loses
  nothing: once the lease runs out another worker claims the delivery and sends it again
  with the same ``webhook-id`` (at-least-once; receivers de-duplicate by that id).
* Several workers claim with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so no attempt is
  made twice at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import defaultdict
from typing import Any

import structlog

from amanat.kernel.clock import Clock
from amanat.platform.observability.metrics import (
    WEBHOOK_ATTEMPTS,
    WEBHOOK_ENDPOINTS_DISABLED,
    WEBHOOK_LAG,
    WEBHOOK_LATENCY,
    WEBHOOK_PENDING,
)
from amanat.webhooks.domain.endpoints import Delivery
from amanat.webhooks.events_service import HELD
from amanat.webhooks.service import WebhookSender, WebhookService

log = structlog.get_logger("amanat.webhooks")


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
    ) -> None:
        self._service = service
        self._sender = sender
        self._clock = clock
        self._allow_private = allow_private
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:webhooks"
        self._claimed: dict[str, int] = defaultdict(int)
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._held_in_order: dict[str, asyncio.Lock] = {}

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run_once(self) -> int:
        """Claim what fits and start it; returns how many deliveries were claimed."""
        free = self._concurrency - len(self._tasks)
        if free <= 0:
            return 0
        saturated = {e for e, n in self._claimed.items() if n >= self._per_endpoint}
        claimed = await self._service.claim(
            self._owner,
            limit=free,
            per_endpoint=self._per_endpoint,
            exclude_endpoints=saturated,
        )
        for delivery in claimed:
            self._claimed[delivery.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

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

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            if delivery.trigger == HELD:
                # An endpoint's held backlog goes out one at a time in the order it was
                # claimed (oldest first): the lock wakes its waiters first come, first served,
                # and tasks start in the order they were created.
                async with self._in_order(delivery.endpoint_id), self._gate(delivery.endpoint_id):
                    await self._attempt(delivery)
            else:
                async with self._gate(delivery.endpoint_id):
                    await self._attempt(delivery)
        except Exception:
            # The lease runs out and another claim retries; nothing is lost.
            log.exception("webhook_attempt_crashed", delivery_id=delivery.id)
        finally:
            self._claimed[delivery.endpoint_id] -= 1
            if self._claimed[delivery.endpoint_id] <= 0:
                self._claimed.pop(delivery.endpoint_id, None)
                self._gates.pop(delivery.endpoint_id, None)
                self._held_in_order.pop(delivery.endpoint_id, None)

    async def _attempt(self, delivery: Delivery) -> None:
        outgoing = await self._service.prepare(delivery, self._owner)
        if outgoing is None:
            return
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
        recorded = await self._service.record(
            delivery,
            result,
            owner=self._owner,
            started_at=started_at,
            endpoint_failing=outgoing.endpoint_failing,
        )
        WEBHOOK_LATENCY.observe(result.latency_ms / 1000)
        WEBHOOK_ATTEMPTS.labels(recorded.verdict.value, result.error_class or "").inc()
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

    async def drain(self, wait_seconds: float | None = None) -> None:
        """Wait for attempts in flight (tests, and a graceful stop)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=wait_seconds)

    async def run_forever(self, stop: asyncio.Event, *, idle_seconds: float = 0.2) -> None:
        log.info("webhook_deliverer_started", owner=self._owner)
        ticks = 0
        while not stop.is_set():
            try:
                claimed = await self.run_once()
                ticks += 1
                if ticks % 50 == 0:
                    WEBHOOK_PENDING.set(await self._service.pending())
            except Exception:
                log.exception("webhook_claim_failed")
                claimed = 0
            if claimed and len(self._tasks) < self._concurrency:
                continue  # more may be due: claim again at once
            stopping = asyncio.ensure_future(stop.wait())
            waiters: set[asyncio.Future[Any]] = {stopping, *self._tasks}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(
                    waiters, timeout=idle_seconds, return_when=asyncio.FIRST_COMPLETED
                )
            stopping.cancel()
        await self.drain(self._service.config.timeout.total_seconds())
