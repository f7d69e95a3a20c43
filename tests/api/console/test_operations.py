"""The operations dashboard over real data: payments made through the partner API, their
rail outcomes applied as the rail's callbacks apply them (and, in one test, driven through
the sandbox rail), webhooks delivered by the real deliverer to a receiver on 127.0.0.1.
The numbers on the page are the ones the data implies; tiles are red over their
thresholds and not otherwise."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from tests.api.console.test_console import sign_in
from tests.api.webhooks.test_webhooks_api import Receiver
from tests.integration.payments import test_payment_flow as flow
from tests.integration.payments.test_payment_flow import World, _drive, _pay
from tests.support.oauth import RegisteredClient, bearer, funded_merchant
from tests.support.operators import NewClient, create_account

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.kernel.pakistan import make_iban
from amanat.webhooks.wiring import deliverer as webhook_deliverer

world = flow.world  # amanat with the sandbox rail mounted, one funded merchant
PAGE = "/console/operations"


def iban(bank: str, n: int) -> str:
    return make_iban(bank, f"{n:016d}").value


async def payout(
    http: httpx.AsyncClient, auth: dict[str, str], key: str, amount: int, bank: str, n: int
) -> str:
    body = {
        "amount": amount,
        "currency": "PKR",
        "creditor": {"iban": iban(bank, n), "name": "Ayesha Khan"},
    }
    response = await http.post("/v1/payments", json=body, headers=auth | {"Idempotency-Key": key})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def collection(http: httpx.AsyncClient, auth: dict[str, str], key: str, amount: int) -> str:
    body = {
        "type": "collection",
        "amount": amount,
        "currency": "PKR",
        "debtor": {"raast_id": "03001234567", "name": "Bilal Ahmed"},
    }
    response = await http.post("/v1/payments", json=body, headers=auth | {"Idempotency-Key": key})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def tiles(page: str) -> dict[str, str]:
    return dict(re.findall(r'id="tile-(\w+)" data-level="(\w+)"', page))


def tile_text(page: str, key: str) -> str:
    match = re.search(rf'id="tile-{key}"[^>]*>(.*?)</div>', page, flags=re.DOTALL)
    assert match, key
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def row(page: str, row_id: str) -> dict[str, str]:
    """The cells of ``<tr id=row_id>`` that carry a class, by class."""
    match = re.search(rf'<tr id="{re.escape(row_id)}">(.*?)</tr>', page, flags=re.DOTALL)
    assert match, f"no row {row_id}"
    cells = re.findall(r'<td class="num (\w[\w-]*)">([^<]*)</td>', match.group(1))
    return {name: html.unescape(value) for name, value in cells} | {"_": match.group(1)}


def text_of(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">(.*?)</dd>', page, flags=re.DOTALL)
    assert match, element_id
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


Rail = Callable[..., Awaitable[str]]


@pytest.fixture
async def operator(container: Container, new_client: NewClient) -> httpx.AsyncClient:
    http = new_client()
    await sign_in(http, container, await create_account(container, "operations"))
    return http


@pytest.fixture
async def alpha(container: Container) -> RegisteredClient:
    return await funded_merchant(container, "Alpha Traders")


@pytest.fixture
async def beta(container: Container) -> RegisteredClient:
    return await funded_merchant(container, "Beta Foods")


async def a_bad_hour(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    alpha: RegisteredClient,
    beta: RegisteredClient,
) -> dict[str, Any]:
    """Payouts that succeed and fail, a declined collection, one payout stuck in
    processing and one that recovered after 11 minutes; the clock ends 11 minutes on."""
    rail = container.payments.apply_rail_status
    a, b = await bearer(client, alpha), await bearer(client, beta)
    ok = await payout(client, a, "a1", 150_000, "SCBL", 1)
    await rail(ok, "accepted", sequence=1, cause="t")
    await rail(ok, "settled", sequence=2, cause="t")
    ac01 = await payout(client, a, "a2", 200_000, "SCBL", 2)
    await rail(ac01, "rejected", sequence=1, reason_code="AC01", cause="t")
    ab08 = await payout(client, a, "a3", 300_000, "HABB", 3)
    await rail(ab08, "rejected", sequence=1, reason_code="AB08", cause="t")
    declined = await collection(client, b, "b1", 50_000)
    await rail(declined, "declined", sequence=1, reason_code="CUST", cause="t")
    stuck = await payout(client, b, "b2", 400_000, "MEZN", 4)
    await rail(stuck, "accepted", sequence=1, cause="t")
    slow = await payout(client, b, "b3", 120_000, "SCBL", 5)
    await rail(slow, "accepted", sequence=1, cause="t")
    clock.advance(minutes=11)
    await rail(slow, "settled", sequence=2, cause="t")
    return {"stuck": stuck, "failed": [ac01, ab08, declined]}


async def test_the_dashboard_answers_what_where_who_and_recovery(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operator: httpx.AsyncClient,
    alpha: RegisteredClient,
    beta: RegisteredClient,
) -> None:
    made = await a_bad_hour(container, clock, client, alpha, beta)
    response = await operator.get(PAGE)
    assert response.status_code == 200, response.text
    page = response.text

    # What failed: by code (each linked to its playbook) and by journey.
    for code in ("rail_ac01", "rail_ab08", "rail_cust"):
        cells = row(page, f"code-{code}")
        assert cells["failed"] == "1"
        assert cells["rate"] == "20 %"  # of 5 finished: a1, a2, a3, b1, b3
        assert f'href="/console/playbooks#{code}"' in cells["_"]
    payouts = row(page, "journey-payout")
    assert (payouts["finished"], payouts["failed"], payouts["rate"]) == ("4", "2", "50 %")
    collections = row(page, "journey-collection")
    assert (collections["finished"], collections["failed"], collections["rate"]) == (
        "1",
        "1",
        "100 %",
    )
    assert row(page, "journey-refund")["finished"] == "0"

    # Where: by bank and by partner (named).
    scbl = row(page, "bank-SCBL")
    assert (scbl["finished"], scbl["failed"]) == ("3", "1")
    assert row(page, "bank-HABB")["rate"] == "100 %"
    alpha_row = row(page, f"partner-{alpha.partner.id}")
    assert (alpha_row["finished"], alpha_row["failed"]) == ("3", "2")
    assert "Alpha Traders" in alpha_row["_"]

    # Who is impacted: counts only, and the amount at stake.
    assert text_of(page, "partners-affected") == "2"
    assert text_of(page, "customers-affected").startswith("4 ")
    assert text_of(page, "amount-at-stake").startswith("PKR 9,500.00")  # 2000+3000+500+4000
    assert "03001234567" not in page and iban("SCBL", 2) not in page

    # Recovery: the stuck payout, linked to its timeline; the one that recovered.
    assert f'href="/console/timeline/{made["stuck"]}"' in page
    assert text_of(page, "time-to-recover") == (
        "1 payment recovered; median 11 min, longest 11 min"
    )
    assert text_of(page, "backlog-empty").startswith("last empty at")
    assert page.count("<svg") == 2 and 'role="img"' in page

    # Tiles: payouts failing (2 of 4 in 15 minutes) and a stuck payout are red.
    levels = tiles(page)
    assert levels["payout_failure_rate"] == "red"
    assert "Over threshold" in tile_text(page, "payout_failure_rate")
    assert "2 failed of 4 finished" in tile_text(page, "payout_failure_rate")
    assert levels["stuck_payments"] == "red"
    assert made["stuck"] in tile_text(page, "stuck_payments")
    assert levels["webhook_backlog"] == "green" and levels["oldest_webhook"] == "green"
    assert levels["aged_breaks"] == "green"
    assert levels["amount_at_stake"] == "info"
    assert "PKR 9,500.00" in tile_text(page, "amount_at_stake")


async def test_tiles_stay_green_when_all_is_well(
    container: Container,
    client: httpx.AsyncClient,
    operator: httpx.AsyncClient,
    alpha: RegisteredClient,
) -> None:
    auth = await bearer(client, alpha)
    for n in range(3):
        paid = await payout(client, auth, f"ok{n}", 100_000, "SCBL", n)
        await container.payments.apply_rail_status(paid, "accepted", sequence=1, cause="t")
        await container.payments.apply_rail_status(paid, "settled", sequence=2, cause="t")
    page = (await operator.get(PAGE)).text
    levels = tiles(page)
    assert levels == {
        "payout_failure_rate": "green",
        "stuck_payments": "green",
        "webhook_backlog": "green",
        "oldest_webhook": "green",
        "aged_breaks": "green",
        "amount_at_stake": "info",
    }
    assert "Within threshold" in tile_text(page, "payout_failure_rate")
    assert row(page, "journey-payout")["finished"] == "3"
    assert "No payment failed in this window." in page
    assert text_of(page, "backlog-empty") == "empty now"


async def test_thresholds_are_configurable(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operator: httpx.AsyncClient,
    alpha: RegisteredClient,
    beta: RegisteredClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await a_bad_hour(container, clock, client, alpha, beta)
    operations = container.settings.operations
    monkeypatch.setattr(operations, "payout_failure_rate_percent", 60.0)
    monkeypatch.setattr(operations, "stuck_after_minutes", 30.0)
    levels = tiles((await operator.get(PAGE)).text)
    assert levels["payout_failure_rate"] == "amber"  # 50 %: above half of 60 %
    assert levels["stuck_payments"] == "green"  # 11 minutes is not stuck any more
    monkeypatch.setattr(operations, "failure_rate_min_finished", 5)
    assert tiles((await operator.get(PAGE)).text)["payout_failure_rate"] == "green"


async def test_the_window_picks_what_counts(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operator: httpx.AsyncClient,
    alpha: RegisteredClient,
    beta: RegisteredClient,
) -> None:
    await a_bad_hour(container, clock, client, alpha, beta)
    clock.advance(minutes=30)  # the failures are 41 minutes old now
    await sign_in(operator, container, await create_account(container, "support"))
    short = (await operator.get(PAGE, params={"window": "15m"})).text
    assert 'aria-current="page" class="current">Last 15 minutes' in short
    assert "No payment failed in this window." in short
    assert tiles(short)["payout_failure_rate"] == "green"
    hour = (await operator.get(PAGE, params={"window": "1h"})).text
    assert row(hour, "code-rail_ac01")["failed"] == "1"
    day = (await operator.get(PAGE, params={"window": "bogus"})).text
    assert 'aria-current="page" class="current">Last hour' in day  # the default


async def test_webhook_endpoints_failing_and_the_backlog(
    container: Container,
    clock: FrozenClock,
    client: httpx.AsyncClient,
    operator: httpx.AsyncClient,
    alpha: RegisteredClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = await bearer(client, alpha)
    async with Receiver(status=500) as failing:
        created = await client.post(
            "/v1/webhook_endpoints",
            json={"url": failing.url, "enabled_events": ["balance.topped_up"]},
            headers=auth | {"Idempotency-Key": "hook"},
        )
        assert created.status_code == 201, created.text
        endpoint_id = created.json()["id"]
        for n in range(3):
            topped = await client.post(
                "/v1/sandbox/top_ups",
                json={"amount": 100},
                headers=auth | {"Idempotency-Key": f"t{n}"},
            )
            assert topped.status_code == 200, topped.text
        deliverer = webhook_deliverer(container.services)
        await deliverer.run_once()
        await deliverer.drain()
    assert len(failing.received) == 3
    page = (await operator.get(PAGE)).text
    cells = row(page, f"endpoint-{endpoint_id}")
    assert (cells["failed"], cells["rate"], cells["gave-up"]) == ("3", "100 %", "0")
    assert "127.0.0.1" in cells["_"] and "/hooks" not in cells["_"]  # the host only
    assert tile_text(page, "webhook_backlog").startswith("Webhooks undelivered 3 ")
    assert tiles(page)["oldest_webhook"] == "green"

    clock.advance(minutes=31)  # the retries are due later; the oldest now waits 31 min
    await sign_in(operator, container, await create_account(container, "risk"))
    page = (await operator.get(PAGE)).text
    assert tiles(page)["oldest_webhook"] == "red"
    assert "31 min" in tile_text(page, "oldest_webhook")
    monkeypatch.setattr(container.settings.operations, "webhook_backlog_max", 2)
    assert tiles((await operator.get(PAGE)).text)["webhook_backlog"] == "red"


async def test_support_may_read_it_and_others_may_not(
    container: Container, new_client: NewClient
) -> None:
    support = new_client()
    await sign_in(support, container, await create_account(container, "support"))
    assert (await support.get(PAGE)).status_code == 200
    assert 'href="/console/operations"' in (await support.get("/console")).text
    admin = new_client()
    await sign_in(admin, container, await create_account(container, "admin"))
    refused = await admin.get(PAGE)
    assert refused.status_code == 403
    assert "payments.read" in refused.text
    assert 'href="/console/operations"' not in (await admin.get("/console")).text


async def test_a_failure_through_the_sandbox_rail_shows_on_the_dashboard(world: World) -> None:
    payment_id = await _pay(world, 100_001, "magic-ac01")  # the rail answers AC01
    body = await _drive(world, payment_id, want="failed")
    assert body["failure"]["code"] == "rail_ac01"
    await sign_in(world.http, world.container, await create_account(world.container, "support"))
    page = (await world.http.get(PAGE)).text
    assert row(page, "code-rail_ac01")["failed"] == "1"
    assert tiles(page)["payout_failure_rate"] == "red"
