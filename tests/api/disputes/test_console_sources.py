"""What the console reads of disputes: their timeline entries (for a dispute id and for
its payment's id), what the search finds, and DisputeService's query methods."""

from __future__ import annotations

from typing import Any

import httpx
from tests.support import disputes as d

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.kernel.search import SearchField, SearchQuery, SearchSource
from amanat.kernel.timeline import TimelineSource, merge


def _source(container: Container, kind: str) -> Any:
    builders = {
        "timeline": container.registry.timeline_sources,
        "search": container.registry.search_sources,
    }[kind]
    [found] = [s for s in (b(container.services) for b in builders) if s.name == "dispute"]
    return found


async def test_the_timeline_of_a_dispute_and_of_its_payment(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    one = await d.opened(client, shop, payment, amount=10_000)
    clock.advance(seconds=1)
    evidence = await client.post(
        f"/v1/disputes/{one['id']}/evidence",
        content=d.PDF,
        headers=shop.auth
        | {"Idempotency-Key": d.key(), "Content-Type": "application/pdf", "X-Request-Id": "up-1"},
    )
    assert evidence.status_code == 201
    clock.advance(seconds=1)
    await d.act(client, shop, one["id"], "respond", explanation="Secret words of the merchant.")
    two = await d.opened(client, shop, payment, amount=5_000)
    await d.act(client, shop, two["id"], "accept")
    source: TimelineSource = _source(container, "timeline")

    entries = merge([await source.entries(one["id"])])
    assert [e.title for e in entries] == [
        "dispute opened: fraud, 100.00 PKR",
        "dispute evidence added: application/pdf, 77 bytes",
        "dispute needs_response → under_review",
    ]
    assert {e.source for e in entries} == {"dispute"}
    assert {e.subject_id for e in entries} == {one["id"]}
    client_id = shop.registered.id
    assert [e.actor for e in entries] == [f"client {client_id}"] * 3
    assert entries[1].request_id == "up-1"
    assert entries[1].facts["evidence"] == evidence.json()["id"]
    assert all("Secret" not in repr(e) for e in entries)

    on_payment = merge([await source.entries(payment)])
    assert {e.subject_id for e in on_payment} == {one["id"], two["id"]}
    assert [e.title for e in on_payment if e.subject_id == two["id"]] == [
        "dispute opened: fraud, 50.00 PKR",
        "dispute needs_response → accepted",
    ]
    assert await source.entries("dp_01JDX3M9Q5W8C2V7T4K6B0N1ZP") == []
    assert await source.entries("pay_01JDX3M9Q5W8C2V7T4K6B0N1ZP") == []


async def test_the_search_finds_disputes(client: httpx.AsyncClient, container: Container) -> None:
    shop = await d.shop(client, container)
    other = await d.shop(client, container, name="Other")
    payment = await d.collection(client, container, shop, 100_000)
    dispute = await d.opened(client, shop, payment, amount=10_000)
    await d.opened(client, other, await d.collection(client, container, other, 100_000))
    source: SearchSource = _source(container, "search")
    for query in (
        SearchQuery(SearchField.ID, dispute["id"]),
        SearchQuery(SearchField.ID, payment),
        SearchQuery(SearchField.REFERENCE, payment),
        SearchQuery(SearchField.PARTNER, shop.partner_id),
    ):
        hits = await source.find(query)
        assert [(h.kind, h.id, h.partner_id) for h in hits] == [
            ("dispute", dispute["id"], shop.partner_id)
        ], query
        assert (hits[0].status, hits[0].amount, hits[0].currency) == (
            "needs_response",
            10_000,
            "PKR",
        )
        assert payment in hits[0].summary
    assert await source.find(SearchQuery(SearchField.SUBJECT, "", ("cus_1",))) == []
    assert await source.find(SearchQuery(SearchField.ID, "dp_01JDX3M9Q5W8C2V7T4K6B0N1ZP")) == []


async def test_the_service_queries_for_the_console(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 100_000)
    dispute = await d.opened(client, shop, payment, amount=10_000)
    await d.upload(client, shop, dispute["id"], d.PNG, "image/png")
    service = d.service(container)
    detail = await service.get(dispute["id"])
    assert [e.content_type for e in detail.evidence] == ["image/png"]
    assert [(h.from_status, h.to_status) for h in detail.history] == [(None, "needs_response")]
    view = detail.operator_view()
    assert view["partner_id"] == shop.partner_id and view["history"][0]["action"] == "open"
    page = await service.list(status="needs_response", partner_id=shop.partner_id, limit=1)
    assert [i.dispute.id for i in page.items] == [dispute["id"]] and not page.has_more
    assert (await service.list(status="won")).items == []
    assert [x.dispute.id for x in await service.on_payment(payment)] == [dispute["id"]]
