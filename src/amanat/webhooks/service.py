"""Webhook endpoints and deliveries: the partner's side (register, rotate, inspect,
redeliver, replay) and the worker's side (claim, sign, record, retry, disable).

Sending itself is a port (:class:`WebhookSender`); the worker (webhooks/jobs.py) decides
how many attempts run at once. Every attempt is recorded with its outcome and the
delivery rescheduled in the same transaction (a batch of attempts at a time, see
:meth:`WebhookService.record_many`); a worker that dies mid-attempt, or before its batch
is written, leaves a lease that runs out, and another worker sends again with the same
``webhook-id``.
"""

from __future__ import annotations

import random
import secrets
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from amanat.auth.domain import Caller
from amanat.kernel.clock import Clock
from amanat.kernel.errors import InvalidInput, NotFound
from amanat.kernel.ids import new_id
from amanat.kernel.pagination import Page
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import SYSTEM, Actor
from amanat.platform.db.ports import TransactionFactory
from amanat.platform.protection.service import DataProtectionService
from amanat.webhooks.domain import endpoints as rules
from amanat.webhooks.domain.endpoints import (
    Attempt,
    Delivery,
    DeliveryStatus,
    UrlRefused,
    Verdict,
    WebhookEndpoint,
)
from amanat.webhooks.domain.events import ALL_EVENTS, CATALOGUE
from amanat.webhooks.errors import InvalidWebhookUrl
from amanat.webhooks.events_service import EventService, encode, new_delivery
from amanat.webhooks.ports import DeliveryFilter, EventFilter, WebhooksTx
from amanat.webhooks.signatures import Signer

REPLAY_LIMIT = 10_000
SECRET_COLUMNS = ("secret", "previous_secret")


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int | None
    latency_ms: int
    error_class: str | None = None  # timeout | connect_error | blocked_address | ...
    response_excerpt: str | None = None
    retry_after: timedelta | None = None


class WebhookSender(Protocol):
    async def send(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        deadline_seconds: float,
        allow_private: bool,
    ) -> SendResult: ...


class AddressResolver(Protocol):
    async def resolve(self, host: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    production: bool = False
    timeout: timedelta = timedelta(seconds=10)
    rotation_overlap: timedelta = timedelta(hours=24)
    disable_after: timedelta = timedelta(days=5)
    # Events raised while an endpoint is disabled are held for it this long.
    held_for: timedelta = timedelta(days=30)

    @property
    def lease(self) -> timedelta:
        # Covers the attempt itself plus a wait behind the per-endpoint limit.
        return self.timeout * 2 + timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A claimed delivery, ready to sign: signing happens at send time."""

    delivery: Delivery
    url: str
    body: bytes
    secrets: list[str]
    endpoint_failing: bool = True  # False: a success needs no change to the endpoint


@dataclass(frozen=True, slots=True)
class Finished:
    """An attempt made, waiting to be recorded."""

    delivery: Delivery
    result: SendResult
    started_at: datetime
    endpoint_failing: bool = True  # as :meth:`WebhookService.prepare` saw the endpoint


@dataclass(frozen=True, slots=True)
class Recorded:
    verdict: Verdict
    rescheduled_in: timedelta | None
    disabled: bool
    lease_lost: bool


@dataclass(frozen=True, slots=True)
class ReplayResult:
    endpoint_id: str
    queued: int
    truncated: bool
    resume_from: datetime | None


def _jitter() -> float:
    return random.uniform(0.8, 1.2)


async def _owned_endpoint(
    tx: WebhooksTx, partner_id: str, endpoint_id: str, *, for_update: bool = False
) -> WebhookEndpoint:
    """The partner's endpoint; another partner's is as absent as a missing one."""
    endpoint = await tx.webhooks.get_endpoint(endpoint_id, for_update=for_update)
    if endpoint is None or endpoint.partner_id != partner_id:
        raise NotFound(f"No webhook endpoint '{endpoint_id[:40]}'.")
    return endpoint


def check_events(enabled_events: list[str]) -> tuple[str, ...]:
    if not enabled_events:
        raise InvalidInput("Subscribe to at least one event type (or '*').", reason="empty")
    unknown = [e for e in enabled_events if e != ALL_EVENTS and e not in CATALOGUE]
    if unknown:
        raise InvalidInput(
            f"Unknown event type(s): {', '.join(sorted(set(unknown)))[:200]}.",
            reason="unknown_event_type",
        )
    return tuple(dict.fromkeys(enabled_events))


class WebhookService:
    def __init__(
        self,
        transactions: TransactionFactory[WebhooksTx],
        clock: Clock,
        protection: DataProtectionService,
        events: EventService,
        resolver: AddressResolver,
        config: WebhooksConfig,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._protection = protection
        self._events = events
        self._resolver = resolver
        self.config = config
        # Decrypted once, sent many times: an event goes to every endpoint and is retried,
        # and an endpoint's secrets change only with its version. Bounded, in memory only.
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._secrets: OrderedDict[tuple[str, int], tuple[str, str | None]] = OrderedDict()
        self._signer = Signer()

    # -- endpoints ----------------------------------------------------------------------

    async def _check_url(self, url: str) -> None:
        try:
            rules.check_url(url, production=self.config.production)
        except UrlRefused as exc:
            raise InvalidWebhookUrl(str(exc), reason=exc.reason) from None
        if not self.config.production:
            return
        host = rules.host_of(url)
        try:
            addresses = await self._resolver.resolve(host)
        except OSError:
            raise InvalidWebhookUrl(f"'{host}' does not resolve.", reason="unresolvable") from None
        if not addresses or any(rules.forbidden_address(a) for a in addresses):
            raise InvalidWebhookUrl(
                f"'{host}' resolves to a non-public address.", reason="private_address"
            )

    async def _seal_secret(self, secret: str, endpoint_id: str, column: str) -> str:
        return await self._protection.seal(
            secret, table="webhook_endpoints", column=column, row_id=endpoint_id
        )

    async def _unseal_secret(self, sealed: str, endpoint_id: str, column: str) -> str:
        return await self._protection.unseal(
            sealed, table="webhook_endpoints", column=column, row_id=endpoint_id
        )

    async def create_endpoint(
        self,
        caller: Caller,
        *,
        url: str,
        enabled_events: list[str],
        description: str | None,
    ) -> tuple[WebhookEndpoint, str]:
        """A new endpoint and its secret in clear, which is shown this once."""
        await self._check_url(url)
        subscribed = check_events(enabled_events)
        now = self._clock.now()
        endpoint_id = new_id("webhook_endpoint")
        secret = rules.format_secret(secrets.token_bytes(rules.SECRET_BYTES))
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            partner_id=caller.partner_id,
            url=url,
            description=description,
            enabled_events=subscribed,
            enabled=True,
            disabled_reason=None,
            secret=await self._seal_secret(secret, endpoint_id, "secret"),
            previous_secret=None,
            previous_secret_expires_at=None,
            failing_since=None,
            version=1,
            created_at=now,
            updated_at=now,
        )
        async with self._tx.write() as tx:
            await tx.webhooks.add_endpoint(endpoint)
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "webhook_endpoint.created",
                target_type="webhook_endpoint",
                target_id=endpoint_id,
                payload={"host": rules.host_of(url), "enabled_events": list(subscribed)},
            )
        return endpoint, secret

    async def get_endpoint(self, partner_id: str, endpoint_id: str) -> WebhookEndpoint:
        async with self._tx.read() as tx:
            return await _owned_endpoint(tx, partner_id, endpoint_id)

    async def list_endpoints(
        self, partner_id: str, *, limit: int, before: tuple[datetime, str] | None
    ) -> Page[WebhookEndpoint]:
        async with self._tx.read() as tx:
            return await tx.webhooks.list_endpoints(partner_id, limit=limit, before=before)

    async def update_endpoint(
        self,
        caller: Caller,
        endpoint_id: str,
        *,
        url: str | None = None,
        enabled_events: list[str] | None = None,
        description: str | None = None,
        clear_description: bool = False,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        if url is not None:
            await self._check_url(url)
        subscribed = check_events(enabled_events) if enabled_events is not None else None
        async with self._tx.write() as tx:
            current = await _owned_endpoint(tx, caller.partner_id, endpoint_id, for_update=True)
            changed = replace(
                current,
                url=url if url is not None else current.url,
                enabled_events=subscribed if subscribed is not None else current.enabled_events,
                description=None if clear_description else (description or current.description),
            )
            if enabled is True and not current.enabled:
                changed = replace(changed, enabled=True, disabled_reason=None, failing_since=None)
            elif enabled is False and current.enabled:
                changed = replace(changed, enabled=False, disabled_reason="disabled by you")
            if changed == current:
                # Nothing to change (an empty PATCH, or the values it already has): the
                # version stays, so a receiver keeping the highest version loses nothing.
                return current
            now = self._clock.now()
            changed = replace(changed, version=current.version + 1, updated_at=now)
            await tx.webhooks.save_endpoint(changed)
            dropped = 0
            if changed.enabled and not current.enabled:
                # Held events wait for the endpoint (oldest first), within the window.
                dropped = await tx.webhooks.drop_held(
                    endpoint_id, older_than=now - self.config.held_for, at=now
                )
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "webhook_endpoint.updated",
                target_type="webhook_endpoint",
                target_id=endpoint_id,
                payload={
                    "host": rules.host_of(changed.url),
                    "enabled": changed.enabled,
                    "enabled_events": list(changed.enabled_events),
                    "held_deliveries_dropped": dropped,
                },
            )
        return changed

    async def delete_endpoint(self, caller: Caller, endpoint_id: str) -> None:
        async with self._tx.write() as tx:
            await _owned_endpoint(tx, caller.partner_id, endpoint_id, for_update=True)
            await tx.webhooks.delete_endpoint(endpoint_id, self._clock.now())
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "webhook_endpoint.deleted",
                target_type="webhook_endpoint",
                target_id=endpoint_id,
            )

    async def rotate_secret(
        self, caller: Caller, endpoint_id: str, *, overlap: timedelta | None = None
    ) -> tuple[WebhookEndpoint, str]:
        """A new secret; the old one keeps signing too for ``overlap`` (default 24 h)."""
        overlap = self.config.rotation_overlap if overlap is None else overlap
        now = self._clock.now()
        secret = rules.format_secret(secrets.token_bytes(rules.SECRET_BYTES))
        async with self._tx.write() as tx:
            current = await _owned_endpoint(tx, caller.partner_id, endpoint_id, for_update=True)
            old = await self._unseal_secret(current.secret, endpoint_id, "secret")
            keep_old = overlap > timedelta(0)
            rotated = replace(
                current,
                secret=await self._protection.seal_within(
                    tx, secret, table="webhook_endpoints", column="secret", row_id=endpoint_id
                ),
                previous_secret=await self._protection.seal_within(
                    tx,
                    old,
                    table="webhook_endpoints",
                    column="previous_secret",
                    row_id=endpoint_id,
                )
                if keep_old
                else None,
                previous_secret_expires_at=now + overlap if keep_old else None,
                version=current.version + 1,
                updated_at=now,
            )
            await tx.webhooks.save_endpoint(rotated)
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "webhook_endpoint.secret_rotated",
                target_type="webhook_endpoint",
                target_id=endpoint_id,
                payload={"overlap_seconds": int(overlap.total_seconds())},
            )
        return rotated, secret

    async def signing_secrets(self, endpoint: WebhookEndpoint) -> list[str]:
        cache_key = (endpoint.id, endpoint.version)
        known = self._secrets.get(cache_key)
        if known is None:
            current = await self._unseal_secret(endpoint.secret, endpoint.id, "secret")
            previous = (
                await self._unseal_secret(endpoint.previous_secret, endpoint.id, "previous_secret")
                if endpoint.previous_secret
                else None
            )
            known = _remember(self._secrets, cache_key, (current, previous))
        current, previous = known
        if previous is not None and endpoint.signs_with_previous(self._clock.now()):
            return [current, previous]
        return [current]

    # -- inspecting and re-sending ------------------------------------------------------

    async def deliveries(
        self,
        partner_id: str,
        endpoint_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        where: DeliveryFilter,
    ) -> tuple[Page[Delivery], dict[str, list[Attempt]]]:
        await self.get_endpoint(partner_id, endpoint_id)
        async with self._tx.read() as tx:
            page = await tx.webhooks.list_deliveries(
                endpoint_id, limit=limit, before=before, where=where
            )
            attempts = await tx.webhooks.attempts([d.id for d in page.items])
        return page, attempts

    async def redeliver(
        self, caller: Caller, event_id: str, *, endpoint_id: str | None
    ) -> list[Delivery]:
        """Send an event again (same ``webhook-id``), to one endpoint or to every enabled
        endpoint that subscribes to its type."""
        now = self._clock.now()
        async with self._tx.write() as tx:
            event = await tx.events.get(event_id)
            if event is None or event.partner_id != caller.partner_id:
                raise NotFound(f"No event '{event_id[:40]}'.")
            if endpoint_id is not None:
                endpoint = await _owned_endpoint(tx, caller.partner_id, endpoint_id)
                targets = [endpoint]
            else:
                targets = await tx.webhooks.subscribed(caller.partner_id, event.type)
            created = [new_delivery(event, t.id, "redeliver", now) for t in targets]
            await tx.webhooks.add_deliveries(created)
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "event.redelivered",
                target_type="event",
                target_id=event_id,
                payload={"endpoints": [t.id for t in targets]},
            )
        return created

    async def redeliver_for_operator(self, actor: Actor, event_id: str) -> list[Delivery]:
        """An operator sends an event again to every enabled endpoint of its partner that
        subscribes to its type (a partner says it never arrived, their server is fixed)."""
        async with self._tx.read() as tx:
            event = await tx.events.get(event_id)
        if event is None:
            raise NotFound(f"No event '{event_id[:40]}'.")
        caller = Caller(event.partner_id, None, actor)
        return await self.redeliver(caller, event_id, endpoint_id=None)

    async def drop_expired_held(self) -> int:
        """Fail deliveries held longer than the window for endpoints still disabled (a
        periodic job): re-enabling drops them too, but an endpoint may never be."""
        now = self._clock.now()
        async with self._tx.write() as tx:
            return await tx.webhooks.drop_held_of_disabled(now - self.config.held_for, now)

    async def replay(
        self, caller: Caller, endpoint_id: str, *, since: datetime, until: datetime | None
    ) -> ReplayResult:
        """Queue every event since ``since`` (up to ``until``) that the endpoint subscribes
        to, oldest first, at most REPLAY_LIMIT per call."""
        now = self._clock.now()
        async with self._tx.write() as tx:
            endpoint = await _owned_endpoint(tx, caller.partner_id, endpoint_id)
            types = None if ALL_EVENTS in endpoint.enabled_events else list(endpoint.enabled_events)
            found = await tx.events.oldest_first(
                caller.partner_id,
                where=EventFilter(types=types, created_gte=since, created_lt=until),
                limit=REPLAY_LIMIT + 1,
            )
            truncated = len(found) > REPLAY_LIMIT
            found = found[:REPLAY_LIMIT]
            await tx.webhooks.add_deliveries(
                [new_delivery(event, endpoint_id, "replay", now) for event in found]
            )
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "webhook_endpoint.replayed",
                target_type="webhook_endpoint",
                target_id=endpoint_id,
                payload={"since": since.isoformat(), "events": len(found)},
            )
        return ReplayResult(
            endpoint_id=endpoint_id,
            queued=len(found),
            truncated=truncated,
            resume_from=found[-1].created_at if truncated and found else None,
        )

    # -- the worker's side --------------------------------------------------------------

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        per_endpoint: int,
        exclude_endpoints: set[str],
        look_first: bool = True,
    ) -> list[Delivery]:
        """Lease a batch of due deliveries to ``owner`` (one statement)."""
        now = self._clock.now()
        # A read first: an idle worker polls often, and on SQLite a claim takes the one
        # write lock that API requests wait for. A busy worker (``look_first`` False)
        # claims straight away.
        if look_first:
            async with self._tx.lookup() as tx:
                if not await tx.webhooks.any_due(now):
                    return []
        async with self._tx.write() as tx:
            return await tx.webhooks.claim(
                owner,
                now=now,
                lease_until=now + self.config.lease,
                limit=limit,
                per_endpoint=per_endpoint,
                exclude_endpoints=exclude_endpoints,
            )

    async def prepare(self, delivery: Delivery, owner: str) -> Outgoing | None:
        """What to send, or None when the endpoint went away (disabled deliveries wait,
        deleted ones were already failed)."""
        ready = await self.prepare_many([delivery], owner)
        return ready[0] if ready else None

    async def prepare_many(self, deliveries: list[Delivery], owner: str) -> list[Outgoing]:
        """:meth:`prepare` for a claimed batch, in its order: one read of the endpoints,
        one of the events not already decrypted, one release of what cannot be sent."""
        if not deliveries:
            return []
        endpoint_ids = list(dict.fromkeys(d.endpoint_id for d in deliveries))
        missing = list(
            dict.fromkeys(d.event_id for d in deliveries if d.event_id not in self._bodies)
        )
        async with self._tx.lookup() as tx:
            endpoints = await tx.webhooks.endpoints(endpoint_ids)
            stored = await tx.events.get_many(missing)
        bodies = {
            event_id: self._bodies[event_id]
            for event_id in self._bodies.keys() & {d.event_id for d in deliveries}
        }
        for event in stored:
            opened = await self._events.open(event)
            bodies[event.id] = _remember(self._bodies, event.id, encode(opened.envelope()))
        ready: list[Outgoing] = []
        unsendable: list[str] = []
        for delivery in deliveries:
            endpoint = endpoints.get(delivery.endpoint_id)
            body = bodies.get(delivery.event_id)
            if endpoint is None or body is None or not endpoint.enabled:
                unsendable.append(delivery.id)
                continue
            ready.append(
                Outgoing(
                    delivery=delivery,
                    url=endpoint.url,
                    body=body,
                    secrets=await self.signing_secrets(endpoint),
                    endpoint_failing=endpoint.failing_since is not None,
                )
            )
        if unsendable:
            await self.release(unsendable, owner)
        return ready

    async def release(self, delivery_ids: list[str], owner: str) -> None:
        """Give back claimed deliveries that were not sent (the worker is stopping, or the
        lease would run out before an attempt could finish): due again at once, for any
        worker, their attempts unchanged."""
        async with self._tx.write() as tx:
            await tx.webhooks.release_many(delivery_ids, owner)

    def headers(self, outgoing: Outgoing) -> dict[str, str]:
        """Signed at send time: receivers allow only minutes of clock skew."""
        timestamp = int(self._clock.now().timestamp())
        webhook_id = outgoing.delivery.event_id
        return {
            "content-type": "application/json",
            "user-agent": "amanat-webhooks/1",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self._signer.header(
                outgoing.secrets, webhook_id, timestamp, outgoing.body
            ),
        }

    async def record(
        self,
        delivery: Delivery,
        result: SendResult,
        *,
        owner: str,
        started_at: datetime,
        endpoint_failing: bool = True,
    ) -> Recorded:
        """:meth:`record_many` of one attempt."""
        [recorded] = await self.record_many(
            [Finished(delivery, result, started_at, endpoint_failing)], owner=owner
        )
        return recorded

    def _settled(
        self, finished: Finished, now: datetime
    ) -> tuple[Delivery, Attempt, Verdict, timedelta | None]:
        delivery, result = finished.delivery, finished.result
        verdict = rules.verdict(result.status_code)
        attempt_no = delivery.attempts + 1
        delay: timedelta | None = None
        if verdict is Verdict.DELIVERED:
            status = DeliveryStatus.SUCCEEDED
        elif verdict is Verdict.GONE:
            status = DeliveryStatus.FAILED
        else:
            retry_after = (
                result.retry_after if rules.honours_retry_after(result.status_code) else None
            )
            delay = rules.next_attempt_delay(attempt_no, jitter=_jitter(), retry_after=retry_after)
            status = DeliveryStatus.PENDING if delay is not None else DeliveryStatus.FAILED
        error = None
        if verdict is not Verdict.DELIVERED:
            error = result.error_class or f"http_{result.status_code}"
        settled = replace(
            delivery,
            status=status,
            attempts=attempt_no,
            next_attempt_at=now + delay if delay is not None else None,
            last_status_code=result.status_code,
            last_error=error,
            first_attempt_at=delivery.first_attempt_at or finished.started_at,
            updated_at=now,
        )
        attempt = Attempt(
            delivery_id=delivery.id,
            attempt=attempt_no,
            started_at=finished.started_at,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error_class=result.error_class,
            response_excerpt=result.response_excerpt,
        )
        return settled, attempt, verdict, delay

    async def record_many(self, finished: list[Finished], *, owner: str) -> list[Recorded]:
        """Record a batch of attempts in one transaction and reschedule, fail or finish
        each delivery (one INSERT of the attempts, one UPDATE of the deliveries). A
        delivery another worker took over meanwhile (its lease ran out) keeps its state;
        only the attempt is recorded.

        The endpoints' health is tracked under their row locks, taken first and in id
        order (one order for every worker, so two batches cannot deadlock); a success at
        a healthy endpoint (``endpoint_failing`` False) needs no lock."""
        if not finished:
            return []
        now = self._clock.now()
        made = [self._settled(f, now) for f in finished]
        watched = sorted(
            {
                f.delivery.endpoint_id
                for f, (_, _, verdict, _) in zip(finished, made, strict=True)
                if verdict is not Verdict.DELIVERED or f.endpoint_failing
            }
        )
        disabled_by: set[str] = set()
        async with self._tx.write() as tx:
            health: dict[str, WebhookEndpoint | None] = {}
            for endpoint_id in watched:
                health[endpoint_id] = await tx.webhooks.get_endpoint(endpoint_id, for_update=True)
            kept = await tx.webhooks.settle_many(
                [(settled, attempt) for settled, attempt, _, _ in made], owner
            )
            for f, (_, _, verdict, _) in zip(finished, made, strict=True):
                endpoint = health.get(f.delivery.endpoint_id)
                if endpoint is None or not endpoint.enabled:
                    continue
                endpoint, disabled = await self._track_health(tx, endpoint, verdict, now)
                health[f.delivery.endpoint_id] = endpoint
                if disabled:
                    disabled_by.add(f.delivery.id)
        return [
            Recorded(
                verdict=verdict,
                rescheduled_in=delay,
                disabled=f.delivery.id in disabled_by,
                lease_lost=f.delivery.id not in kept,
            )
            for f, (_, _, verdict, delay) in zip(finished, made, strict=True)
        ]

    async def _track_health(
        self, transaction: WebhooksTx, endpoint: WebhookEndpoint, verdict: Verdict, now: datetime
    ) -> tuple[WebhookEndpoint, bool]:
        """Keep the failure streak; disable on 410 or after ``disable_after`` of failures.
        Returns the endpoint as it is now, and True when this attempt disabled it."""
        if verdict is Verdict.DELIVERED:
            if endpoint.failing_since is not None:
                endpoint = replace(endpoint, failing_since=None)
                await transaction.webhooks.save_endpoint(endpoint)
            return endpoint, False
        streak_start = endpoint.failing_since or now
        reason = None
        if verdict is Verdict.GONE:
            reason = "the endpoint answered 410 Gone"
        elif rules.should_disable(streak_start, now, self.config.disable_after):
            days = self.config.disable_after.total_seconds() / 86_400
            reason = f"every delivery failed for {days:g} days"
        if reason is None:
            if endpoint.failing_since is None:
                endpoint = replace(endpoint, failing_since=now)
                await transaction.webhooks.save_endpoint(endpoint)
            return endpoint, False
        disabled = replace(
            endpoint,
            enabled=False,
            disabled_reason=reason,
            failing_since=streak_start,
            version=endpoint.version + 1,
            updated_at=now,
        )
        await transaction.webhooks.save_endpoint(disabled)
        await self._events.endpoint_disabled(transaction, disabled)
        await audit.record(
            transaction,
            self._clock,
            SYSTEM,
            "webhook_endpoint.disabled",
            target_type="webhook_endpoint",
            target_id=endpoint.id,
            payload={"reason": reason},
        )
        return disabled, True

    async def pending(self) -> int:
        async with self._tx.read() as tx:
            return await tx.webhooks.pending_count()


_CACHE_SIZE = 4096
_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(cache: OrderedDict[_K, _V], key: _K, value: _V) -> _V:
    cache[key] = value
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value
