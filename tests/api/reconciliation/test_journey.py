"""The issue's journey, as a merchant and an operator meet it: a sandbox day of payments,
the cycle closed, the settlement CSV summing to the ledger; then the bank's camt.053 with
a batch credit and a missing item, the batch matched one-to-many, one break opened,
resolved with a reason, and the resolution in the audit log."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tests.api.identity.test_operator_api import audit_rows, login, problem_code
from tests.support.oauth import ACTOR, RegisteredClient, fetch_token, make_client
from tests.support.operators import create_account
from tests.support.settled_payments import settle, settled_collection, settled_payout
from tests.support.statements import Entry, camt053

from amanat.auth.domain import Caller
from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.platform.settings import Settings, SettlementSettings

DAY = "2026-11-24"  # a Tuesday; the cut-off is 17:00 in Karachi, 12:00 UTC
COLLECTIONS = (50_000, 30_000, 20_000, 10_000)
PAYOUTS = (150_000, 70_000)
REFUND = 5_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"settlement": SettlementSettings(collection_fee_bps=100, payout_fee=500)}
    )


async def _auth(client: httpx.AsyncClient, registered: RegisteredClient) -> dict[str, str]:
    token = await fetch_token(client, registered)
    return {"Authorization": f"Bearer {token['access_token']}"}


async def _day_of_payments(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> dict[str, list[str]]:
    made: dict[str, list[str]] = {"collection": [], "payout": [], "refund": []}
    for n, amount in enumerate(COLLECTIONS):
        made["collection"].append(await settled_collection(client, container, auth, amount, n))
    for n, amount in enumerate(PAYOUTS):
        made["payout"].append(await settled_payout(client, container, auth, amount, n))
    refund = await client.post(
        "/v1/refunds",
        json={"payment_id": made["collection"][0], "amount": REFUND},
        headers=auth | {"Idempotency-Key": "r0"},
    )
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    await settle(container, refund_id)
    made["refund"].append(refund_id)
    return made


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_a_sandbox_day_settles_and_reconciles(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
    merchant = await make_client(container, name="Shop")
    await container.payments.top_up(Caller(merchant.partner.id, None, ACTOR), 1_000_000)
    auth = await _auth(client, merchant)
    made = await _day_of_payments(client, container, auth)

    # -- the operator closes the cycle after the cut-off --------------------------------
    operations = await create_account(container, "operations")
    csrf = await login(client, container, operations)
    early = await client.post(
        f"/operator/v1/settlements/cycles/{DAY}/close", headers={"X-CSRF-Token": csrf}
    )
    assert early.status_code == 409 and problem_code(early) == "cycle_not_over"
    clock.set(datetime(2026, 11, 24, 12, 10, tzinfo=UTC))
    csrf = await login(client, container, operations)  # the morning's session has expired
    closed = await client.post(
        f"/operator/v1/settlements/cycles/{DAY}/close", headers={"X-CSRF-Token": csrf}
    )
    assert closed.status_code == 200, closed.text
    assert len(closed.json()["settlements"]) == 1
    again = await client.post(
        f"/operator/v1/settlements/cycles/{DAY}/close", headers={"X-CSRF-Token": csrf}
    )
    assert again.status_code == 409 and problem_code(again) == "cycle_already_closed"

    # -- the merchant reads its settlement and its CSV ---------------------------------
    auth = await _auth(client, merchant)  # a fresh token: the morning's has expired
    listed = await client.get("/v1/settlements", headers=auth)
    assert listed.status_code == 200, listed.text
    (settlement,) = listed.json()["data"]
    fees = sum(COLLECTIONS) // 100 + 500 * (len(PAYOUTS) + 1)
    assert settlement["business_date"] == DAY and settlement["status"] == "paid"
    assert settlement["gross_collections"] == sum(COLLECTIONS)
    assert settlement["payouts"] == sum(PAYOUTS) and settlement["refunds"] == REFUND
    assert settlement["fees"] == fees and settlement["fees_charged"] == fees
    assert settlement["other"] == 1_000_000  # the sandbox top-up
    balance = (await client.get("/v1/balance", headers=auth)).json()
    assert balance["held"] == 0
    assert settlement["opening_balance"] == 0
    assert settlement["closing_balance"] == balance["available"]
    assert settlement["net"] == settlement["closing_balance"] - settlement["opening_balance"]

    report = await client.get(f"/v1/settlements/{settlement['id']}/lines.csv", headers=auth)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    rows = _csv(report.text)
    lines, total = rows[:-1], rows[-1]
    assert total["line"] == "total"
    assert sum(int(r["net"]) for r in lines) == int(total["net"]) == settlement["net"]
    assert sum(int(r["fee"]) for r in lines) == fees
    assert {r["reference"] for r in lines if r["kind"] == "collection"} == set(made["collection"])
    assert len(lines) == settlement["line_count"] == 1 + 4 + 2 + 1

    paged = await client.get(
        f"/v1/settlements/{settlement['id']}/lines", params={"limit": 3}, headers=auth
    )
    assert paged.status_code == 200 and paged.json()["has_more"] is True
    rest = await client.get(
        f"/v1/settlements/{settlement['id']}/lines",
        params={"limit": 100, "cursor": paged.json()["next_cursor"]},
        headers=auth,
    )
    assert len(paged.json()["data"]) + len(rest.json()["data"]) == len(lines)

    other = await make_client(container, name="Another shop")
    refused = await client.get(
        f"/v1/settlements/{settlement['id']}", headers=await _auth(client, other)
    )
    assert refused.status_code == 404

    events = await client.get("/v1/events", params={"type": "settlement.paid"}, headers=auth)
    assert [e["data"]["object"]["id"] for e in events.json()["data"]] == [settlement["id"]]

    # -- the bank's camt.053: one batch credit missing a collection ---------------------
    collections = list(zip(made["collection"], COLLECTIONS, strict=True))
    batch = collections[:3]
    statement = camt053(
        "STMT-20261125",
        "2026-11-25",
        [
            Entry(
                "BATCH-77",
                "CRDT",
                sum(a for _, a in batch) - 100,
                "2026-11-25",
                DAY,
                batch,
                charges=100,
            ),
            *(
                Entry(f"DBT-{n}", "DBIT", amount, DAY, DAY, [(payment_id, amount)])
                for n, (payment_id, amount) in enumerate(
                    [*zip(made["payout"], PAYOUTS, strict=True), (made["refund"][0], REFUND)]
                )
            ),
        ],
    )
    imported = await client.post(
        "/operator/v1/reconciliation/imports",
        params={"source": "bank_statement", "file_name": "stmt-20261125.xml"},
        content=statement,
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/xml"},
    )
    assert imported.status_code == 201, imported.text
    summary = imported.json()
    assert summary["records"] == 4 and summary["new_records"] == 4
    assert summary["matched"] == 4 and summary["breaks_opened"] == 1
    assert summary["open_breaks"] == {"unmatched_internal": 1}

    matches = await client.get(
        "/operator/v1/reconciliation/matches", params={"import_id": summary["id"]}
    )
    (batch_match,) = [m for m in matches.json()["data"] if m["rule"] == "batch"]
    assert batch_match["external_ids"] == ["BATCH-77"] and batch_match["fees"] == 100
    assert {a["payment_id"] for a in batch_match["allocations"]} == {p for p, _ in batch}

    breaks = await client.get("/operator/v1/reconciliation/breaks")
    (opened,) = breaks.json()["data"]
    missing_id, missing_amount = collections[3]
    assert opened["kind"] == "unmatched_internal" and opened["payment_id"] == missing_id
    assert opened["amount"] == missing_amount and opened["suggested_cause"]
    assert opened["age_seconds"] >= 0

    twice = await client.post(
        "/operator/v1/reconciliation/imports",
        params={"source": "bank_statement"},
        content=statement,
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/xml"},
    )
    assert twice.status_code == 200 and twice.json()["already_imported"] is True
    assert len((await client.get("/operator/v1/reconciliation/breaks")).json()["data"]) == 1

    # -- support reads, but may not resolve --------------------------------------------
    support = await create_account(container, "support")
    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as desk:
        support_csrf = await login(desk, container, support)
        seen = await desk.get(f"/operator/v1/reconciliation/breaks/{opened['id']}")
        assert seen.status_code == 200
        refused = await desk.post(
            f"/operator/v1/reconciliation/breaks/{opened['id']}/resolve",
            json={"resolution": "write_off", "reason": "Bank lost it"},
            headers={"X-CSRF-Token": support_csrf},
        )
        assert refused.status_code == 403 and problem_code(refused) == "forbidden"

    # -- operations resolves it with a reason -------------------------------------------
    no_reason = await client.post(
        f"/operator/v1/reconciliation/breaks/{opened['id']}/resolve",
        json={"resolution": "write_off", "reason": ""},
        headers={"X-CSRF-Token": csrf},
    )
    assert no_reason.status_code == 422
    resolved = await client.post(
        f"/operator/v1/reconciliation/breaks/{opened['id']}/resolve",
        json={"resolution": "write_off", "reason": "Bank confirms the payer's bank reversed it"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resolved.status_code == 200, resolved.text
    body: dict[str, Any] = resolved.json()
    assert body["status"] == "resolved" and body["resolution"] == "write_off"
    assert body["journal_id"] and body["resolved_by"] == operations.id
    repeat = await client.post(
        f"/operator/v1/reconciliation/breaks/{opened['id']}/resolve",
        json={"resolution": "write_off", "reason": "again"},
        headers={"X-CSRF-Token": csrf},
    )
    assert repeat.status_code == 409 and problem_code(repeat) == "break_already_resolved"

    (record,) = await audit_rows(container, "reconciliation.break_resolved")
    assert record["actor_id"] == operations.id and record["target_id"] == opened["id"]
    assert "reversed it" in str(record["payload"])
    async with container.transactions.read() as tx:
        assert await tx.ledger.check() == []
