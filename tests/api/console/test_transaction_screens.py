"""The console's transaction screens over httpx: the timeline with the counterparty masked,
reveal with a reason (audited before decryption), the access log of every view, search,
reveal and refusal, the recovery actions (ask the rail now, send a webhook again, revoke a
consent) and the reconciliation breaks page, each permission-checked."""

from __future__ import annotations

import re

import httpx
import pytest
import sqlalchemy as sa
from tests.api.console.test_console import audit_actions, sign_in
from tests.support.oauth import ACTOR, fetch_token, make_client
from tests.support.operators import NewClient, create_account

from amanat.auth.domain import Caller
from amanat.bootstrap import Container
from amanat.platform.access_log import console_access_log
from amanat.platform.audit.tables import audit_log
from amanat.platform.jobs.tables import outbox

IBAN = "PK36SCBL0000001123456702"
PHONE = "03001234567"
CNIC = "35202-1234567-3"


@pytest.fixture
async def http(new_client: NewClient) -> httpx.AsyncClient:
    return new_client()


async def failed_payout(http: httpx.AsyncClient, container: Container) -> tuple[str, str]:
    """A merchant's customer (IBAN, phone, CNIC) and a payout to them the rail refused.
    Returns the payment id and the partner id."""
    registered = await make_client(container, name="Timeline Traders")
    await container.payments.top_up(Caller(registered.partner.id, None, ACTOR), 10_000_000)
    token = await fetch_token(http, registered)
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    customer = await http.post(
        "/v1/customers",
        json={"name": "Ayesha Khan", "iban": IBAN, "raast_id": PHONE, "cnic": CNIC},
        headers=auth | {"Idempotency-Key": "cust-1"},
    )
    assert customer.status_code == 201, customer.text
    created = await http.post(
        "/v1/payments",
        json={
            "amount": 150_001,
            "currency": "PKR",
            "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
            "reference": "INV-77",
        },
        headers=auth | {"Idempotency-Key": "pay-1"},
    )
    assert created.status_code == 201, created.text
    payment_id: str = created.json()["id"]
    await container.payments.claim_submission(payment_id)
    await container.payments.apply_rail_status(
        payment_id, "rejected", sequence=1, reason_code="AC01", cause="callback"
    )
    return payment_id, registered.partner.id


async def access_rows(container: Container) -> list[dict[str, object]]:
    async with container.db.read() as conn:
        rows = await conn.execute(sa.select(console_access_log).order_by(console_access_log.c.id))
        return [dict(r) for r in rows.mappings().all()]


async def reveal_records(container: Container) -> list[dict[str, object]]:
    await container.audit_integrity.chain_pending()
    async with container.db.read() as conn:
        rows = await conn.execute(
            sa.select(audit_log).where(audit_log.c.action == "data_subject.revealed")
        )
        return [dict(r) for r in rows.mappings().all()]


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


async def test_support_finds_a_failed_payout_by_phone_reads_its_timeline_and_reveals_the_iban(
    http: httpx.AsyncClient, container: Container
) -> None:
    payment_id, _ = await failed_payout(http, container)
    support = await create_account(container, "support")
    csrf = await sign_in(http, container, support)

    found = await http.post("/console/search", data={"csrf_token": csrf, "q": "0300-1234567"})
    assert found.status_code == 200
    assert f"/console/timeline/{payment_id}" in found.text
    assert PHONE not in found.text and "1234567" not in found.text  # searched value masked

    page = await http.get(f"/console/timeline/{payment_id}")
    assert page.status_code == 200
    text = page.text
    assert "failed" in text
    assert "rail_ac01" in text and "/console/playbooks#rail_ac01" in text
    assert IBAN not in text and PHONE not in text and CNIC not in text
    assert 'id="masked-iban"' in text and "6702" in text
    assert "/console/playbooks#" in text

    # No reason: refused, nothing decrypted, nothing audited.
    refused = await http.post(
        f"/console/timeline/{payment_id}/reveal",
        data={"csrf_token": csrf, "fields": "iban", "reason": ""},
    )
    assert refused.status_code == 422
    assert IBAN not in refused.text
    assert await reveal_records(container) == []

    revealed = await http.post(
        f"/console/timeline/{payment_id}/reveal",
        data={"csrf_token": csrf, "fields": "iban", "reason": "TICKET-42 partner asks where"},
    )
    assert revealed.status_code == 200, revealed.text
    assert f'id="revealed-iban">{IBAN}<' in revealed.text
    assert PHONE not in revealed.text  # only what was asked for
    assert revealed.headers["cache-control"] == "no-store"

    records = await reveal_records(container)
    assert len(records) == 1
    record = records[0]
    assert record["actor_type"] == "operator" and record["actor_id"] == support.id
    assert "TICKET-42" in str(record["payload"]) and IBAN not in str(record["payload"])

    log = await access_rows(container)
    kinds = [(r["action"], r["screen"]) for r in log]
    assert ("search", "search") in kinds
    assert ("view", "timeline") in kinds
    assert ("reveal", "timeline") in kinds
    search_row = next(r for r in log if r["action"] == "search")
    assert PHONE not in str(search_row["detail"]) and "phone" in str(search_row["detail"])
    assert all(r["operator_id"] == support.id and r["ip"] for r in log)
    assert all(PHONE not in str(r) and IBAN not in str(r) for r in log)


async def test_the_auditor_reads_the_access_log_and_support_may_not(
    http: httpx.AsyncClient, new_client: NewClient, container: Container
) -> None:
    payment_id, _ = await failed_payout(http, container)
    support = await create_account(container, "support")
    await sign_in(http, container, support)
    assert (await http.get(f"/console/timeline/{payment_id}")).status_code == 200
    denied = await http.get("/console/access")
    assert denied.status_code == 403 and "access_log.read" in denied.text

    auditor_http = new_client()
    auditor = await create_account(container, "auditor")
    await sign_in(auditor_http, container, auditor)
    page = await auditor_http.get("/console/access", params={"operator": support.email})
    assert page.status_code == 200
    assert payment_id in page.text and support.email in page.text
    assert "denied" in page.text  # support's refused attempt is in the log too
    only_views = await auditor_http.get("/console/access", params={"action": "view"})
    assert "denied</span>" not in only_views.text


async def test_auditors_cannot_reveal_and_support_cannot_act(
    http: httpx.AsyncClient, new_client: NewClient, container: Container
) -> None:
    payment_id, _ = await failed_payout(http, container)
    auditor = await create_account(container, "auditor")
    csrf = await sign_in(http, container, auditor)
    page = await http.get(f"/console/timeline/{payment_id}")
    assert page.status_code == 200 and 'id="reveal-form"' not in page.text
    refused = await http.post(
        f"/console/timeline/{payment_id}/reveal",
        data={"csrf_token": csrf, "fields": "iban", "reason": "just curious, sorry"},
    )
    assert refused.status_code == 403 and "personal_data.reveal" in refused.text
    assert IBAN not in refused.text

    support_http = new_client()
    support = await create_account(container, "support")
    csrf = await sign_in(support_http, container, support)
    for path in (
        f"/console/payments/{payment_id}/enquire",
        "/console/events/evt_01JZZZZZZZZZZZZZZZZZZZZZZZ/redeliver",
        "/console/consents/cns_01JZZZZZZZZZZZZZZZZZZZZZZZ/revoke",
        "/console/partners",
        "/console/operators",
    ):
        response = await support_http.post(path, data={"csrf_token": csrf})
        assert response.status_code == 403, path


async def test_reveal_needs_the_csrf_token(http: httpx.AsyncClient, container: Container) -> None:
    payment_id, _ = await failed_payout(http, container)
    support = await create_account(container, "support")
    await sign_in(http, container, support)
    response = await http.post(
        f"/console/timeline/{payment_id}/reveal",
        data={"fields": "iban", "reason": "TICKET-42 partner asks where"},
    )
    assert response.status_code == 403
    assert await reveal_records(container) == []


async def test_operations_asks_the_rail_about_a_stuck_payment(
    http: httpx.AsyncClient, container: Container
) -> None:
    registered = await make_client(container, name="Stuck Stores")
    await container.payments.top_up(Caller(registered.partner.id, None, ACTOR), 10_000_000)
    token = await fetch_token(http, registered)
    created = await http.post(
        "/v1/payments",
        json={"amount": 5_000, "currency": "PKR", "creditor": {"iban": IBAN, "name": "A K"}},
        headers={
            "Authorization": f"Bearer {token['access_token']}",
            "Idempotency-Key": "stuck-1",
        },
    )
    payment_id = created.json()["id"]
    await container.payments.claim_submission(payment_id)
    await container.payments.apply_rail_status(payment_id, "accepted", sequence=1, cause="t")

    operations = await create_account(container, "operations")
    csrf = await sign_in(http, container, operations)
    page = await http.get(f"/console/timeline/{payment_id}")
    assert "Ask the rail now" in page.text
    async with container.db.read() as conn:
        before = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.subject_id == payment_id, outbox.c.kind == "rail.enquire")
            )
        ).scalar_one()
    asked = await http.post(
        f"/console/payments/{payment_id}/enquire",
        data={"csrf_token": csrf, "reason": "partner called"},
    )
    assert asked.status_code == 200, asked.text
    assert "status enquiry is queued" in asked.text
    async with container.db.read() as conn:
        after = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.subject_id == payment_id, outbox.c.kind == "rail.enquire")
            )
        ).scalar_one()
    assert after == before + 1
    assert "payment.enquiry_requested" in await audit_actions(container)

    # A final payment has nothing to ask.
    await container.payments.apply_rail_status(payment_id, "settled", sequence=2, cause="t")
    final = await http.post(
        f"/console/payments/{payment_id}/enquire", data={"csrf_token": csrf, "reason": "x"}
    )
    assert final.status_code == 409


async def test_unknown_ids_are_a_404_page(http: httpx.AsyncClient, container: Container) -> None:
    support = await create_account(container, "support")
    await sign_in(http, container, support)
    for subject in ("pay_nothing", "x" * 65, support.id, "03001234567"):
        response = await http.get(f"/console/timeline/{subject}")
        assert response.status_code == 404
        assert "operator.login_succeeded" not in response.text  # no audit trail this way
    # A value that is not an id is never logged as typed.
    assert all("03001234567" not in str(row) for row in await access_rows(container))


async def test_the_breaks_page_lists_breaks_for_support_and_resolving_needs_write(
    http: httpx.AsyncClient, container: Container
) -> None:
    support = await create_account(container, "support")
    csrf = await sign_in(http, container, support)
    page = await http.get("/console/reconciliation")
    assert page.status_code == 200 and "Reconciliation breaks" in page.text
    refused = await http.post(
        "/console/reconciliation/breaks/rbk_unknown/resolve",
        data={"csrf_token": csrf, "resolution": "write_off", "reason": "test"},
    )
    assert refused.status_code == 403 and "reconciliation.write" in refused.text
