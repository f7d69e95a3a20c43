"""Settlement cycles, one behaviour a test: which days close and when, fees the balance
cannot cover carried to the next business day, the worker closing missed days in order
and never twice, settlements that tie to the ledger from one cycle to the next, and what
a merchant may read of them."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import itertools
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from tests.api.identity.test_operator_api import audit_rows, login, problem_code
from tests.support.oauth import ACTOR, RegisteredClient, fetch_token, make_client
from tests.support.operators import create_account
from tests.support.settled_payments import settle, settled_collection, settled_payout

from amanat.auth.domain import Caller
from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.platform.audit.domain import SYSTEM
from amanat.platform.settings import Settings, SettlementSettings
from amanat.reconciliation.services.settlements import SettlementService

COLLECTION_FEE_BPS = 100  # 1%
PAYOUT_FEE = 100_000  # PKR 1,000 a payout or refund: more than a small balance holds
CONFIGURED_HOLIDAY = "2027-03-10"  # a Wednesday, closed by configuration (say, an Eid)
CYCLES = "/operator/v1/settlements/cycles"


def at(day: str, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """An instant in UTC; Karachi is UTC+5, so the 17:00 cut-off is 12:00 UTC."""
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, second=second, tzinfo=UTC)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "settlement": SettlementSettings(
                collection_fee_bps=COLLECTION_FEE_BPS,
                payout_fee=PAYOUT_FEE,
                holidays=[date.fromisoformat(CONFIGURED_HOLIDAY)],
            )
        }
    )


# -- helpers ------------------------------------------------------------------------------


class Shop:
    def __init__(self, registered: RegisteredClient) -> None:
        self.registered = registered
        self.auth: dict[str, str] = {}
        self.made = 0

    @property
    def partner_id(self) -> str:
        return self.registered.partner.id

    async def sign_in(self, client: httpx.AsyncClient) -> dict[str, str]:
        """A fresh token: one fetched before the clock moved hours ahead has expired."""
        token = await fetch_token(client, self.registered)
        self.auth = {"Authorization": f"Bearer {token['access_token']}"}
        return self.auth


async def _shop(client: httpx.AsyncClient, container: Container, name: str = "Shop") -> Shop:
    shop = Shop(await make_client(container, name=name))
    await shop.sign_in(client)
    return shop


async def _top_up(container: Container, shop: Shop, amount: int) -> None:
    await container.payments.top_up(Caller(shop.partner_id, None, ACTOR), amount)


async def _collection(
    client: httpx.AsyncClient, container: Container, shop: Shop, amount: int
) -> str:
    shop.made += 1
    return await settled_collection(client, container, shop.auth, amount, shop.made)


async def _payout(client: httpx.AsyncClient, container: Container, shop: Shop, amount: int) -> str:
    shop.made += 1
    return await settled_payout(client, container, shop.auth, amount, shop.made)


async def _refund(
    client: httpx.AsyncClient, container: Container, shop: Shop, payment_id: str, amount: int
) -> str:
    shop.made += 1
    created = await client.post(
        "/v1/refunds",
        json={"payment_id": payment_id, "amount": amount},
        headers=shop.auth | {"Idempotency-Key": f"r{shop.made}"},
    )
    assert created.status_code == 201, created.text
    refund_id: str = created.json()["id"]
    await settle(container, refund_id)
    return refund_id


async def _operations(client: httpx.AsyncClient, container: Container) -> str:
    """Log someone from operations in: a session from before the clock moved has expired."""
    email = f"operations-{uuid.uuid4().hex[:8]}@bank.example.pk"
    account = await create_account(container, "operations", email=email)
    return await login(client, container, account)


async def _close(client: httpx.AsyncClient, csrf: str, day: str) -> httpx.Response:
    return await client.post(f"{CYCLES}/{day}/close", headers={"X-CSRF-Token": csrf})


async def _closed(client: httpx.AsyncClient, csrf: str, day: str) -> list[dict[str, Any]]:
    response = await _close(client, csrf, day)
    assert response.status_code == 200, response.text
    assert response.json()["business_date"] == day
    settlements: list[dict[str, Any]] = response.json()["settlements"]
    return settlements


async def _settlements(client: httpx.AsyncClient, shop: Shop) -> list[dict[str, Any]]:
    response = await client.get("/v1/settlements", params={"limit": 100}, headers=shop.auth)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _lines(client: httpx.AsyncClient, shop: Shop, settlement_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/settlements/{settlement_id}/lines", params={"limit": 1000}, headers=shop.auth
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _balance(client: httpx.AsyncClient, shop: Shop) -> dict[str, Any]:
    response = await client.get("/v1/balance", headers=shop.auth)
    assert response.status_code == 200, response.text
    balance: dict[str, Any] = response.json()
    return balance


async def _ledger_is_clean(container: Container) -> None:
    async with container.transactions.read() as tx:
        assert await tx.ledger.check() == []


def _ties(settlement: dict[str, Any]) -> None:
    assert settlement["opening_balance"] + settlement["net"] == settlement["closing_balance"], (
        settlement
    )


# -- which cycles close, and when ----------------------------------------------------------


async def test_a_cycle_without_activity_closes_with_no_settlement(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    clock.set(at("2026-11-23", 6))  # Monday: the shop's money moves in Monday's cycle
    shop = await _shop(client, container)
    await _top_up(container, shop, 500_000)

    clock.set(at("2026-11-24", 12, 10))  # Tuesday, after its cut-off
    csrf = await _operations(client, container)
    settlements = await _closed(client, csrf, "2026-11-24")

    assert settlements == []
    listed = await client.get("/operator/v1/settlements")
    assert listed.status_code == 200 and listed.json()["data"] == []
    await shop.sign_in(client)
    assert await _settlements(client, shop) == []
    (closed,) = await audit_rows(container, "settlement.cycle_closed")
    assert closed["target_id"] == "raast:2026-11-24"
    again = await _close(client, csrf, "2026-11-24")
    assert again.status_code == 409 and problem_code(again) == "cycle_already_closed"
    await _ledger_is_clean(container)


@pytest.mark.parametrize(
    "day",
    ["2026-11-28", "2026-11-29", "2026-12-25", "2026-11-09", CONFIGURED_HOLIDAY],
    ids=["saturday", "sunday", "quaid-e-azam-day", "iqbal-day", "configured-holiday"],
)
async def test_a_cycle_on_a_weekend_or_holiday_is_not_a_business_day(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, day: str
) -> None:
    clock.set(at("2027-03-12", 13))  # every one of those days is long over
    csrf = await _operations(client, container)

    refused = await _close(client, csrf, day)

    assert refused.status_code == 409 and problem_code(refused) == "not_a_business_day"
    assert await audit_rows(container, "settlement.cycle_closed") == []
    # The day after the configured holiday is an ordinary Thursday.
    assert (await _close(client, csrf, "2027-03-11")).status_code == 200


async def test_a_cycle_closes_only_after_its_cutoff(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    clock.set(at("2026-11-24", 11, 59, 59))  # 16:59:59 in Karachi
    csrf = await _operations(client, container)

    # Until a minute after the cut-off: a transaction that stamped its entries just before
    # it may still be committing.
    for moment in (at("2026-11-24", 11, 59, 59), at("2026-11-24", 12), at("2026-11-24", 12, 1)):
        clock.set(moment)
        early = await _close(client, csrf, "2026-11-24")
        assert early.status_code == 409 and problem_code(early) == "cycle_not_over", moment
    future = await _close(client, csrf, "2026-11-25")
    assert future.status_code == 409 and problem_code(future) == "cycle_not_over"
    assert await audit_rows(container, "settlement.cycle_closed") == []

    clock.set(at("2026-11-24", 12, 1, 1))
    closed = await _close(client, csrf, "2026-11-24")
    assert closed.status_code == 200, closed.text
    assert closed.json()["period_end"] == "2026-11-24T12:00:00.000Z"
    assert closed.json()["period_start"] == "2026-11-23T12:00:00.000Z"


async def test_a_malformed_business_date_is_refused(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    clock.set(at("2026-11-24", 12, 10))
    shop = await _shop(client, container)
    csrf = await _operations(client, container)

    for bad in ("bad", "2026-02-30", "24/11/2026"):
        listed = await client.get(
            "/v1/settlements", params={"business_date": bad}, headers=shop.auth
        )
        assert listed.status_code == 422, (bad, listed.text)
        assert problem_code(listed) == "validation_error"
        operator = await client.get("/operator/v1/settlements", params={"business_date": bad})
        assert operator.status_code == 422, (bad, operator.text)
    close = await _close(client, csrf, "bad")
    assert close.status_code == 422, close.text
    assert await audit_rows(container, "settlement.cycle_closed") == []


# -- fees -----------------------------------------------------------------------------------


async def test_fees_the_balance_cannot_cover_are_carried_to_the_next_business_day(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    clock.set(at("2026-11-27", 6))  # a Friday: the next business day is Monday
    shop = await _shop(client, container)
    await _top_up(container, shop, 300_000)
    await _payout(client, container, shop, 250_000)  # leaves 50,000; its fee is 100,000

    clock.set(at("2026-11-27", 12, 10))
    csrf = await _operations(client, container)
    (first,) = await _closed(client, csrf, "2026-11-27")

    assert first["fees"] == PAYOUT_FEE
    assert first["fees_charged"] == 50_000 and first["fees_carried_forward"] == 50_000
    assert first["closing_balance"] == 0
    _ties(first)
    await shop.sign_in(client)
    assert (await _balance(client, shop))["available"] == 0  # never below zero
    lines = await _lines(client, shop, first["id"])
    assert lines[-1]["kind"] == "fees_carried_forward" and lines[-1]["fee"] == -50_000
    assert sum(line["fee"] for line in lines) == first["fees_charged"]
    assert sum(line["net"] for line in lines) == first["net"]

    clock.set(at("2026-11-30", 6))  # Monday
    await _top_up(container, shop, 200_000)
    clock.set(at("2026-11-30", 12, 10))
    csrf = await _operations(client, container)
    (second,) = await _closed(client, csrf, "2026-11-30")

    await shop.sign_in(client)
    lines = await _lines(client, shop, second["id"])
    (carried_in,) = [line for line in lines if line["kind"] == "fees_carried_in"]
    assert carried_in["fee"] == 50_000 and carried_in["amount"] == 0
    assert second["fees"] == 50_000 and second["fees_charged"] == 50_000
    assert second["fees_carried_forward"] == 0
    assert second["opening_balance"] == first["closing_balance"]
    assert second["closing_balance"] == 150_000
    _ties(second)
    assert (await _balance(client, shop))["available"] == 150_000
    await _ledger_is_clean(container)


async def test_a_fee_is_not_paid_from_money_that_arrived_after_the_cutoff(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    clock.set(at("2026-11-24", 6))
    shop = await _shop(client, container)
    await _top_up(container, shop, 300_000)
    await _payout(client, container, shop, 250_000)  # 50,000 left at the cut-off
    clock.set(at("2026-11-24", 12, 2))  # after the cut-off: the next cycle's money
    await _top_up(container, shop, 500_000)

    clock.set(at("2026-11-24", 12, 5))
    csrf = await _operations(client, container)
    (settlement,) = await _closed(client, csrf, "2026-11-24")

    _ties(settlement)
    assert settlement["closing_balance"] >= 0, settlement
    assert settlement["fees_carried_forward"] == 50_000


# -- the worker -----------------------------------------------------------------------------


async def test_the_worker_closes_missed_business_days_in_order_and_none_twice(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    service = container.get(SettlementService)
    clock.set(at("2026-11-23", 6))  # Monday
    shop = await _shop(client, container)
    await _top_up(container, shop, 100_000)
    clock.set(at("2026-11-23", 12, 6))  # the cut-off, and five minutes more
    (monday,) = await service.close_due(SYSTEM)
    assert monday.business_date == date(2026, 11, 23) and len(monday.settlements) == 1

    # The worker is down for a week; money moves on some days, one a Saturday.
    for moment, amount in (
        (at("2026-11-24", 6), 10_000),
        (at("2026-11-26", 6), 20_000),
        (at("2026-11-26", 13), 40_000),  # after Thursday's cut-off: Friday's cycle
        (at("2026-11-28", 6), 30_000),  # Saturday: Monday's cycle
    ):
        clock.set(moment)
        await _top_up(container, shop, amount)

    clock.set(at("2026-11-30", 12, 3))  # Monday's cut-off passed, but not five minutes ago
    caught_up = await service.close_due(SYSTEM)
    assert [c.business_date.isoformat() for c in caught_up] == [
        "2026-11-24",
        "2026-11-25",
        "2026-11-26",
        "2026-11-27",
    ]
    clock.set(at("2026-11-30", 12, 6))
    (last,) = await service.close_due(SYSTEM)
    assert last.business_date == date(2026, 11, 30)
    assert await service.close_due(SYSTEM) == []
    clock.set(at("2026-11-30", 13))
    assert await service.close_due(SYSTEM) == []

    settled = {
        c.business_date.isoformat(): [s.other for s in c.settlements] for c in (*caught_up, last)
    }
    assert settled == {
        "2026-11-24": [10_000],
        "2026-11-25": [],
        "2026-11-26": [20_000],
        "2026-11-27": [40_000],
        "2026-11-30": [30_000],
    }
    closed = await audit_rows(container, "settlement.cycle_closed")
    assert [r["target_id"] for r in closed] == [
        f"raast:{day}"
        for day in (
            "2026-11-23",
            "2026-11-24",
            "2026-11-25",
            "2026-11-26",
            "2026-11-27",
            "2026-11-30",
        )
    ]
    await shop.sign_in(client)
    mine = list(reversed(await _settlements(client, shop)))  # oldest first
    assert [s["business_date"] for s in mine] == [
        "2026-11-23",
        "2026-11-24",
        "2026-11-26",
        "2026-11-27",
        "2026-11-30",
    ]
    for before, after in itertools.pairwise(mine):
        assert after["opening_balance"] == before["closing_balance"]
    for settlement in mine:
        _ties(settlement)
    assert mine[-1]["closing_balance"] == (await _balance(client, shop))["available"]


async def test_the_worker_closes_a_day_left_open_before_one_an_operator_closed(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    service = container.get(SettlementService)
    clock.set(at("2026-11-23", 12, 6))
    assert [c.business_date for c in await service.close_due(SYSTEM)] == [date(2026, 11, 23)]
    clock.set(at("2026-11-24", 6))  # Tuesday: the worker is down until Wednesday
    shop = await _shop(client, container)
    await _top_up(container, shop, 10_000)

    clock.set(at("2026-11-25", 12, 2))  # operations tries to close Wednesday at once
    csrf = await _operations(client, container)
    skipped = await _close(client, csrf, "2026-11-25")
    assert skipped.status_code == 409 and problem_code(skipped) == "cycle_out_of_order"
    assert "2026-11-24" in skipped.json()["detail"]
    clock.set(at("2026-11-25", 12, 6))  # and the worker is back: both, in order
    closed = await service.close_due(SYSTEM)
    assert [c.business_date for c in closed] == [date(2026, 11, 24), date(2026, 11, 25)]
    assert [len(c.settlements) for c in closed] == [1, 0]

    again = await _close(client, csrf, "2026-11-24")
    assert again.status_code == 409 and problem_code(again) == "cycle_already_closed"


# -- settlements tie to the ledger, cycle after cycle ----------------------------------------


@pytest.mark.parametrize("closed_late", [False, True], ids=["on-time", "both-next-day"])
async def test_consecutive_settlements_tie_to_the_ledger_and_to_each_other(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock, closed_late: bool
) -> None:
    clock.set(at("2026-11-24", 6))  # Tuesday
    shop = await _shop(client, container)
    await _top_up(container, shop, 1_000_000)
    collected = await _collection(client, container, shop, 50_000)
    await _payout(client, container, shop, 100_000)
    if not closed_late:
        clock.set(at("2026-11-24", 12, 10))
        csrf = await _operations(client, container)
        await _closed(client, csrf, "2026-11-24")

    clock.set(at("2026-11-25", 6))  # Wednesday
    await shop.sign_in(client)
    await _collection(client, container, shop, 30_000)
    await _payout(client, container, shop, 20_000)
    await _refund(client, container, shop, collected, 5_000)
    clock.set(at("2026-11-25", 12, 10))
    csrf = await _operations(client, container)
    if closed_late:
        await _closed(client, csrf, "2026-11-24")
    await _closed(client, csrf, "2026-11-25")

    await shop.sign_in(client)
    second, first = await _settlements(client, shop)  # newest first
    assert (first["business_date"], second["business_date"]) == ("2026-11-24", "2026-11-25")
    assert first["opening_balance"] == 0
    assert first["gross_collections"] == 50_000 and first["payouts"] == 100_000
    assert first["fees"] == first["fees_charged"] == 500 + PAYOUT_FEE
    assert first["closing_balance"] == 1_000_000 + 50_000 - 100_000 - (500 + PAYOUT_FEE)
    assert second["gross_collections"] == 30_000 and second["payouts"] == 20_000
    assert second["refunds"] == 5_000
    assert second["fees"] == second["fees_charged"] == 300 + 2 * PAYOUT_FEE
    for settlement in (first, second):
        _ties(settlement)
        report = await client.get(
            f"/v1/settlements/{settlement['id']}/lines.csv", headers=shop.auth
        )
        assert report.status_code == 200, report.text
        *rows, total = list(csv.DictReader(io.StringIO(report.text)))
        assert total["line"] == "total"
        assert sum(int(r["net"]) for r in rows) == int(total["net"]) == settlement["net"]
        assert sum(int(r["fee"]) for r in rows) == settlement["fees_charged"]
        assert "settlement_fee" not in {r["kind"] for r in rows}  # fees are charged, not lines
    assert second["opening_balance"] == first["closing_balance"]
    balance = await _balance(client, shop)
    assert balance["held"] == 0 and second["closing_balance"] == balance["available"]
    await _ledger_is_clean(container)


# -- what a merchant reads -------------------------------------------------------------------


async def _one_settlement(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> tuple[Shop, dict[str, Any]]:
    clock.set(at("2026-11-24", 6))
    shop = await _shop(client, container)
    await _top_up(container, shop, 1_000_000)
    for amount in (10_000, 20_000, 30_000, 40_000):
        await _collection(client, container, shop, amount)
    clock.set(at("2026-11-24", 12, 10))
    csrf = await _operations(client, container)
    (settlement,) = await _closed(client, csrf, "2026-11-24")
    await shop.sign_in(client)
    return shop, settlement


async def test_a_merchant_cannot_read_another_merchants_settlement(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop, settlement = await _one_settlement(client, container, clock)
    other = await _shop(client, container, name="Another shop")

    for path in ("", "/lines", "/lines.csv"):
        own = await client.get(f"/v1/settlements/{settlement['id']}{path}", headers=shop.auth)
        assert own.status_code == 200, (path, own.text)
        refused = await client.get(f"/v1/settlements/{settlement['id']}{path}", headers=other.auth)
        assert refused.status_code == 404 and problem_code(refused) == "not_found", path
    assert await _settlements(client, other) == []
    filtered = await client.get(
        "/v1/settlements", params={"business_date": "2026-11-24"}, headers=other.auth
    )
    assert filtered.status_code == 200 and filtered.json()["data"] == []


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


async def test_settlement_lines_page_and_refuse_a_malformed_cursor(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop, settlement = await _one_settlement(client, container, clock)
    path = f"/v1/settlements/{settlement['id']}/lines"

    first = await client.get(path, params={"limit": 2}, headers=shop.auth)
    assert first.status_code == 200 and first.json()["has_more"] is True
    rest = await client.get(
        path, params={"limit": 10, "cursor": first.json()["next_cursor"]}, headers=shop.auth
    )
    assert rest.status_code == 200 and rest.json()["has_more"] is False
    seen = [line["line"] for page in (first, rest) for line in page.json()["data"]]
    assert seen == list(range(1, settlement["line_count"] + 1))

    for cursor in (
        "not a cursor!",
        "%%%",
        _cursor(b"[1, 2]"),
        _cursor(b'{"seq": "2"}'),
        _cursor(b'{"seq": -1}'),
        _cursor(b'{"seq": true}'),
        _cursor(b'{"seq": 1, "more": 2}'),
        _cursor(b'{"after": 1}'),
        _cursor(b'{"seq": 99999999999}'),
    ):
        refused = await client.get(path, params={"cursor": cursor}, headers=shop.auth)
        assert refused.status_code == 400, (cursor, refused.text)
        assert problem_code(refused) == "invalid_cursor", cursor


async def test_a_closed_settlement_is_announced_as_settlement_paid(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop, settlement = await _one_settlement(client, container, clock)
    other = await _shop(client, container, name="Another shop")

    events = await client.get("/v1/events", params={"type": "settlement.paid"}, headers=shop.auth)

    assert events.status_code == 200, events.text
    (event,) = events.json()["data"]
    assert event["type"] == "settlement.paid"
    announced = event["data"]["object"]
    assert announced["id"] == settlement["id"] and announced["object"] == "settlement"
    assert announced["net"] == settlement["net"]
    assert announced["closing_balance"] == settlement["closing_balance"]
    theirs = await client.get("/v1/events", params={"type": "settlement.paid"}, headers=other.auth)
    assert theirs.status_code == 200 and theirs.json()["data"] == []


async def test_two_closes_of_one_cycle_at_once_make_one_settlement(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    clock.set(at("2026-11-24", 6))
    shop = await _shop(client, container)
    await _top_up(container, shop, 10_000)
    clock.set(at("2026-11-24", 12, 10))
    csrf = await _operations(client, container)

    answers = await asyncio.gather(*(_close(client, csrf, "2026-11-24") for _ in range(4)))

    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 200 and statuses.count(200) == 1, [a.text for a in answers]
    for answer in answers:
        if answer.status_code != 200:
            # The loser is told the cycle is closed, or to try again: never a 500.
            assert answer.status_code in (409, 503), answer.text
    listed = await client.get("/operator/v1/settlements", params={"business_date": "2026-11-24"})
    assert len(listed.json()["data"]) == 1
