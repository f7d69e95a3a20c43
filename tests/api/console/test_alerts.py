"""The alert inbox over real data: alerts appear while their condition holds and go when
it clears; an operator acknowledges one with a note, stored and audited together; support
reads but may not acknowledge; the form needs the session's CSRF token; an alert that no
longer stands and a second acknowledgement are refused with a clear page."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from tests.api.console.test_console import csrf_of, sign_in
from tests.api.console.test_operations import payout
from tests.api.webhooks.test_webhooks_api import Receiver
from tests.support.oauth import RegisteredClient, audit_actions, bearer, funded_merchant
from tests.support.operators import NewClient, create_account
from tests.support.settled_payments import settled_collection
from tests.support.statements import Entry, camt053

from amanat.bootstrap import Container
from amanat.console.tables import alert_acknowledgements
from amanat.kernel.clock import FrozenClock
from amanat.webhooks.wiring import deliverer as webhook_deliverer

PAGE = "/console/alerts"


def items(page: str) -> list[tuple[str, str]]:
    """(key, kind) of each alert listed, in order."""
    return re.findall(r'id="alert-([^"]+)" data-kind="([^"]+)"', page)


def keys(page: str, kind: str | None = None) -> list[str]:
    return [key for key, k in items(page) if kind is None or k == kind]


def item(page: str, key: str) -> str:
    match = re.search(
        rf'<li class="[^"]*" id="alert-{re.escape(key)}".*?</li>', page, flags=re.DOTALL
    )
    assert match, key
    return match.group(0)


def plain(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def ack_path(key: str) -> str:
    return f"{PAGE}/{quote(key, safe='')}/acknowledge"


async def acknowledge(http: httpx.AsyncClient, key: str, note: str) -> httpx.Response:
    page = (await http.get(PAGE)).text
    return await http.post(ack_path(key), data={"csrf_token": csrf_of(page), "note": note})


async def stored(container: Container) -> list[dict[str, object]]:
    async with container.db.read() as conn:
        rows = await conn.execute(sa.select(alert_acknowledgements))
        return [dict(r._mapping) for r in rows.all()]


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    return await funded_merchant(container, "Alpha Traders")


@pytest.fixture
async def operations(container: Container, new_client: NewClient) -> httpx.AsyncClient:
    http = new_client()
    await sign_in(http, container, await create_account(container, "operations"))
    return http


async def stuck_payout(
    container: Container, clock: FrozenClock, client: httpx.AsyncClient, merchant: RegisteredClient
) -> str:
    payment_id = await payout(client, await bearer(client, merchant), "p", 250_000, "SCBL", 1)
    await container.payments.apply_rail_status(payment_id, "accepted", sequence=1, cause="t")
    clock.advance(minutes=11)
    return payment_id


async def test_a_stuck_payment_is_an_alert_until_it_is_final(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operations: httpx.AsyncClient,
    merchant: RegisteredClient,
) -> None:
    payment_id = await payout(client, await bearer(client, merchant), "p", 250_000, "SCBL", 1)
    await container.payments.apply_rail_status(payment_id, "accepted", sequence=1, cause="t")
    assert keys((await operations.get(PAGE)).text, "payment_stuck") == []
    clock.advance(minutes=9)
    assert keys((await operations.get(PAGE)).text, "payment_stuck") == []  # not yet 10 minutes

    clock.advance(minutes=2)
    page = (await operations.get(PAGE)).text
    key = f"payment_stuck:{payment_id}"
    assert keys(page, "payment_stuck") == [key]
    shown = item(page, key)
    assert "severity-critical" in shown and ">Critical<" in shown
    assert "Payout processing for 11 min" in plain(shown)
    assert "PKR 2,500.00" in plain(shown) and "bank SCBL" in plain(shown)
    assert f'href="/console/timeline/{payment_id}"' in shown
    assert 'href="/console/playbooks#payment_stuck"' in shown
    assert 'name="note"' in shown  # operations may acknowledge it

    await container.payments.apply_rail_status(payment_id, "settled", sequence=2, cause="t")
    assert keys((await operations.get(PAGE)).text, "payment_stuck") == []


async def test_acknowledging_stores_the_note_and_audits_it(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operations: httpx.AsyncClient,
    merchant: RegisteredClient,
) -> None:
    payment_id = await stuck_payout(container, clock, client, merchant)
    key = f"payment_stuck:{payment_id}"
    note = "Asked the rail; ticket RAAST-4411 open."
    answer = await acknowledge(operations, key, note)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"{PAGE}?acknowledged={quote(key, safe='')}"

    (row,) = await stored(container)
    assert row["alert_key"] == key and row["note"] == note
    assert row["operator_name"] == "Test operations"
    assert row["at"] == clock.now()
    (record,) = await audit_actions(container, "alert.acknowledged")
    assert (record["actor_type"], record["target_type"], record["target_id"]) == (
        "operator",
        "alert",
        key,
    )
    assert record["actor_id"] == row["operator_id"]
    assert json.loads(record["payload"]) == {"note_length": len(note), "kind": "payment_stuck"}

    page = (await operations.get(answer.headers["location"])).text
    assert f"Acknowledged {key}." in plain(page)
    shown = item(page, key)
    assert "acknowledged" in shown.split(">")[0]
    assert "Acknowledged by Test operations" in plain(shown) and note in plain(shown)
    assert 'name="note"' not in shown
    summary = re.search(r'<p id="summary">(.*?)</p>', page, flags=re.DOTALL)
    assert summary and plain(summary.group(1)).endswith("· 1 acknowledged")
    assert keys(page)[-1] == key  # acknowledged ones come last


async def test_the_first_acknowledgement_stands(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operations: httpx.AsyncClient,
    new_client: NewClient,
    merchant: RegisteredClient,
) -> None:
    payment_id = await stuck_payout(container, clock, client, merchant)
    key = f"payment_stuck:{payment_id}"
    other = new_client()
    await sign_in(other, container, await create_account(container, "risk"))
    form = {"csrf_token": csrf_of((await other.get(PAGE)).text), "note": "mine too"}
    assert (await acknowledge(operations, key, "on it")).status_code == 303
    second = await other.post(ack_path(key), data=form)
    assert second.status_code == 409
    assert "Test operations acknowledged this alert" in plain(second.text)
    assert "the first acknowledgement stands" in plain(second.text)
    (row,) = await stored(container)
    assert row["note"] == "on it"
    assert len(await audit_actions(container, "alert.acknowledged")) == 1


async def test_an_alert_that_no_longer_stands_cannot_be_acknowledged(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operations: httpx.AsyncClient,
    merchant: RegisteredClient,
) -> None:
    payment_id = await stuck_payout(container, clock, client, merchant)
    csrf = csrf_of((await operations.get(PAGE)).text)
    await container.payments.apply_rail_status(payment_id, "settled", sequence=2, cause="t")
    answer = await operations.post(
        ack_path(f"payment_stuck:{payment_id}"), data={"csrf_token": csrf, "note": "late"}
    )
    assert answer.status_code == 404
    assert "no longer stands" in plain(answer.text)
    unknown = await operations.post(
        ack_path("payment_stuck:pay_nothing"), data={"csrf_token": csrf, "note": "x"}
    )
    assert unknown.status_code == 404
    assert await stored(container) == []
    assert await audit_actions(container, "alert.acknowledged") == []


@pytest.mark.parametrize(
    ("note", "says"), [("   ", "note is required"), ("x" * 1001, "at most 1000")]
)
async def test_the_note_is_required_and_bounded(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operations: httpx.AsyncClient,
    merchant: RegisteredClient,
    note: str,
    says: str,
) -> None:
    payment_id = await stuck_payout(container, clock, client, merchant)
    answer = await acknowledge(operations, f"payment_stuck:{payment_id}", note)
    assert answer.status_code == 422
    assert says in plain(answer.text)
    assert await stored(container) == []


async def test_support_reads_the_inbox_but_may_not_acknowledge(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    new_client: NewClient,
    merchant: RegisteredClient,
) -> None:
    payment_id = await stuck_payout(container, clock, client, merchant)
    support = new_client()
    await sign_in(support, container, await create_account(container, "support"))
    page = await support.get(PAGE)
    assert page.status_code == 200
    key = f"payment_stuck:{payment_id}"
    assert 'name="note"' not in item(page.text, key)
    assert "needs alerts.acknowledge" in plain(item(page.text, key))
    assert 'href="/console/alerts"' in page.text  # in the nav
    refused = await support.post(
        ack_path(key), data={"csrf_token": csrf_of(page.text), "note": "let me"}
    )
    assert refused.status_code == 403
    assert '<code class="missing-permission">alerts.acknowledge</code>' in refused.text
    assert await stored(container) == []

    admin = new_client()
    await sign_in(admin, container, await create_account(container, "admin"))
    assert (await admin.get(PAGE)).status_code == 403  # no payments.read


async def test_acknowledging_needs_the_csrf_token(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operations: httpx.AsyncClient,
    merchant: RegisteredClient,
) -> None:
    payment_id = await stuck_payout(container, clock, client, merchant)
    key = f"payment_stuck:{payment_id}"
    for form in ({"note": "no token"}, {"note": "stale", "csrf_token": "not-the-token"}):
        refused = await operations.post(ack_path(key), data=form)
        assert refused.status_code == 403
        assert "anti-forgery token" in refused.text
    assert await stored(container) == []


async def test_a_disabled_endpoint_and_a_late_backlog_are_alerts(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operations: httpx.AsyncClient,
    merchant: RegisteredClient,
) -> None:
    auth = await bearer(client, merchant)
    endpoint_ids = {}
    for name, status in (("gone", 410), ("slow", 500)):
        async with Receiver(status=status) as receiver:
            created = await client.post(
                "/v1/webhook_endpoints",
                json={"url": receiver.url, "enabled_events": ["balance.topped_up"]},
                headers=auth | {"Idempotency-Key": name},
            )
            assert created.status_code == 201, created.text
            endpoint_ids[name] = created.json()["id"]
            topped = await client.post(
                "/v1/sandbox/top_ups",
                json={"amount": 100},
                headers=auth | {"Idempotency-Key": f"{name}-top"},
            )
            assert topped.status_code == 200, topped.text
            deliverer = webhook_deliverer(container.services)
            await deliverer.run_once()
            await deliverer.drain()
    page = (await operations.get(PAGE)).text
    disabled_key = f"webhook_endpoint_disabled:{endpoint_ids['gone']}"
    assert keys(page, "webhook_endpoint_disabled") == [disabled_key]
    shown = item(page, disabled_key)
    assert "severity-critical" in shown and "410" in plain(shown)
    assert "127.0.0.1" in plain(shown) and "/hooks" not in plain(shown)
    assert "/console/timeline/" not in shown  # an endpoint has no timeline
    assert keys(page, "webhook_backlog") == []

    clock.advance(minutes=31)
    await sign_in(operations, container, await create_account(container, "risk"))
    page = (await operations.get(PAGE)).text
    assert keys(page, "webhook_backlog") == [f"webhook_backlog:{endpoint_ids['slow']}"]
    assert "severity-warning" in item(page, f"webhook_backlog:{endpoint_ids['slow']}")


async def test_a_break_open_past_a_settlement_cycle_is_an_alert(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    new_client: NewClient,
    merchant: RegisteredClient,
) -> None:
    clock.set(datetime(2026, 11, 24, 6, 0, tzinfo=UTC))  # Tuesday 11:00 in Karachi
    auth = await bearer(client, merchant)
    reported = await settled_collection(client, container, auth, 30_000, 1)
    missing = await settled_collection(client, container, auth, 40_000, 2)
    ops = new_client()
    csrf = await sign_in(ops, container, await create_account(container, "operations"))
    statement = camt053(
        "STMT-1",
        "2026-11-25",
        [Entry("E-1", "CRDT", 30_000, "2026-11-25", "2026-11-24", [(reported, 30_000)])],
    )
    imported = await ops.post(
        "/operator/v1/reconciliation/imports",
        params={"source": "bank_statement", "file_name": "s.xml"},
        content=statement,
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/xml"},
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["breaks_opened"] == 1
    clock.set(datetime(2026, 11, 25, 11, 59, tzinfo=UTC))  # Wednesday 16:59 in Karachi
    await sign_in(ops, container, await create_account(container, "risk"))
    assert keys((await ops.get(PAGE)).text, "break_aged") == []
    clock.set(datetime(2026, 11, 25, 12, 1, tzinfo=UTC))  # Wednesday's cycle has closed
    page = (await ops.get(PAGE)).text
    (key,) = keys(page, "break_aged")
    shown = item(page, key)
    assert "severity-critical" in shown and missing in plain(shown)
    assert f'href="/console/timeline/{missing}"' in shown
    assert 'href="/console/playbooks#break_aged"' in shown
    dashboard = (await ops.get("/console/operations")).text
    assert 'id="tile-aged_breaks" data-level="red"' in dashboard
