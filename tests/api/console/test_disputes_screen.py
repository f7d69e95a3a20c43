"""The console's disputes screens: operations opens a dispute for a merchant, submits the
merchant's response, decides it; support reads and is refused the actions."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.api.console.test_console import audit_actions, sign_in
from tests.support.oauth import ACTOR, fetch_token, make_client
from tests.support.operators import NewClient, create_account
from tests.support.settled_payments import settled_collection

from amanat.auth.domain import Caller
from amanat.bootstrap import Container


@pytest.fixture
async def http(new_client: NewClient) -> httpx.AsyncClient:
    return new_client()


async def _collection(http: httpx.AsyncClient, container: Container) -> str:
    registered = await make_client(container, name="Dispute Dhaba")
    await container.payments.top_up(Caller(registered.partner.id, None, ACTOR), 1_000_000)
    token = await fetch_token(http, registered)
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    return await settled_collection(http, container, auth, 40_000, 1)


async def test_operations_opens_answers_and_decides_a_dispute(
    http: httpx.AsyncClient, new_client: NewClient, container: Container
) -> None:
    payment_id = await _collection(http, container)
    operations = await create_account(container, "operations")
    csrf = await sign_in(http, container, operations)

    opened = await http.post(
        "/console/disputes",
        data={"csrf_token": csrf, "payment_id": payment_id, "reason": "not_received"},
    )
    assert opened.status_code == 303, opened.text
    dispute_url = opened.headers["location"]
    dispute_id = dispute_url.rsplit("/", 1)[-1]
    page = await http.get(dispute_url)
    assert page.status_code == 200
    assert "needs_response" in page.text and payment_id in page.text
    assert "PKR 400.00" in page.text

    listing = await http.get("/console/disputes", params={"status": "needs_response"})
    assert dispute_id in listing.text

    responded = await http.post(
        f"/console/disputes/{dispute_id}/respond",
        data={"csrf_token": csrf, "explanation": "Delivered on 3 Dec, courier receipt sent."},
    )
    assert responded.status_code == 200, responded.text
    assert re.search(r'class="status under_review">under_review<', responded.text)

    # A decision needs an outcome.
    bad = await http.post(
        f"/console/disputes/{dispute_id}/decide",
        data={"csrf_token": csrf, "outcome": "maybe", "note": "x"},
    )
    assert bad.status_code == 422  # an outcome is checked first
    own = await http.post(
        f"/console/disputes/{dispute_id}/decide",
        data={"csrf_token": csrf, "outcome": "won", "note": "Courier receipt is convincing."},
    )
    assert own.status_code == 409 and "another operator" in own.text.lower()
    colleague_http = new_client()
    colleague = await create_account(container, "operations", email="colleague@bank.example.pk")
    colleague_csrf = await sign_in(colleague_http, container, colleague)
    decided = await colleague_http.post(
        f"/console/disputes/{dispute_id}/decide",
        data={
            "csrf_token": colleague_csrf,
            "outcome": "won",
            "note": "Courier receipt is convincing.",
        },
    )
    assert decided.status_code == 200, decided.text
    assert re.search(r'class="status won">won<', decided.text)
    actions = await audit_actions(container)
    assert {"dispute.opened", "dispute.responded", "dispute.decided"} <= set(actions)

    # The timeline of the payment shows the dispute's steps.
    timeline = await http.get(f"/console/timeline/{payment_id}")
    assert dispute_id in timeline.text

    # Support reads, and may not act.
    support_http = new_client()
    support = await create_account(container, "support")
    support_csrf = await sign_in(support_http, container, support)
    assert (await support_http.get(dispute_url)).status_code == 200
    refused = await support_http.post(
        f"/console/disputes/{dispute_id}/accept", data={"csrf_token": support_csrf}
    )
    assert refused.status_code == 403 and "disputes.write" in refused.text
