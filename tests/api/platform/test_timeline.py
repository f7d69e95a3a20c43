"""A transaction's timeline from every source, end to end in one process: payouts and a
collection made over the partner API, sent to the in-process sandbox rail by the job
runtime, settled or refused by its callbacks and status enquiries, their webhooks sent
to a partner's endpoint (a scripted sender: a 500, then a 200), a redelivery asked for,
the settlement report reconciled with a break an operator resolves. Then
``TimelineService`` tells each story in order, masked, and ``SearchService`` finds the
payments by id, reference, partner, and the customer's phone number, CNIC or IBAN."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tests.conftest import wipe
from tests.support.oauth import ACTOR, RegisteredClient, fetch_token, make_client

from amanat.app import create_app
from amanat.auth.domain import Caller
from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import FrozenClock
from amanat.kernel.search import SearchField, SearchQuery
from amanat.kernel.timeline import TimelineEntry
from amanat.platform.audit.domain import Actor
from amanat.platform.idempotency.service import IdempotencyService
from amanat.platform.jobs.runtime import JobRuntime
from amanat.platform.search import SearchService
from amanat.platform.settings import Settings
from amanat.platform.timeline import Timeline, TimelineService
from amanat.reconciliation.services.reconciliation import ReconciliationService
from amanat.sandbox_rail.app import create_rail_app
from amanat.sandbox_rail.engine import RailSettings
from amanat.webhooks.jobs import WebhookDeliverer
from amanat.webhooks.service import SendResult

IBAN = "PK36SCBL0000001123456702"
PHONE = "03001234567"
CNIC = "35202-1234567-3"
HOOK = "https://hooks.shop.example/amanat/events?token=s3cret-token"
MORNING = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # a Tuesday, 11:00 in Karachi
DAY = "2026-11-24"
OPERATOR = Actor(type="operator", id="op_support", source_ip="10.1.2.3", request_id="req_op")


class ScriptedSender:
    """A partner's endpoint: answers each delivery's attempts from a script."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.sent: dict[str, int] = {}

    async def send(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        deadline_seconds: float,
        allow_private: bool,
    ) -> SendResult:
        webhook_id = headers.get("webhook-id", "")
        n = self.sent.get(webhook_id, 0)
        self.sent[webhook_id] = n + 1
        status = self.answers[min(n, len(self.answers) - 1)]
        return SendResult(status_code=status, latency_ms=12 + n)


@dataclass
class World:
    container: Container
    clock: FrozenClock
    http: httpx.AsyncClient
    dispatcher: JobRuntime
    merchant: RegisteredClient
    auth: dict[str, str]
    sender: ScriptedSender = field(default_factory=lambda: ScriptedSender([500, 200]))

    async def post(self, path: str, body: Mapping[str, Any], key: str) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.auth | {"Idempotency-Key": key})

    async def status(self, payment_id: str) -> dict[str, Any]:
        path = "refunds" if payment_id.startswith("re_") else "payments"
        body: dict[str, Any] = (
            await self.http.get(f"/v1/{path}/{payment_id}", headers=self.auth)
        ).json()
        return body

    async def drive(self, payment_id: str, *, want: str, advance: float = 0.0) -> None:
        """Run the job runtime and the rail's timers until the payment is ``want``."""
        for _ in range(80):
            await self.dispatcher.run_once()
            await asyncio.sleep(0.02)
            if (await self.status(payment_id))["status"] == want:
                return
            if advance:
                self.clock.advance(seconds=advance)
        raise AssertionError(f"{payment_id} never became {want}")

    async def deliver_webhooks(self) -> None:
        """Two rounds of the webhook worker: the first attempts, then the retries 5 s on."""
        deliverer = WebhookDeliverer(
            self.container.webhooks,
            self.sender,
            self.clock,
            allow_private=True,
            owner="test-deliverer",
        )
        for _ in range(2):
            await deliverer.run_once()
            await deliverer.drain()
            await asyncio.sleep(0.05)
            self.clock.advance(seconds=6)

    async def timeline(self, subject_id: str) -> Timeline:
        # Replays are counted a moment later (platform/idempotency/replay_counts.py).
        await self.container.get(IdempotencyService).flush_replay_counts()
        return await self.container.get(TimelineService).timeline(subject_id)


@pytest.fixture
async def world(settings: Settings, clock: FrozenClock) -> AsyncIterator[World]:
    clock.set(MORNING)
    transport = httpx.ASGITransport(app=None, raise_app_exceptions=False)  # type: ignore[arg-type]
    http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    settings = settings.model_copy(
        update={"http": settings.http.model_copy(update={"public_url": "http://testserver"})}
    )
    container = build_container(settings, clock=clock, http=http)
    app = create_app(container=container)

    async def clock_sleep(seconds: float) -> None:
        target = clock.now().timestamp() + seconds
        while clock.now().timestamp() < target:
            await asyncio.sleep(0.005)

    rail = create_rail_app(
        RailSettings(
            callback_secret=settings.rail.secret.get_secret_value(),
            admin_token="admin",
            settle_delay=0.0,
            timeout_hold_seconds=20,
            delayed_callback_seconds=10,
            callback_backoff_seconds=0.0,
            http=http,
            clock=clock,
            sleep=clock_sleep,
        )
    )
    app.mount("/sandbox-rail", rail)
    transport.app = app
    merchant = await make_client(container, name="Timeline shop")
    await container.payments.top_up(Caller(merchant.partner.id, None, ACTOR), 10_000_000)
    token = await fetch_token(http, merchant)
    world = World(
        container,
        clock,
        http,
        container.job_runtime(owner="test"),
        merchant,
        {"Authorization": f"Bearer {token['access_token']}"},
    )
    hook = await world.post(
        "/v1/webhook_endpoints", {"url": HOOK, "enabled_events": ["*"]}, "endpoint-1"
    )
    assert hook.status_code == 201, hook.text
    try:
        yield world
    finally:
        await rail.state.rail_engine.aclose()
        await wipe(container)
        await container.close()


def _texts(entries: list[TimelineEntry]) -> str:
    """Everything a timeline shows, as one text (to look for what must never be there)."""
    return "\n".join(
        " ".join(
            [e.title, e.actor, e.detail or "", e.request_id or "", e.subject_id]
            + [f"{k}={v}" for k, v in e.facts.items()]
        )
        for e in entries
    )


def _titles(entries: list[TimelineEntry], source: str) -> list[str]:
    return [e.title for e in entries if e.source == source]


def _first(entries: list[TimelineEntry], text: str) -> int:
    return next(i for i, e in enumerate(entries) if text in e.title)


async def test_a_payout_tells_its_whole_story_in_order(world: World) -> None:
    body = {
        "amount": 150_000,
        "currency": "PKR",
        "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
        "reference": "INV-1001",
        "description": "November invoice",
    }
    created = await world.post("/v1/payments", body, "payout-1")
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    world.clock.advance(seconds=1)
    retried = await world.post("/v1/payments", body, "payout-1")
    assert retried.headers["idempotent-replayed"] == "true"
    await world.drive(payment_id, want="succeeded")
    await world.deliver_webhooks()
    [succeeded] = [
        e
        for e in (await world.timeline(payment_id)).entries
        if e.title == "event payment.succeeded raised"
    ]
    redelivered = await world.post(f"/v1/events/{succeeded.subject_id}/redeliver", {}, "again-1")
    assert redelivered.status_code == 202, redelivered.text

    timeline = await world.timeline(payment_id)
    entries = timeline.entries
    assert timeline.found and timeline.subject_id == payment_id
    assert [e.at for e in entries] == sorted(e.at for e in entries), "oldest first"

    # The API request that created it, and its replay.
    api = [e for e in entries if e.source == "api"]
    assert api[0].title == "POST /v1/payments (Idempotency-Key payout-1) → 201"
    assert api[0].actor == f"client {world.merchant.id}"
    assert api[0].request_id, "the request id, from the audit record of the creation"
    assert api[1].title.startswith("Idempotency-Key payout-1 replayed once, last at ")
    assert api[1].at > api[0].at
    # The state transitions, in order, with their causes.
    assert _titles(entries, "state") == [
        "payout created (pending)",
        "pending → processing",
        "processing → succeeded",
    ]
    state = [e for e in entries if e.source == "state"]
    assert state[0].facts == {"amount": "1500.00 PKR", "account": "SCBL …6702"}
    assert state[1].detail == "rail accepted the submission" and state[1].actor == "rail"
    assert "rail_reference" in state[1].facts
    assert state[2].detail in {"rail callback", "status enquiry"}
    # The ledger: the hold, then the journal that moved the money.
    assert _titles(entries, "ledger") == [
        "hold of 1500.00 PKR placed",
        "hold posted (the money left)",
        "journal payout: 1500.00 PKR",
    ]
    journal = next(e for e in entries if e.title.startswith("journal payout"))
    assert journal.facts[f"merchant:{world.merchant.partner.id}"] == "debit 1500.00 PKR"
    assert journal.facts["raast_settlement"] == "credit 1500.00 PKR"
    # The rail: the hand-over, the callback or the enquiry that settled it, the jobs.
    rail = _titles(entries, "rail")
    assert "handed to the rail (it can no longer be canceled)" in rail
    assert any(
        t.startswith(("rail callback: settled", "status enquiry: the rail says")) for t in rail
    )
    assert "submission job done after 1 attempt" in rail
    # Webhooks: the events, each delivery, each attempt (host only), the redelivery.
    hooks = _titles(entries, "webhook")
    assert "event payment.processing raised" in hooks
    assert "event payment.succeeded raised" in hooks
    assert hooks.count("delivery to hooks.shop.example queued") == 2
    assert hooks.count("attempt 1 to hooks.shop.example: 500") == 2
    assert hooks.count("attempt 2 to hooks.shop.example: 200") == 2
    assert "redelivery to hooks.shop.example queued (asked again)" in hooks
    # The audit trail: who created it, from where, under which request id.
    audited = next(e for e in entries if e.title == "payment.created")
    assert audited.source == "audit" and audited.actor == f"client {world.merchant.id}"
    assert audited.request_id == api[0].request_id
    assert audited.facts["amount"] == "150000" and "ip" in audited.facts
    # The order across sources.
    assert _first(entries, "POST /v1/payments") < _first(entries, "payout created")
    assert _first(entries, "payout created") < _first(entries, "hold of")
    assert _first(entries, "hold of") < _first(entries, "pending → processing")
    assert _first(entries, "pending → processing") < _first(entries, "processing → succeeded")
    assert _first(entries, "processing → succeeded") < _first(entries, "journal payout")
    assert _first(entries, "event payment.succeeded") < _first(entries, "attempt 2")
    # Nothing personal in clear, nothing of the endpoint's URL but its host.
    shown = _texts(entries)
    assert IBAN not in shown and "1123456702" not in shown and "Ayesha" not in shown
    assert "s3cret" not in shown and "/amanat/events" not in shown
    assert "November invoice" not in shown

    # The redelivery request is on the event's own timeline, with the redelivered delivery.
    event = await world.timeline(succeeded.subject_id)
    assert any(
        e.source == "api" and e.title.startswith(f"POST /v1/events/{succeeded.subject_id}")
        for e in event.entries
    )
    assert "event payment.succeeded raised" in _titles(event.entries, "webhook")


async def test_a_refused_payout_shows_its_failure_and_the_released_hold(world: World) -> None:
    body = {"amount": 100_001, "currency": "PKR", "creditor": {"iban": IBAN, "name": "A K"}}
    created = await world.post("/v1/payments", body, "refused-1")
    payment_id = created.json()["id"]
    await world.drive(payment_id, want="failed")

    entries = (await world.timeline(payment_id)).entries
    failed = next(e for e in entries if e.source == "state" and e.title.endswith("→ failed"))
    assert failed.facts["failure_code"] == "rail_ac01"
    assert _titles(entries, "ledger") == ["hold of 1000.01 PKR placed", "hold voided (released)"]
    assert "event payment.failed raised" in _titles(entries, "webhook")


async def test_a_collection_links_its_refund_and_the_refund_its_collection(world: World) -> None:
    body = {
        "type": "collection",
        "amount": 50_000,
        "currency": "PKR",
        "debtor": {"raast_id": PHONE, "name": "Bilal Ahmed"},
        "reference": "ORDER-7",
        "expires_in_seconds": 600,
    }
    collection_id = (await world.post("/v1/payments", body, "collect-1")).json()["id"]
    await world.drive(collection_id, want="succeeded")
    refund = await world.post(
        "/v1/refunds", {"payment_id": collection_id, "amount": 20_000}, "refund-1"
    )
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    await world.drive(refund_id, want="succeeded")

    parent = (await world.timeline(collection_id)).entries
    linked = [e for e in parent if e.subject_id == refund_id]
    assert [e.title for e in linked] == [
        f"refund {refund_id} created",
        f"refund {refund_id} succeeded",
    ]
    assert linked[0].facts == {"amount": "200.00 PKR"}
    assert "collection changed (still succeeded)" in _titles(parent, "state")
    assert _titles(parent, "ledger") == ["journal collection: 500.00 PKR"]

    own = (await world.timeline(refund_id)).entries
    created = next(e for e in own if e.source == "state")
    assert created.title == "refund created (pending)"
    assert created.facts["refund of"] == collection_id
    assert created.facts["account"] == "Raast ID"
    assert any(e.title == "POST /v1/refunds (Idempotency-Key refund-1) → 201" for e in own)
    assert _titles(own, "ledger")[-1] == "journal refund: 200.00 PKR"
    assert PHONE not in _texts(own) and "3001234567" not in _texts(own)


async def test_search_finds_payments_by_id_reference_partner_and_customer(world: World) -> None:
    customer = await world.post(
        "/v1/customers", {"name": "Ayesha Khan", "iban": IBAN, "cnic": CNIC}, "customer-1"
    )
    assert customer.status_code == 201, customer.text
    payout_body = {
        "amount": 150_000,
        "currency": "PKR",
        "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
        "reference": "INV-2002",
    }
    payout = (await world.post("/v1/payments", payout_body, "search-payout")).json()
    assert payout["creditor"]["customer_id"] == customer.json()["id"]
    world.clock.advance(seconds=1)
    collection_body = {
        "type": "collection",
        "amount": 50_000,
        "currency": "PKR",
        "debtor": {"raast_id": PHONE, "name": "Bilal Ahmed"},
    }
    collection = (await world.post("/v1/payments", collection_body, "search-col")).json()
    await world.drive(payout["id"], want="succeeded")
    stored = await world.container.payments.current(payout["id"])
    assert stored is not None and stored.rail_reference
    rail_reference = stored.rail_reference
    search = world.container.get(SearchService)

    async def found(text: str) -> list[str]:
        return [hit.id for hit in (await search.search(text)).hits]

    assert await found(payout["id"]) == [payout["id"]]
    assert await found("INV-2002") == [payout["id"]]
    assert await found(rail_reference) == [payout["id"]]
    assert await found(world.merchant.partner.id) == [collection["id"], payout["id"]]
    for phone in (PHONE, "+923001234567", "923001234567", "0300-1234567"):
        assert await found(phone) == [collection["id"]], phone
    assert await found(CNIC) == [payout["id"]]
    assert await found(CNIC.replace("-", "")) == [payout["id"]]
    assert await found(IBAN) == [payout["id"]]
    assert await found("pay_01JZZZZZZZZZZZZZZZZZZZZZZZ") == []

    outcome = await search.search("+92 300 1234567")
    assert outcome.described == "phone number (Raast ID) +92300*****67 (1 customer record)"
    assert "1234567" not in outcome.described
    assert outcome.hits[0].summary == "Raast ID"
    cnic = await search.search(CNIC)
    assert CNIC not in cnic.described and "*****-*******-3" in cnic.described
    iban = await search.search(IBAN)
    assert iban.described.startswith("IBAN PK**SCBL") and IBAN not in iban.described
    hit = (await search.search(payout["id"])).hits[0]
    assert (hit.kind, hit.status, hit.amount, hit.currency) == (
        "payout",
        "succeeded",
        150_000,
        "PKR",
    )
    assert hit.summary == "SCBL …6702 · ref INV-2002"

    # Each source answers one field at a time, as the service asks it.
    [payments] = [s for s in _sources(world) if s.name == "payments"]
    by_partner = await payments.find(
        SearchQuery(SearchField.PARTNER, world.merchant.partner.id, limit=1)
    )
    assert [h.id for h in by_partner] == [collection["id"]], "the most recent first"


def _sources(world: World) -> list[Any]:
    return [build(world.container.services) for build in world.container.registry.search_sources]


async def test_reconciliation_matches_and_a_resolved_break_are_on_the_timeline(
    world: World,
) -> None:
    ids = []
    for n, amount in enumerate((150_000, 70_000)):
        body = {
            "type": "collection",
            "amount": amount,
            "currency": "PKR",
            "debtor": {"raast_id": PHONE, "name": "Bilal Ahmed"},
        }
        ids.append((await world.post("/v1/payments", body, f"recon-{n}")).json()["id"])
    for payment_id in ids:
        await world.drive(payment_id, want="succeeded")
    matched, broken = ids
    report = (
        "transfer_id,end_to_end_id,direction,amount,currency,settled_at,settlement_date,"
        "batch_id,fee\r\n"
        f"RRN261124000001,{matched},credit,1500.00,PKR,{DAY}T06:00:00.000Z,{DAY},,\r\n"
        f"RRN261124000002,{broken},credit,710.00,PKR,{DAY}T06:00:00.000Z,{DAY},,\r\n"
    ).encode()
    recon = world.container.get(ReconciliationService)
    await recon.import_file(OPERATOR, "sandbox_rail", report, "settlement.csv")

    entries = (await world.timeline(matched)).entries
    assert _titles(entries, "reconciliation") == [
        "settled collection expected in the reports",
        "matched by end_to_end_id in sandbox_rail",
    ]
    match = next(e for e in entries if e.title.startswith("matched by"))
    assert match.facts["records"] == "RRN261124000001"
    assert match.facts["allocated"] == "1500.00 PKR" and match.actor == "operator op_support"

    [brk], _ = await recon.breaks(
        status="open", kind=None, source=None, payment_id=broken, limit=10, before=None
    )
    await recon.resolve(OPERATOR, brk.id, "write_off", "the bank's fee, ticket SUP-1")
    entries = (await world.timeline(broken)).entries
    titles = _titles(entries, "reconciliation")
    assert titles[:2] == [
        "settled collection expected in the reports",
        "break opened in sandbox_rail: amount_mismatch",
    ]
    assert titles[-1] == "break resolved: write_off"
    resolved = next(e for e in entries if e.title == "break resolved: write_off")
    assert resolved.actor == "operator op_support" and resolved.detail is not None
    assert "journal" in resolved.facts


async def test_an_unknown_id_has_no_timeline(world: World) -> None:
    for unknown in ("pay_01JZZZZZZZZZZZZZZZZZZZZZZZ", "x" * 500, "a\x00b", " "):
        timeline = await world.timeline(unknown)
        assert not timeline.found


async def test_status_enquiries_are_on_the_timeline(world: World) -> None:
    """The rail sends no callback for this amount (docs/sandbox-rail.md): only the worker's
    status enquiries find the outcome, and each answer is on the timeline."""
    body = {"amount": 100_010, "currency": "PKR", "creditor": {"iban": IBAN, "name": "A K"}}
    payment_id = (await world.post("/v1/payments", body, "silent-1")).json()["id"]
    await world.drive(payment_id, want="succeeded", advance=35)

    entries = (await world.timeline(payment_id)).entries
    enquiries = [e for e in entries if e.title.startswith("status enquiry: the rail says")]
    assert enquiries and enquiries[-1].title.startswith("status enquiry: the rail says settled")
    assert enquiries[-1].detail == "processing -> succeeded" and enquiries[-1].actor == "worker"
    succeeded = next(e for e in entries if e.title == "processing → succeeded")
    assert succeeded.detail == "status enquiry" and succeeded.actor == "worker (status enquiry)"
    assert not any(e.title.startswith("rail callback") for e in entries)
    assert any(e.title.startswith("status enquiry job") for e in entries)
