"""The sandbox rail's daily settlement report is exactly what amanat's ``sandbox_rail``
source reads: every transfer that settled or was approved on one Asia/Karachi date, each
with the right direction, amount and end-to-end id, and nothing else."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import httpx

from amanat.kernel.clock import FrozenClock, format_timestamp
from amanat.kernel.pakistan import make_iban
from amanat.reconciliation.domain.csv_import import PROFILES, parse_csv
from amanat.reconciliation.domain.records import Direction, ExternalRecord
from amanat.sandbox_rail.app import create_rail_app
from amanat.sandbox_rail.engine import RailEngine, RailSettings, TransferRequest
from amanat.sandbox_rail.reports import COLUMNS, settlement_report

DAY = date(2026, 11, 24)
PROFILE = PROFILES["sandbox_rail"]


def transfer(
    e2e: str,
    status: str,
    amount: int,
    updated_at: datetime | None,
    *,
    reference: str | None = None,
    currency: str = "PKR",
) -> dict[str, Any]:
    """A transfer as the rail's store gives it back (the fields the report reads, and a
    few it must ignore)."""
    return {
        "end_to_end_id": e2e,
        "kind": "request_to_pay" if status in ("approved", "declined") else "credit_transfer",
        "amount": amount,
        "currency": currency,
        "rail_reference": reference or f"RRN-{e2e}",
        "status": status,
        "created_at": datetime(2026, 11, 23, 0, 0, tzinfo=UTC),
        "updated_at": updated_at,
        "reason_code": None,
        "sequence": 2,
    }


def read(report: str) -> list[ExternalRecord]:
    return parse_csv(report.encode("utf-8"), PROFILE)


def test_the_report_parses_as_the_sandbox_rail_source_with_direction_amount_and_id() -> None:
    payout = transfer("pay_A", "settled", 150_000, datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
    collection = transfer(
        "pay_B", "approved", 1_234_567_89, datetime(2026, 11, 24, 7, 30, 15, tzinfo=UTC)
    )
    small = transfer("re_C", "settled", 5, datetime(2026, 11, 24, 8, 0, tzinfo=UTC))

    report = settlement_report([payout, collection, small], DAY)

    assert report.splitlines()[0] == ",".join(COLUMNS)
    records = read(report)
    assert [
        (r.external_id, r.end_to_end_id, r.direction, r.amount, r.currency) for r in records
    ] == [
        ("RRN-pay_A", "pay_A", Direction.DEBIT, 150_000, "PKR"),
        ("RRN-pay_B", "pay_B", Direction.CREDIT, 1_234_567_89, "PKR"),
        ("RRN-re_C", "re_C", Direction.DEBIT, 5, "PKR"),
    ]
    assert all(r.value_date == DAY and r.fees == 0 and not r.members for r in records)
    assert all(r.batch_reference is None for r in records)


def test_transfers_finished_on_another_karachi_date_are_left_out() -> None:
    records = [
        # 23 Nov 19:30 UTC is 24 Nov 00:30 in Karachi: in.
        transfer("pay_early", "settled", 10_000, datetime(2026, 11, 23, 19, 30, tzinfo=UTC)),
        # 23 Nov 18:59:59 UTC is 23 Nov 23:59:59 in Karachi: out.
        transfer("pay_before", "settled", 10_000, datetime(2026, 11, 23, 18, 59, 59, tzinfo=UTC)),
        # 24 Nov 18:59:59 UTC is 24 Nov 23:59:59 in Karachi: in.
        transfer("pay_late", "approved", 20_000, datetime(2026, 11, 24, 18, 59, 59, tzinfo=UTC)),
        # 24 Nov 19:00 UTC is 25 Nov 00:00 in Karachi: the next day's report.
        transfer("pay_next", "approved", 20_000, datetime(2026, 11, 24, 19, 0, tzinfo=UTC)),
    ]

    today = read(settlement_report(records, DAY))
    tomorrow = read(settlement_report(records, date(2026, 11, 25)))
    yesterday = read(settlement_report(records, date(2026, 11, 23)))

    assert [r.end_to_end_id for r in today] == ["pay_early", "pay_late"]
    assert [r.end_to_end_id for r in tomorrow] == ["pay_next"]
    assert [r.end_to_end_id for r in yesterday] == ["pay_before"]
    assert all(r.value_date == DAY for r in today)


def test_transfers_not_settled_or_approved_are_left_out() -> None:
    moment = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    records = [
        transfer("pay_ok", "settled", 10_000, moment),
        transfer("pay_accepted", "accepted", 10_000, moment),
        transfer("pay_rejected", "rejected", 10_001, moment),
        transfer("pay_declined", "declined", 10_021, moment),
        transfer("pay_expired", "expired", 10_022, moment),
        transfer("pay_unfinished", "settled", 10_000, None),
    ]

    parsed = read(settlement_report(records, DAY))

    assert [r.end_to_end_id for r in parsed] == ["pay_ok"]


def test_a_day_without_transfers_is_a_header_only() -> None:
    report = settlement_report([], DAY)

    assert report == ",".join(COLUMNS) + "\r\n"
    assert read(report) == []


def test_rows_come_in_the_order_the_transfers_finished() -> None:
    records = [
        transfer("pay_3", "settled", 300, datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
        transfer("pay_1", "approved", 100, datetime(2026, 11, 24, 5, 0, tzinfo=UTC)),
        transfer("pay_2", "settled", 200, datetime(2026, 11, 24, 7, 0, tzinfo=UTC)),
    ]

    report = settlement_report(records, DAY)

    assert [r.end_to_end_id for r in read(report)] == ["pay_1", "pay_2", "pay_3"]
    assert format_timestamp(datetime(2026, 11, 24, 5, 0, tzinfo=UTC)) in report


# -- the rail itself: its own transfers, through its HTTP route ----------------------------

CREDITOR_IBAN = str(make_iban("SCBL", "0000001123456702"))


def _request(e2e: str, kind: str, amount: int) -> TransferRequest:
    body: dict[str, Any] = {
        "end_to_end_id": e2e,
        "type": kind,
        "amount": amount,
        "currency": "PKR",
        "creditor": {"iban": CREDITOR_IBAN, "name": "Ayesha Khan"},
        "callback_url": "https://amanat.test/rail/callbacks",
    }
    if kind == "request_to_pay":
        body["debtor"] = {"raast_id": "03001234567"}
    return TransferRequest.model_validate(body)


async def _instant(_: float) -> None:
    await asyncio.sleep(0)


async def test_the_rails_report_route_serves_its_settled_transfers() -> None:
    clock = FrozenClock(datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
    callbacks = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    settings = RailSettings(
        callback_secret="rail-callback-secret",
        admin_token="admin-token",
        settle_delay=0,
        clock=clock,
        sleep=_instant,
        http=callbacks,
    )
    app = create_rail_app(settings)
    engine: RailEngine = app.state.rail_engine
    transport = httpx.ASGITransport(app=app)
    try:
        for e2e, kind, amount in (
            ("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1A", "credit_transfer", 150_000),  # settled
            ("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1B", "request_to_pay", 75_000),  # approved
            ("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1C", "credit_transfer", 150_001),  # rejected
        ):
            await engine.submit(_request(e2e, kind, amount))
        await engine.drain()
        async with httpx.AsyncClient(transport=transport, base_url="http://rail") as http:
            response = await http.get("/v1/reports/settlement", params={"date": "2026-11-24"})
            other_day = await http.get("/v1/reports/settlement", params={"date": "2026-11-25"})
            bad = await http.get("/v1/reports/settlement", params={"date": "24/11/2026"})
    finally:
        await engine.aclose()
        await callbacks.aclose()

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    records = parse_csv(response.content, PROFILE)
    assert {(r.end_to_end_id, r.direction, r.amount) for r in records} == {
        ("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1A", Direction.DEBIT, 150_000),
        ("pay_01JD8Y7X3M5T2K9Q4R6W8Z0B1B", Direction.CREDIT, 75_000),
    }
    assert all(r.external_id.startswith("RRN") and r.value_date == DAY for r in records)
    assert other_day.status_code == 200 and parse_csv(other_day.content, PROFILE) == []
    assert bad.status_code == 400
