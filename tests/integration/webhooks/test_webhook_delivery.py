"""Webhook delivery end to end in one process: the real services, database, deliverer and
HttpWebhookSender, posting to a real HTTP receiver on 127.0.0.1.

Signatures are checked with the ``standardwebhooks`` package itself, which reads the wall
clock, so the test clock starts at the real time and only travels where a test says so.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import structlog
from standardwebhooks import Webhook, WebhookVerificationError
from tests.support.oauth import ACTOR
from tests.support.webhook_receiver import Received, Receiver, Reply, running, tls_files

from amanat.auth.domain import Caller
from amanat.auth.domain import Caller as PaymentCaller
from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.kernel.errors import Unavailable
from amanat.payments.service import AccountIn
from amanat.platform.audit.tables import audit_log
from amanat.platform.observability.metrics import WEBHOOK_ENDPOINTS_DISABLED
from amanat.webhooks.adapters.transport import EndpointPools, HttpWebhookSender
from amanat.webhooks.domain.endpoints import Attempt, Delivery, DeliveryStatus, WebhookEndpoint
from amanat.webhooks.jobs import WebhookDeliverer
from amanat.webhooks.ports import DeliveryFilter, EventFilter
from amanat.webhooks.service import WebhookSender
from amanat.webhooks.tables import webhook_deliveries
from amanat.webhooks.wiring import DeliveryHttp

IBAN = "PK36SCBL0000001123456702"


class Resolver:
    """A DNS stand-in: names map to the addresses a test chooses."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


@dataclass
class Hooks:
    container: Container
    clock: FrozenClock
    partner_id: str
    caller: Caller

    async def endpoint(
        self, url: str, events: list[str] | None = None
    ) -> tuple[WebhookEndpoint, str]:
        return await self.container.webhooks.create_endpoint(
            self.caller, url=url, enabled_events=events or ["*"], description="test"
        )

    async def emit(self, type: str = "payment.succeeded", *, version: int = 1) -> str:
        data = {"id": "pay_test", "object": "payment", "status": "x", "version": version}
        async with self.container.transactions.write() as tx:
            event = await self.container.events.emit(
                tx,
                partner_id=self.partner_id,
                type=type,
                object_id="pay_test",
                version=version,
                data=data,
            )
        return event.id

    def deliverer(
        self,
        sender: WebhookSender | None = None,
        *,
        allow_private: bool = True,
        concurrency: int = 64,
        per_endpoint: int = 8,
        owner: str = "test-deliverer",
    ) -> WebhookDeliverer:
        return WebhookDeliverer(
            self.container.webhooks,
            sender or self.container.webhook_sender,
            self.clock,
            allow_private=allow_private,
            concurrency=concurrency,
            per_endpoint=per_endpoint,
            owner=owner,
        )

    async def deliveries(self, endpoint_id: str) -> list[tuple[Delivery, list[Attempt]]]:
        page, attempts = await self.container.webhooks.deliveries(
            self.partner_id, endpoint_id, limit=100, before=None, where=DeliveryFilter()
        )
        return [(d, attempts[d.id]) for d in page.items]

    async def only_delivery(self, endpoint_id: str) -> tuple[Delivery, list[Attempt]]:
        [found] = await self.deliveries(endpoint_id)
        return found

    async def events(self, type: str) -> list[dict[str, Any]]:
        page = await self.container.events.list(
            self.partner_id, limit=50, before=None, where=EventFilter(types=[type])
        )
        return [event.envelope() for event in page.items]

    async def set_timeout(self, seconds: float) -> None:
        service = self.container.webhooks
        service.config = replace(service.config, timeout=timedelta(seconds=seconds))


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Polls ``condition`` for up to ``seconds`` (a bound on a hang on a slow machine,
    not a timing assertion); whether it came true."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def deliver(deliverer: WebhookDeliverer) -> int:
    claimed = await deliverer.run_once()
    await deliverer.drain(30)
    assert deliverer.in_flight == 0
    return claimed


@pytest.fixture
async def hooks(container: Container, clock: FrozenClock) -> Hooks:
    clock.set(datetime.now(UTC))  # standardwebhooks checks the timestamp against real time
    partner = await container.partners.create_partner(
        ACTOR, name="Hooks shop", roles=["merchant"], mode="sandbox"
    )
    return Hooks(container, clock, partner.id, Caller(partner.id, None, ACTOR))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running() as server:
        yield server


def verified(received: Received, secret: str) -> dict[str, Any]:
    """The body, verified by the reference library exactly as a receiver would."""
    body: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return body


# -- the happy path ---------------------------------------------------------------------


async def test_a_payout_reaches_the_receiver_signed_and_versioned(
    hooks: Hooks, receiver: Receiver
) -> None:
    container = hooks.container
    pay = PaymentCaller(hooks.partner_id, None, ACTOR)
    await container.payments.top_up(pay, 10_000_000)
    endpoint, secret = await hooks.endpoint(
        receiver.url, ["payment.processing", "payment.succeeded"]
    )
    payment = await container.payments.create_payout(
        pay,
        amount=150_000,
        currency="PKR",
        creditor=AccountIn(iban=IBAN, raast_id=None, name="Ayesha Khan"),
        reference="INV-1",
        description="first payout",
        metadata={"order": "42"},
    )
    for sequence, status in enumerate(("accepted", "settled"), start=1):
        await container.payments.apply_rail_status(
            payment.id, status, sequence=sequence, cause="test"
        )

    assert await deliver(hooks.deliverer()) == 2
    got = receiver.received()
    assert len(got) == 2
    by_type: dict[str, dict[str, Any]] = {}
    for request in got:
        assert request.method == "POST" and request.path == "/hooks"
        assert request.headers["content-type"] == "application/json"
        body = verified(request, secret)
        assert request.webhook_id == body["id"]
        assert body["object"] == "event"
        by_type[body["type"]] = body
    assert set(by_type) == {"payment.processing", "payment.succeeded"}
    processing = by_type["payment.processing"]["data"]["object"]
    succeeded = by_type["payment.succeeded"]["data"]["object"]
    assert (processing["id"], processing["status"], processing["version"]) == (
        payment.id,
        "processing",
        2,
    )
    assert (succeeded["status"], succeeded["version"]) == ("succeeded", 3)
    assert succeeded["description"] == "first payout"  # unsealed for the receiver
    assert succeeded["metadata"] == {"order": "42"}
    # The top-up before the endpoint existed went nowhere; the log still has it.
    assert len(await hooks.events("balance.topped_up")) == 1
    # Each delivery is final, with one attempt on record.
    for delivery, attempts in await hooks.deliveries(endpoint.id):
        assert delivery.status is DeliveryStatus.SUCCEEDED
        assert [a.status_code for a in attempts] == [200]
        assert delivery.event_id in {r.webhook_id for r in got}
    assert await deliver(hooks.deliverer()) == 0, "nothing is sent twice"


async def test_metadata_no_utf8_can_hold_never_blocks_a_payment(
    hooks: Hooks, receiver: Receiver
) -> None:
    """JSON like "\\udc00" parses to a lone surrogate, which the payment keeps but UTF-8
    cannot encode: its events are still written, and still valid JSON."""
    container = hooks.container
    pay = PaymentCaller(hooks.partner_id, None, ACTOR)
    await container.payments.top_up(pay, 1_000_000)
    _, secret = await hooks.endpoint(receiver.url, ["payment.processing"])
    metadata = json.loads('{"note": "a\\udc00b", "shop": "\u0686\u0627\u0626\u06d2"}')
    payment = await container.payments.create_payout(
        pay,
        amount=10_000,
        currency="PKR",
        creditor=AccountIn(iban=IBAN, raast_id=None, name="Ayesha Khan"),
        reference=None,
        description=None,
        metadata=metadata,
    )
    outcome = await container.payments.apply_rail_status(
        payment.id, "accepted", sequence=1, cause="test"
    )
    assert outcome == "pending -> processing"
    await deliver(hooks.deliverer())
    [request] = receiver.received()
    assert verified(request, secret)["data"]["object"]["metadata"] == metadata


async def test_an_endpoint_receives_only_what_it_subscribed_to(
    hooks: Hooks, receiver: Receiver
) -> None:
    await hooks.endpoint(receiver.url, ["payment.failed"])
    await hooks.emit("payment.succeeded")
    wanted = await hooks.emit("payment.failed")
    await deliver(hooks.deliverer())
    assert [r.webhook_id for r in receiver.received()] == [wanted]


# -- failures and retries ---------------------------------------------------------------


async def test_a_500_is_retried_after_about_five_seconds(hooks: Hooks, receiver: Receiver) -> None:
    receiver.respond = lambda _: Reply(500, body=b"upstream down")
    endpoint, secret = await hooks.endpoint(receiver.url)
    event_id = await hooks.emit()
    await deliver(hooks.deliverer())

    delivery, attempts = await hooks.only_delivery(endpoint.id)
    assert delivery.status is DeliveryStatus.PENDING
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        1,
        500,
        "http_500",
    )
    assert [(a.attempt, a.status_code, a.response_excerpt) for a in attempts] == [
        (1, 500, "upstream down")
    ]
    assert delivery.next_attempt_at is not None
    wait = delivery.next_attempt_at - hooks.clock.now()
    assert timedelta(seconds=4) <= wait <= timedelta(seconds=6)

    assert await deliver(hooks.deliverer()) == 0, "not due yet"
    hooks.clock.advance(seconds=6)
    receiver.respond = lambda _: Reply(204)
    assert await deliver(hooks.deliverer()) == 1
    delivery, attempts = await hooks.only_delivery(endpoint.id)
    assert delivery.status is DeliveryStatus.SUCCEEDED
    assert delivery.next_attempt_at is None
    assert [a.status_code for a in attempts] == [500, 204]
    # Same webhook-id both times: the receiver de-duplicates by it.
    assert [r.webhook_id for r in receiver.received()] == [event_id, event_id]
    for request in receiver.received():
        verified(request, secret)
    endpoint_now = await hooks.container.webhooks.get_endpoint(hooks.partner_id, endpoint.id)
    assert endpoint_now.failing_since is None, "a success ends the streak"


async def test_the_schedule_runs_out_and_the_delivery_fails(
    hooks: Hooks, receiver: Receiver
) -> None:
    receiver.respond = lambda _: Reply(503)
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    # Keep the endpoint alive through the whole schedule (about three days).
    service = hooks.container.webhooks
    service.config = replace(service.config, disable_after=timedelta(days=30))
    for _ in range(20):
        await deliver(hooks.deliverer())
        delivery, _ = await hooks.only_delivery(endpoint.id)
        if delivery.status is not DeliveryStatus.PENDING:
            break
        assert delivery.next_attempt_at is not None
        hooks.clock.set(delivery.next_attempt_at)
    delivery, attempts = await hooks.only_delivery(endpoint.id)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == len(attempts) == 10
    assert delivery.next_attempt_at is None
    assert delivery.first_attempt_at is not None
    assert attempts[-1].started_at - delivery.first_attempt_at >= timedelta(hours=24)
    assert await deliver(hooks.deliverer()) == 0


async def test_a_410_disables_the_endpoint_and_tells_everyone(
    hooks: Hooks, receiver: Receiver
) -> None:
    receiver.respond = lambda r: Reply(410) if r.path == "/hooks" else Reply(200)
    gone, _ = await hooks.endpoint(receiver.url, ["payment.succeeded"])
    watcher, watcher_secret = await hooks.endpoint(
        receiver.url_for("127.0.0.1", "/watch"), ["webhook_endpoint.disabled"]
    )
    await hooks.emit()
    await hooks.emit()  # a second delivery that must wait, not fail
    alerts_before = WEBHOOK_ENDPOINTS_DISABLED._value.get()

    deliverer = hooks.deliverer()
    with structlog.testing.capture_logs() as logs:
        await deliver(deliverer)

    now = await hooks.container.webhooks.get_endpoint(hooks.partner_id, gone.id)
    assert not now.enabled
    assert now.disabled_reason is not None and "410" in now.disabled_reason
    statuses = sorted(d.status.value for d, _ in await hooks.deliveries(gone.id))
    # Both may have been in flight together; at least the 410 one failed, none succeeded.
    assert "failed" in statuses and "succeeded" not in statuses

    [event] = await hooks.events("webhook_endpoint.disabled")
    assert event["data"]["object"]["id"] == gone.id
    assert event["data"]["object"]["enabled"] is False
    assert "secret" not in json.dumps(event["data"]["object"]).replace("secret_rotation", "")
    await hooks.container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with hooks.container.db.read() as conn:
        audited = (
            await conn.execute(
                sa.select(audit_log.c.actor_type).where(
                    audit_log.c.action == "webhook_endpoint.disabled",
                    audit_log.c.target_id == gone.id,
                )
            )
        ).all()
    assert [row.actor_type for row in audited] == ["system"]
    alerts = [entry for entry in logs if entry["event"] == "operator_alert"]
    assert [a["endpoint_id"] for a in alerts] == [gone.id]
    assert WEBHOOK_ENDPOINTS_DISABLED._value.get() == alerts_before + 1

    # The watcher hears about it, signed like any other event.
    await deliver(deliverer)
    [told] = [r for r in receiver.received() if r.path == "/watch"]
    assert verified(told, watcher_secret)["type"] == "webhook_endpoint.disabled"
    assert (await hooks.only_delivery(watcher.id))[0].status is DeliveryStatus.SUCCEEDED

    # Nothing more goes to the disabled endpoint, however long we wait.
    gone_calls = len([r for r in receiver.received() if r.path == "/hooks"])
    hooks.clock.advance(hours=1)
    await deliver(deliverer)
    assert len([r for r in receiver.received() if r.path == "/hooks"]) == gone_calls


async def test_a_long_failure_streak_disables_the_endpoint(
    hooks: Hooks, receiver: Receiver
) -> None:
    receiver.respond = lambda _: Reply(500)
    endpoint, _ = await hooks.endpoint(receiver.url)
    disable_after = hooks.container.webhooks.config.disable_after
    assert disable_after == timedelta(days=5)
    await hooks.emit()
    await deliver(hooks.deliverer())
    first = await hooks.container.webhooks.get_endpoint(hooks.partner_id, endpoint.id)
    assert first.enabled and first.failing_since == hooks.clock.now()

    hooks.clock.advance(days=4)  # a long streak, but not long enough
    await deliver(hooks.deliverer())
    still = await hooks.container.webhooks.get_endpoint(hooks.partner_id, endpoint.id)
    assert still.enabled and still.failing_since == first.failing_since

    hooks.clock.advance(days=1, seconds=1)
    await deliver(hooks.deliverer())
    now = await hooks.container.webhooks.get_endpoint(hooks.partner_id, endpoint.id)
    assert not now.enabled
    assert now.disabled_reason == "every delivery failed for 5 days"
    held = {d.event_type: (d, a) for d, a in await hooks.deliveries(endpoint.id)}
    delivery, attempts = held["payment.succeeded"]
    assert len(attempts) == 3
    assert delivery.status is DeliveryStatus.PENDING, "it waits for the endpoint to return"
    assert len(await hooks.events("webhook_endpoint.disabled")) == 1
    # It subscribes to everything, so the news of its own disabling is held for it too.
    assert held["webhook_endpoint.disabled"][0].status is DeliveryStatus.PENDING

    # Re-enabled: the streak starts over and the waiting delivery resumes.
    receiver.respond = lambda _: Reply(200)
    enabled = await hooks.container.webhooks.update_endpoint(
        hooks.caller, endpoint.id, enabled=True
    )
    assert enabled.enabled and enabled.failing_since is None and enabled.disabled_reason is None
    hooks.clock.advance(hours=1)
    await deliver(hooks.deliverer())
    statuses = [d.status for d, _ in await hooks.deliveries(endpoint.id)]
    assert statuses == [DeliveryStatus.SUCCEEDED] * 2


async def test_a_success_in_between_resets_the_streak(hooks: Hooks, receiver: Receiver) -> None:
    receiver.respond = lambda _: Reply(500)
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    await deliver(hooks.deliverer())
    hooks.clock.advance(days=3)
    receiver.respond = lambda _: Reply(200)
    await deliver(hooks.deliverer())
    receiver.respond = lambda _: Reply(500)
    hooks.clock.advance(days=3)
    await hooks.emit()
    await deliver(hooks.deliverer())
    now = await hooks.container.webhooks.get_endpoint(hooks.partner_id, endpoint.id)
    assert now.enabled, "six days since the first failure, but not six days of failures"
    assert now.failing_since == hooks.clock.now()


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "120", timedelta(seconds=120)),
        (503, "3600", timedelta(hours=1)),
        (429, "99999999999999999999999", timedelta(hours=24)),  # capped
    ],
)
async def test_retry_after_is_honoured(
    hooks: Hooks, receiver: Receiver, status: int, retry_after: str, expected: timedelta
) -> None:
    receiver.respond = lambda _: Reply(status, headers={"retry-after": retry_after})
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    await deliver(hooks.deliverer())
    delivery, attempts = await hooks.only_delivery(endpoint.id)
    assert [a.status_code for a in attempts] == [status]
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.next_attempt_at == hooks.clock.now() + expected
    hooks.clock.advance(seconds=expected.total_seconds() - 1)
    assert await deliver(hooks.deliverer()) == 0, "not before the receiver asked"


async def test_retry_after_as_an_http_date(hooks: Hooks, receiver: Receiver) -> None:
    # Real time: the header's date is read against the wall clock.
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(minutes=10), usegmt=True)
    receiver.respond = lambda _: Reply(429, headers={"retry-after": when})
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    await deliver(hooks.deliverer())
    delivery, _ = await hooks.only_delivery(endpoint.id)
    assert delivery.next_attempt_at is not None
    wait = delivery.next_attempt_at - hooks.clock.now()
    assert timedelta(minutes=9) <= wait <= timedelta(minutes=10)


@pytest.mark.parametrize("retry_after", ["120", "²", "soon", "-5", "Mon, 99 Foo 2026 99:99:99 GMT"])
async def test_retry_after_is_ignored_where_it_does_not_apply_or_is_garbage(
    hooks: Hooks, receiver: Receiver, retry_after: str
) -> None:
    """A 500's Retry-After is not honoured; an unreadable one is ignored, never a crash."""
    status = 500 if retry_after == "120" else 429
    receiver.respond = lambda _: Reply(status, headers={"retry-after": retry_after})
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    await deliver(hooks.deliverer())
    delivery, attempts = await hooks.only_delivery(endpoint.id)
    assert [a.status_code for a in attempts] == [status], "the attempt is on record"
    assert delivery.next_attempt_at is not None
    wait = delivery.next_attempt_at - hooks.clock.now()
    assert timedelta(seconds=4) <= wait <= timedelta(seconds=6)


async def test_a_redirect_is_a_failure_and_never_followed(hooks: Hooks, receiver: Receiver) -> None:
    target = receiver.url_for("127.0.0.1", "/elsewhere")
    receiver.respond = lambda r: (
        Reply(302, headers={"location": target}) if r.path == "/hooks" else Reply(200)
    )
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    await deliver(hooks.deliverer())
    delivery, attempts = await hooks.only_delivery(endpoint.id)
    assert [a.status_code for a in attempts] == [302]
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.PENDING, "http_302")
    assert [r.path for r in receiver.received()] == ["/hooks"]


async def test_a_slow_receiver_times_out(hooks: Hooks, receiver: Receiver) -> None:
    receiver.respond = lambda _: Reply(200, delay=3)
    await hooks.set_timeout(0.3)
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    await deliver(hooks.deliverer())
    delivery, [attempt] = await hooks.only_delivery(endpoint.id)
    assert (attempt.status_code, attempt.error_class) == (None, "timeout")
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.PENDING, "timeout")
    assert attempt.latency_ms < 3000


async def test_one_slow_endpoint_does_not_hold_up_another(hooks: Hooks) -> None:
    gate = threading.Event()
    with running(lambda _: Reply(200, hold=gate)) as slow, running() as fast:
        try:
            slow_endpoint, _ = await hooks.endpoint(slow.url)
            fast_endpoint, _ = await hooks.endpoint(fast.url)
            for _ in range(12):  # three times the per-endpoint slots
                await hooks.emit()
            deliverer = WebhookDeliverer(
                hooks.container.webhooks,
                hooks.container.webhook_sender,
                hooks.clock,
                allow_private=True,
                concurrency=16,
                per_endpoint=4,
                owner="fairness",
            )
            assert await deliverer.run_once() == 8, "four of each, not sixteen of the first"
            # While the slow endpoint hangs, the fast one's work goes on in the free slots.
            for _ in range(500):
                await deliverer.run_once()
                fast_done = [d for d, _ in await hooks.deliveries(fast_endpoint.id)]
                if all(d.status is DeliveryStatus.SUCCEEDED for d in fast_done):
                    break
                await asyncio.sleep(0.01)
            assert len(fast.received()) == 12
            assert all(d.status is DeliveryStatus.SUCCEEDED for d in fast_done)
            assert len(slow.received()) <= 4, "never more than its slots at once"
            # Its four hang; with four unsent it is claimed for no more.
            assert deliverer.in_flight == 4
        finally:
            gate.set()
        for _ in range(10):
            await deliver(deliverer)
        slow_done = [d for d, _ in await hooks.deliveries(slow_endpoint.id)]
        assert all(d.status is DeliveryStatus.SUCCEEDED for d in slow_done)
        assert len(slow.received()) == 12


@pytest.mark.parametrize(
    ("reply", "excerpt_bytes", "expected"),
    [
        (Reply(500, body=b"e" * 2000), 512, "e" * 512),
        (Reply(500, body=b"short"), 512, "short"),
        (Reply(200, body=b""), 512, None),
        (Reply(500, body=b"abcdefghijklmnopqrstuvwxyz"), 16, "abcdefghijklmnop"),
        # A NUL byte cannot be stored in PostgreSQL text: shown as U+FFFD.
        (Reply(500, body=b"bad\x00news"), 512, "bad\ufffdnews"),
        # Cut inside a two-byte character: the half is shown as U+FFFD, not an error.
        (Reply(500, body="ااااا".encode()), 5, "اا\ufffd"),
    ],
)
async def test_the_response_excerpt_is_bounded(
    hooks: Hooks, receiver: Receiver, reply: Reply, excerpt_bytes: int, expected: str | None
) -> None:
    receiver.respond = lambda _: reply
    sender = HttpWebhookSender(_http(hooks), excerpt_bytes=excerpt_bytes)
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    await deliver(hooks.deliverer(sender))
    _, [attempt] = await hooks.only_delivery(endpoint.id)
    assert attempt.response_excerpt == expected
    assert attempt.status_code == reply.status


async def test_the_excerpt_is_of_the_answer_as_sent_not_compressed(
    hooks: Hooks, receiver: Receiver
) -> None:
    text = b"<html>quota exceeded, try tomorrow</html>" * 5

    def answer(request: Received) -> Reply:
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Reply(500, headers={"content-encoding": "gzip"}, body=gzip.compress(text))
        return Reply(500, body=text)

    receiver.respond = answer
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    await deliver(hooks.deliverer())
    _, [attempt] = await hooks.only_delivery(endpoint.id)
    assert attempt.response_excerpt is not None
    assert attempt.response_excerpt.startswith("<html>quota exceeded")


async def test_a_connection_refused_is_a_network_error(hooks: Hooks) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        endpoint, _ = await hooks.endpoint(f"http://127.0.0.1:{port}/hooks")
        await hooks.emit()
        await deliver(hooks.deliverer())
    delivery, [attempt] = await hooks.only_delivery(endpoint.id)
    assert (attempt.status_code, attempt.error_class) == (None, "connect_error")
    assert delivery.status is DeliveryStatus.PENDING


# -- secret rotation --------------------------------------------------------------------


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint, old = await hooks.endpoint(receiver.url)
    rotated, new = await hooks.container.webhooks.rotate_secret(
        hooks.caller, endpoint.id, overlap=timedelta(seconds=30)
    )
    assert new != old and new.startswith("whsec_")
    assert rotated.previous_secret_expires_at == hooks.clock.now() + timedelta(seconds=30)

    await hooks.emit()
    await deliver(hooks.deliverer())
    [during] = receiver.received()
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verified(during, new)
    verified(during, old)

    hooks.clock.advance(seconds=31)
    receiver.clear()
    await hooks.emit()
    await deliver(hooks.deliverer())
    [after] = receiver.received()
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verified(after, new)
    with pytest.raises(WebhookVerificationError):
        verified(after, old)


async def test_rotation_defaults_to_a_day_and_zero_ends_the_old_secret_at_once(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint, first = await hooks.endpoint(receiver.url)
    rotated, second = await hooks.container.webhooks.rotate_secret(hooks.caller, endpoint.id)
    assert rotated.previous_secret_expires_at == hooks.clock.now() + timedelta(hours=24)
    _, third = await hooks.container.webhooks.rotate_secret(
        hooks.caller, endpoint.id, overlap=timedelta(0)
    )
    await hooks.emit()
    await deliver(hooks.deliverer())
    [request] = receiver.received()
    verified(request, third)
    for stale in (first, second):
        with pytest.raises(WebhookVerificationError):
            verified(request, stale)


# -- where deliveries may go ------------------------------------------------------------


async def test_a_name_resolving_to_a_private_address_is_refused(
    hooks: Hooks, receiver: Receiver
) -> None:
    resolver = Resolver({"hooks.test": ["127.0.0.1"]})
    sender = HttpWebhookSender(_http(hooks), resolver)
    endpoint, _ = await hooks.endpoint(receiver.url_for("hooks.test"))
    await hooks.emit()
    await deliver(hooks.deliverer(sender, allow_private=False))
    delivery, [attempt] = await hooks.only_delivery(endpoint.id)
    assert (attempt.status_code, attempt.error_class) == (None, "blocked_address")
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.PENDING, "blocked_address")
    assert receiver.received() == []
    assert resolver.asked == ["hooks.test"]


@pytest.mark.parametrize(
    "addresses",
    [
        ["169.254.169.254"],
        ["::ffff:127.0.0.1"],
        ["64:ff9b::a9fe:a9fe"],
        ["10.0.0.1"],
        [],
    ],
)
async def test_every_resolved_address_must_be_public(
    hooks: Hooks, receiver: Receiver, addresses: list[str]
) -> None:
    sender = HttpWebhookSender(_http(hooks), Resolver({"hooks.test": addresses}))
    endpoint, _ = await hooks.endpoint(receiver.url_for("hooks.test"))
    await hooks.emit()
    await deliver(hooks.deliverer(sender, allow_private=False))
    _, [attempt] = await hooks.only_delivery(endpoint.id)
    assert attempt.error_class == "blocked_address"
    assert receiver.received() == []


@pytest.mark.parametrize("order", [["127.0.0.1", "10.0.0.1"], ["10.0.0.1", "127.0.0.1"]])
async def test_one_forbidden_address_among_several_blocks_the_delivery(
    hooks: Hooks, receiver: Receiver, order: list[str]
) -> None:
    # Here 127.0.0.1 stands for a public address (the check lets it through), so a sender
    # that checked only some addresses would reach the local receiver, never the internet.
    sender = HttpWebhookSender(
        _http(hooks),
        Resolver({"hooks.test": order}),
        address_forbidden=lambda address: address == "10.0.0.1",
    )
    endpoint, _ = await hooks.endpoint(receiver.url_for("hooks.test"))
    await hooks.emit()
    await deliver(hooks.deliverer(sender, allow_private=False))
    _, [attempt] = await hooks.only_delivery(endpoint.id)
    assert attempt.error_class == "blocked_address"
    assert receiver.received() == []


async def test_a_name_that_does_not_resolve_is_a_dns_error(
    hooks: Hooks, receiver: Receiver
) -> None:
    sender = HttpWebhookSender(_http(hooks), Resolver({}))
    endpoint, _ = await hooks.endpoint(receiver.url_for("nowhere.test"))
    await hooks.emit()
    await deliver(hooks.deliverer(sender, allow_private=False))
    _, [attempt] = await hooks.only_delivery(endpoint.id)
    assert attempt.error_class == "dns_error"


async def test_the_request_goes_to_the_checked_address_with_the_original_host(
    hooks: Hooks, receiver: Receiver
) -> None:
    resolver = Resolver({"hooks.test": ["127.0.0.1"]})
    checked: list[str] = []

    def permissive(address: str) -> bool:
        checked.append(address)
        return False

    sender = HttpWebhookSender(_http(hooks), resolver, address_forbidden=permissive)
    endpoint, secret = await hooks.endpoint(receiver.url_for("hooks.test") + "?k=v")
    await hooks.emit()
    await deliver(hooks.deliverer(sender, allow_private=False))
    [request] = receiver.received()
    assert request.headers["host"] == f"hooks.test:{receiver.port}"
    assert request.path == "/hooks"
    assert checked == ["127.0.0.1"]
    verified(request, secret)
    assert (await hooks.only_delivery(endpoint.id))[0].status is DeliveryStatus.SUCCEEDED


@asynccontextmanager
async def _tls_client(kind: str, trust: ssl.SSLContext) -> AsyncIterator[Any]:
    """A client that trusts only ``trust``: one httpx client for every origin, or the
    worker's own per-endpoint pools (adapters/http1.py)."""
    if kind == "shared client":
        async with httpx.AsyncClient(verify=trust, trust_env=False) as client:
            yield client
        return
    pools = EndpointPools(connections=4, verify=trust)
    try:
        yield pools
    finally:
        await pools.aclose()


@pytest.mark.parametrize("kind", ["shared client", "origin pools"])
async def test_tls_to_a_pinned_address_still_checks_the_host_name(
    hooks: Hooks, tmp_path: Path, kind: str
) -> None:
    """The certificate names hooks.test only. Pinned to 127.0.0.1, a delivery to
    hooks.test succeeds (SNI and the certificate check use the name); one to other.test,
    resolving to the same address, fails, even right after the first: no connection
    verified for one name carries another name's delivery."""
    certfile, keyfile, trust = tls_files(tmp_path, "hooks.test")
    resolver = Resolver({"hooks.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    async with _tls_client(kind, trust) as client:
        with running(certfile=certfile, keyfile=keyfile) as server:
            pinned = HttpWebhookSender(client, resolver, address_forbidden=lambda _: False)
            good, _ = await hooks.endpoint(server.url_for("hooks.test"), ["payment.succeeded"])
            await hooks.emit("payment.succeeded")
            await deliver(hooks.deliverer(pinned, allow_private=False))
            [request] = server.received()
            assert request.headers["host"] == f"hooks.test:{server.port}"
            assert (await hooks.only_delivery(good.id))[0].status is DeliveryStatus.SUCCEEDED

            other, _ = await hooks.endpoint(server.url_for("other.test"), ["payment.failed"])
            await hooks.emit("payment.failed")
            await deliver(hooks.deliverer(pinned, allow_private=False))
            _, [attempt] = await hooks.only_delivery(other.id)
            assert (attempt.status_code, attempt.error_class) == (None, "ssl_error")
            assert len(server.received()) == 1


@pytest.mark.parametrize(
    ("url", "table", "reason"),
    [
        ("https://hooks.test/h", {"hooks.test": ["127.0.0.1"]}, "private_address"),
        ("https://hooks.test/h", {"hooks.test": ["8.8.8.8", "10.0.0.1"]}, "private_address"),
        ("https://hooks.test/h", {"hooks.test": []}, "private_address"),
        ("https://nowhere.test/h", {}, "unresolvable"),
        ("http://hooks.test/h", {"hooks.test": ["8.8.8.8"]}, "https_required"),
        ("https://10.0.0.1/h", {}, "private_address"),
    ],
)
async def test_production_endpoints_are_checked_when_saved(
    hooks: Hooks, url: str, table: dict[str, list[str]], reason: str
) -> None:
    from amanat.kernel.errors import InvalidInput
    from amanat.webhooks.service import WebhooksConfig, WebhookService

    c = hooks.container
    production = WebhookService(
        c.transactions,
        hooks.clock,
        c.protection,
        c.events,
        Resolver(table),
        WebhooksConfig(production=True),
    )
    with pytest.raises(InvalidInput) as caught:
        await production.create_endpoint(
            hooks.caller, url=url, enabled_events=["*"], description=None
        )
    assert caught.value.code == "invalid_webhook_url"
    assert caught.value.reason == reason
    # A public name is accepted (only resolved, never called).
    ok, _ = await WebhookService(
        c.transactions,
        hooks.clock,
        c.protection,
        c.events,
        Resolver({"hooks.test": ["8.8.8.8"]}),
        WebhooksConfig(production=True),
    ).create_endpoint(
        hooks.caller, url="https://hooks.test/h", enabled_events=["*"], description=None
    )
    assert ok.url == "https://hooks.test/h"


# -- sending again ----------------------------------------------------------------------


async def test_redeliver_sends_the_same_event_again(hooks: Hooks, receiver: Receiver) -> None:
    endpoint, secret = await hooks.endpoint(receiver.url)
    other, _ = await hooks.endpoint(receiver.url_for("127.0.0.1", "/other"))
    event_id = await hooks.emit()
    await deliver(hooks.deliverer())
    assert len(receiver.received()) == 2

    to_all = await hooks.container.webhooks.redeliver(hooks.caller, event_id, endpoint_id=None)
    assert sorted(d.endpoint_id for d in to_all) == sorted([endpoint.id, other.id])
    to_one = await hooks.container.webhooks.redeliver(
        hooks.caller, event_id, endpoint_id=endpoint.id
    )
    assert [(d.event_id, d.trigger) for d in to_one] == [(event_id, "redeliver")]
    await deliver(hooks.deliverer())
    got = receiver.received()
    assert [r.webhook_id for r in got] == [event_id] * 5
    assert len([r for r in got if r.path == "/hooks"]) == 3
    bodies = {json.dumps(verified(r, secret), sort_keys=True) for r in got if r.path == "/hooks"}
    assert len(bodies) == 1, "the same event, byte for byte"


async def test_replay_queues_subscribed_events_since_a_time(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint, _ = await hooks.endpoint(receiver.url, ["payment.succeeded"])
    before = await hooks.emit()
    hooks.clock.advance(seconds=10)
    since = hooks.clock.now()
    wanted = [await hooks.emit(version=v) for v in (1, 2, 3)]
    await hooks.emit("payment.failed")  # not subscribed
    hooks.clock.advance(seconds=10)
    await deliver(hooks.deliverer())
    assert len(receiver.received()) == 4
    receiver.clear()

    result = await hooks.container.webhooks.replay(
        hooks.caller, endpoint.id, since=since, until=None
    )
    assert (result.queued, result.truncated, result.resume_from) == (3, False, None)
    await deliver(hooks.deliverer())
    assert sorted(r.webhook_id for r in receiver.received()) == sorted(wanted)
    assert before not in {r.webhook_id for r in receiver.received()}
    triggers = sorted(d.trigger for d, _ in await hooks.deliveries(endpoint.id))
    assert triggers == ["event"] * 4 + ["replay"] * 3


async def test_a_disabled_endpoints_deliveries_wait_and_resume(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint, _ = await hooks.endpoint(receiver.url)
    event_id = await hooks.emit()
    paused = await hooks.container.webhooks.update_endpoint(
        hooks.caller, endpoint.id, enabled=False
    )
    assert not paused.enabled
    hooks.clock.advance(hours=2)
    assert await deliver(hooks.deliverer()) == 0
    assert receiver.received() == []
    delivery, attempts = await hooks.only_delivery(endpoint.id)
    assert (delivery.status, attempts) == (DeliveryStatus.PENDING, [])

    await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id, enabled=True)
    assert await deliver(hooks.deliverer()) == 1
    assert [r.webhook_id for r in receiver.received()] == [event_id]


async def test_deleting_an_endpoint_stops_its_deliveries(hooks: Hooks, receiver: Receiver) -> None:
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    await hooks.container.webhooks.delete_endpoint(hooks.caller, endpoint.id)
    assert await deliver(hooks.deliverer()) == 0
    assert receiver.received() == []
    async with hooks.container.db.read() as conn:
        row = (
            await conn.execute(
                sa.select(webhook_deliveries.c.status, webhook_deliveries.c.last_error).where(
                    webhook_deliveries.c.endpoint_id == endpoint.id
                )
            )
        ).one()
    assert (row.status, row.last_error) == ("failed", "endpoint deleted")


# -- events raised while an endpoint is disabled -----------------------------------------


async def deliver_all_one_at_a_time(hooks: Hooks) -> None:
    """One attempt in flight per endpoint, so arrivals show the claim order."""
    deliverer = WebhookDeliverer(
        hooks.container.webhooks,
        hooks.container.webhook_sender,
        hooks.clock,
        allow_private=True,
        per_endpoint=1,
        owner="test-deliverer",
    )
    while await deliver(deliverer):
        pass


async def test_events_raised_while_disabled_are_held_and_sent_in_order_when_re_enabled(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint, _ = await hooks.endpoint(receiver.url, ["payment.succeeded", "payment.failed"])
    await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id, enabled=False)
    raised = []
    for type_ in ("payment.succeeded", "payment.failed", "payment.succeeded"):
        hooks.clock.advance(seconds=1)
        raised.append(await hooks.emit(type_))
    hooks.clock.advance(seconds=1)
    await hooks.emit("payment.canceled")  # not subscribed: never held
    assert await deliver(hooks.deliverer()) == 0
    assert receiver.received() == []

    await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id, enabled=True)
    await deliver_all_one_at_a_time(hooks)
    assert [r.webhook_id for r in receiver.received()] == raised
    held = await hooks.deliveries(endpoint.id)
    assert sorted(d.status.value for d, _ in held) == ["succeeded"] * 3


async def test_a_held_backlog_goes_out_one_at_a_time_with_the_default_concurrency(
    hooks: Hooks, receiver: Receiver
) -> None:
    """Up to 8 attempts per endpoint run at once; the backlog of a re-enabled endpoint
    must still arrive oldest first, so its attempts wait for each other."""
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id, enabled=False)
    raised = []
    for _ in range(5):
        hooks.clock.advance(seconds=1)
        raised.append(await hooks.emit())
    await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id, enabled=True)

    first_answer = threading.Event()
    receiver.respond = lambda r: (
        Reply(hold=first_answer) if len(receiver.received()) == 1 else Reply()
    )
    deliverer = hooks.deliverer()
    assert await deliverer.run_once() == 5
    # Why up to 10 s: the first request may be slow to arrive on a busy machine.
    assert await until(lambda: bool(receiver.received())), "the first was never sent"
    await asyncio.sleep(0.3)  # room for any attempt sent alongside the first
    assert len(receiver.received()) == 1, "held deliveries were sent side by side"
    first_answer.set()
    await deliverer.drain(30)
    assert [r.webhook_id for r in receiver.received()] == raised
    assert {d.trigger for d, _ in await hooks.deliveries(endpoint.id)} == {"held"}


async def test_events_held_longer_than_the_window_are_dropped_on_re_enabling(
    hooks: Hooks, receiver: Receiver
) -> None:
    window = hooks.container.webhooks.config.held_for
    assert window == timedelta(days=30)
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id, enabled=False)
    too_old = await hooks.emit()
    hooks.clock.advance(days=20)
    recent = await hooks.emit()
    hooks.clock.advance(days=10, seconds=1)
    await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id, enabled=True)
    await deliver_all_one_at_a_time(hooks)
    assert [r.webhook_id for r in receiver.received()] == [recent]
    by_event = {d.event_id: d for d, _ in await hooks.deliveries(endpoint.id)}
    assert by_event[too_old].status is DeliveryStatus.FAILED
    assert by_event[too_old].last_error is not None
    assert "retention window" in by_event[too_old].last_error
    # The event itself is still there to read.
    assert len(await hooks.events("payment.succeeded")) == 2


async def test_held_deliveries_of_an_endpoint_left_disabled_are_dropped_by_the_sweep(
    hooks: Hooks, receiver: Receiver
) -> None:
    """Without the periodic job they stayed pending for ever."""
    paused, _ = await hooks.endpoint(receiver.url)
    live, _ = await hooks.endpoint(receiver.url)
    await hooks.container.webhooks.update_endpoint(hooks.caller, paused.id, enabled=False)
    too_old = await hooks.emit()
    hooks.clock.advance(days=20)
    recent = await hooks.emit()
    hooks.clock.advance(days=10, seconds=1)

    assert await hooks.container.webhooks.drop_expired_held() == 1
    statuses = {d.event_id: d.status for d, _ in await hooks.deliveries(paused.id)}
    assert statuses == {too_old: DeliveryStatus.FAILED, recent: DeliveryStatus.PENDING}
    # An enabled endpoint's deliveries are the retry schedule's business, not the sweep's.
    assert {d.status for d, _ in await hooks.deliveries(live.id)} == {DeliveryStatus.PENDING}
    assert await hooks.container.webhooks.drop_expired_held() == 0


async def test_a_replay_queued_while_disabled_is_fresh_however_old_its_events(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint, _ = await hooks.endpoint(receiver.url)
    start = hooks.clock.now()
    await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id, enabled=False)
    old = await hooks.emit()
    hooks.clock.advance(days=40)
    await hooks.container.webhooks.replay(hooks.caller, endpoint.id, since=start, until=None)
    await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id, enabled=True)
    await deliver_all_one_at_a_time(hooks)
    # The held delivery (40 days old) was dropped; the replay queued today went out.
    assert [r.webhook_id for r in receiver.received()] == [old]
    by_trigger = {d.trigger: d.status for d, _ in await hooks.deliveries(endpoint.id)}
    assert by_trigger == {"held": DeliveryStatus.FAILED, "replay": DeliveryStatus.SUCCEEDED}


async def test_an_automatically_disabled_endpoint_holds_events_like_a_paused_one(
    hooks: Hooks, receiver: Receiver
) -> None:
    receiver.respond = lambda _: Reply(410)
    endpoint, _ = await hooks.endpoint(receiver.url, ["payment.succeeded"])
    await hooks.emit()
    await deliver(hooks.deliverer())
    gone = await hooks.container.webhooks.get_endpoint(hooks.partner_id, endpoint.id)
    assert not gone.enabled and gone.disabled_reason is not None

    raised = []
    for _ in range(3):
        hooks.clock.advance(seconds=1)
        raised.append(await hooks.emit())
    receiver.respond = lambda _: Reply(200)
    await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id, enabled=True)
    await deliver_all_one_at_a_time(hooks)
    # The first answered 410 and failed for good; the three raised meanwhile arrive.
    assert [r.webhook_id for r in receiver.received()][1:] == raised


async def test_an_empty_or_unchanged_patch_changes_nothing(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint, _ = await hooks.endpoint(receiver.url, ["payment.succeeded"])
    empty = await hooks.container.webhooks.update_endpoint(hooks.caller, endpoint.id)
    same = await hooks.container.webhooks.update_endpoint(
        hooks.caller,
        endpoint.id,
        url=endpoint.url,
        enabled_events=["payment.succeeded"],
        description=endpoint.description,
        enabled=True,
    )
    stored = await hooks.container.webhooks.get_endpoint(hooks.partner_id, endpoint.id)
    assert empty.version == same.version == stored.version == endpoint.version == 1
    assert stored.updated_at == endpoint.updated_at
    await hooks.container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with hooks.container.db.read() as conn:
        audited = (
            await conn.execute(
                sa.select(sa.func.count()).where(
                    audit_log.c.action == "webhook_endpoint.updated",
                    audit_log.c.target_id == endpoint.id,
                )
            )
        ).scalar_one()
    assert audited == 0

    changed = await hooks.container.webhooks.update_endpoint(
        hooks.caller, endpoint.id, description="new"
    )
    assert changed.version == 2


def _http(hooks: Hooks) -> EndpointPools:
    """The delivery HTTP client of the hooks' container."""
    return hooks.container.get(DeliveryHttp).clients


async def test_claimed_ahead_deliveries_never_exceed_the_process_slots(hooks: Hooks) -> None:
    """Deliveries are claimed two slots' worth ahead; across many endpoints the requests
    out at once must still be at most ``concurrency``."""
    gate = threading.Event()
    with running(lambda _: Reply(200, hold=gate)) as hanging:
        try:
            for n in range(6):
                await hooks.endpoint(f"{hanging.url}?n={n}")
            for _ in range(4):
                await hooks.emit()
            deliverer = hooks.deliverer(concurrency=5, per_endpoint=2, owner="slots")
            assert await deliverer.run_once() == 10, "two slots' worth of the five"
            # Why poll (up to 10 s) then 0.5 s: wait for the five on a slow machine, then
            # leave room for a sixth request, which must not come.
            assert await until(lambda: len(hanging.received()) >= 5), "five never arrived"
            await asyncio.sleep(0.5)
            assert len(hanging.received()) == 5, "only the process's five slots send"
        finally:
            gate.set()
        for _ in range(20):
            await deliver(deliverer)
        assert len(hanging.received()) == 24


async def test_a_delivery_whose_lease_would_run_out_is_given_back_not_sent(
    hooks: Hooks, receiver: Receiver
) -> None:
    """Claimed ahead, a delivery may wait for a slot; if its lease could end before its
    attempt would, another worker could send it at the same time: it is given back."""
    endpoint, _ = await hooks.endpoint(receiver.url)
    await hooks.emit()
    deliverer = hooks.deliverer()
    assert await deliverer.run_once() == 1
    # The attempt's task has not started yet: its lease is now nearly over.
    config = hooks.container.webhooks.config
    hooks.clock.advance(seconds=(config.lease - config.timeout).total_seconds())
    await deliverer.drain(30)
    assert receiver.received() == []
    delivery, attempts = await hooks.only_delivery(endpoint.id)
    assert (delivery.status, delivery.attempts, attempts) == (DeliveryStatus.PENDING, 0, [])
    async with hooks.container.db.read() as conn:
        locked_by = (
            await conn.execute(
                sa.select(webhook_deliveries.c.locked_by).where(
                    webhook_deliveries.c.id == delivery.id
                )
            )
        ).scalar_one()
    assert locked_by is None, "given back: any worker may claim it now"
    assert await deliver(deliverer) == 1
    assert len(receiver.received()) == 1


async def test_a_stopping_worker_gives_back_what_it_has_not_sent(hooks: Hooks) -> None:
    gate = threading.Event()
    with running(lambda _: Reply(200, hold=gate)) as hanging:
        first, _ = await hooks.endpoint(f"{hanging.url}?n=1")
        second, _ = await hooks.endpoint(f"{hanging.url}?n=2")
        for _ in range(2):
            await hooks.emit()
        # One slot: one endpoint's attempt hangs in it, the other's waits claimed, unsent.
        deliverer = hooks.deliverer(concurrency=1, per_endpoint=1, owner="stopping")
        stop = asyncio.Event()
        running_loop = asyncio.ensure_future(deliverer.run_forever(stop, idle_seconds=0.01))
        for _ in range(500):
            if hanging.received() and deliverer.in_flight == 2:
                break
            await asyncio.sleep(0.01)
        assert deliverer.in_flight == 2
        stop.set()
        # The waiting attempt must find the worker stopping once the slot frees up.
        assert await until(lambda: deliverer._stopping), "the deliverer never saw the stop"
        gate.set()
        async with asyncio.timeout(30):
            await running_loop
    assert len(hanging.received()) == 1, "the waiting one was not sent"
    found = [*await hooks.deliveries(first.id), *await hooks.deliveries(second.id)]
    states = sorted((d.attempts, d.status.value) for d, _ in found)
    assert states == [(0, "pending")] * 3 + [(1, "succeeded")]
    async with hooks.container.db.read() as conn:
        leased = (
            await conn.execute(
                sa.select(sa.func.count()).where(webhook_deliveries.c.locked_by.is_not(None))
            )
        ).scalar_one()
    assert leased == 0, "nothing is left leased to the stopped worker"


async def test_a_stalled_recording_pauses_claims_without_spinning(
    hooks: Hooks, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    await hooks.endpoint(receiver.url)
    for _ in range(10):
        await hooks.emit()
    stalled = asyncio.Event()

    async def never_written(finished: list[Any], *, owner: str) -> list[Any]:
        await stalled.wait()
        raise RuntimeError("database gone")

    monkeypatch.setattr(hooks.container.webhooks, "record_many", never_written)
    deliverer = hooks.deliverer(concurrency=1, per_endpoint=1, owner="stalled")
    rounds = 0
    claim_once = deliverer.run_once

    async def counted() -> int:
        nonlocal rounds
        rounds += 1
        return await claim_once()

    monkeypatch.setattr(deliverer, "run_once", counted)
    stop = asyncio.Event()
    loop_task = asyncio.ensure_future(deliverer.run_forever(stop, idle_seconds=0.05))
    # Why poll (up to 10 s): the four may be slow to arrive on a busy machine. Claims are
    # paused from then on; over the window below the loop may only poll every 0.05 s
    # (the bound is per elapsed second, 4x the poll rate, so a slow scheduler stretching
    # the window does not fail it, while a spinning loop does thousands).
    assert await until(lambda: len(receiver.received()) >= 4)
    loop = asyncio.get_running_loop()
    started, rounds_before = loop.time(), rounds
    await asyncio.sleep(0.5)
    elapsed, spun = loop.time() - started, rounds - rounds_before
    assert len(receiver.received()) == 4, "sent until four attempts waited to be recorded"
    assert spun < 80 * elapsed, f"the loop spun: {spun} rounds in {elapsed:.2f} s"
    stop.set()
    stalled.set()
    async with asyncio.timeout(30):
        await loop_task


async def test_a_delivery_claimed_again_while_its_old_task_waits_gets_no_second_task(
    hooks: Hooks, receiver: Receiver
) -> None:
    """Its lease ran out while its task waited; this worker claims it again. A second task
    could send it while the first gives it back (clearing the new lease): there is none."""
    await hooks.endpoint(receiver.url)
    await hooks.emit()
    deliverer = hooks.deliverer()
    # Every process slot taken, so the first task waits (as a busy worker's would) until
    # the second claim is made; without this the first task could give the delivery back
    # before that claim, and the claim would rightly start a task of its own.
    for _ in range(deliverer._concurrency):
        await deliverer._slots.acquire()
    assert await deliverer.run_once() == 1
    hooks.clock.advance(seconds=hooks.container.webhooks.config.lease.total_seconds() + 1)
    assert await deliverer.run_once() == 1, "claimed again: its lease ran out"
    assert deliverer.in_flight == 1
    for _ in range(deliverer._concurrency):
        deliverer._slots.release()
    await deliverer.drain(30)
    assert receiver.received() == [], "the old task gave it back; no second task sent it"
    assert await deliver(deliverer) == 1
    assert len(receiver.received()) == 1


async def test_a_database_away_defers_the_claim_with_a_warning_and_the_loop_goes_on(
    hooks: Hooks, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During a database restart every poll finds it away: one warning per poll without a
    trace (not an error with one), and deliveries go on once it is back."""
    await hooks.endpoint(receiver.url)
    await hooks.emit()
    deliverer = hooks.deliverer()
    claim_once = deliverer.run_once
    away = 3

    async def restarting() -> int:
        nonlocal away
        if away:
            away -= 1
            raise Unavailable("The connection to the database was lost; retry in a moment.")
        return await claim_once()

    monkeypatch.setattr(deliverer, "run_once", restarting)
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        loop_task = asyncio.ensure_future(deliverer.run_forever(stop, idle_seconds=0.01))
        async with asyncio.timeout(10):
            while not receiver.received():
                await asyncio.sleep(0.01)
        stop.set()
        await loop_task
    deferred = [entry for entry in logs if entry["event"] == "webhook_claim_deferred"]
    assert len(deferred) == 3
    assert all(entry["log_level"] == "warning" and "exc_info" not in entry for entry in deferred)
    assert not [entry for entry in logs if entry["event"] == "webhook_claim_failed"]
