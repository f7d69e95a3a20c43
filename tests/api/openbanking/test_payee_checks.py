"""POST /v1/payee_checks over HTTP: the sandbox bank's titles, masked close matches,
unavailable outside the bank, the scope."""

from __future__ import annotations

import httpx
import pytest
from tests.support.oauth import bearer, make_client, make_tpp_client
from tests.support.open_banking import seed_bank

from amanat.bootstrap import Container


@pytest.fixture
async def merchant_headers(client: httpx.AsyncClient, container: Container) -> dict[str, str]:
    await seed_bank(container)
    merchant = await make_client(container)
    return await bearer(client, merchant, scope="payees:check")


async def check(
    client: httpx.AsyncClient, headers: dict[str, str], key: str, **body: str
) -> httpx.Response:
    return await client.post(
        "/v1/payee_checks", headers={**headers, "Idempotency-Key": key}, json=body
    )


async def test_names_against_the_banks_titles(
    client: httpx.AsyncClient, merchant_headers: dict[str, str]
) -> None:
    ayesha = await check(
        client, merchant_headers, "c1", iban="PK36SCBL0000001123456702", name="Ayesha Khan"
    )
    assert ayesha.status_code == 201, ayesha.text
    assert ayesha.json()["result"] == "match"
    assert ayesha.json()["name_on_account"] is None
    bilal = await check(
        client, merchant_headers, "c2", iban="PK52MEZN0002140100345678", name="Bilal Ahmed"
    )
    assert bilal.json()["result"] == "close_match"
    assert bilal.json()["name_on_account"] == "MU****** BI*** AH***"
    wrong = await check(
        client, merchant_headers, "c3", iban="PK36SCBL0000001123456702", name="Zainab Ali"
    )
    assert wrong.json()["result"] == "no_match"
    by_raast = await check(
        client, merchant_headers, "c4", raast_id="03001234567", name="Ayesha Khan"
    )
    assert by_raast.json()["result"] == "match"


async def test_another_banks_account_is_unavailable_when_the_rail_cannot_say(
    client: httpx.AsyncClient, merchant_headers: dict[str, str]
) -> None:
    # No rail listens in these tests: the title fetch fails, and nothing is guessed (the
    # rail's answers are tested in tests/unit/openbanking/test_services.py).
    other = await check(
        client, merchant_headers, "c5", iban="PK66HABB0000001234567890", name="Someone"
    )
    assert other.status_code == 201, other.text
    assert other.json()["result"] == "unavailable"


async def test_bad_requests_are_refused(
    client: httpx.AsyncClient, merchant_headers: dict[str, str]
) -> None:
    both = await check(
        client,
        merchant_headers,
        "c6",
        iban="PK36SCBL0000001123456702",
        raast_id="03001234567",
        name="Ayesha Khan",
    )
    assert both.status_code == 422
    bad = await check(client, merchant_headers, "c7", iban="PK00SCBL0000001123456702", name="A")
    assert bad.status_code == 422
    assert bad.json()["code"] in ("invalid_iban", "validation_error")


async def test_an_aisp_may_not_check_payees(
    client: httpx.AsyncClient, container: Container
) -> None:
    aisp = await make_client(container, roles=("aisp",))
    headers = await bearer(client, aisp)
    answer = await check(client, headers, "c8", iban="PK36SCBL0000001123456702", name="X")
    assert answer.status_code == 403


async def test_a_pisp_may(client: httpx.AsyncClient, container: Container) -> None:
    await seed_bank(container)
    pisp = await make_tpp_client(container)
    headers = await bearer(client, pisp, scope="payees:check")
    answer = await check(client, headers, "c9", iban="PK36SCBL0000001123456702", name="Ayesha Khan")
    assert answer.json()["result"] == "match"


PAYOUT = {
    "amount": 150000,
    "currency": "PKR",
    "creditor": {"iban": "PK36SCBL0000001123456702", "name": "Ayesha Khan"},
    "reference": "INV-1",
}


async def test_a_partner_can_be_made_to_check_payees_before_paying(
    client: httpx.AsyncClient, container: Container
) -> None:
    from tests.support.oauth import ACTOR, funded_merchant

    await seed_bank(container)
    merchant = await funded_merchant(container, "Careful Ltd")
    await container.partners.set_payee_check_requirement(ACTOR, merchant.partner.id, True)
    headers = await bearer(client, merchant)
    unchecked = await client.post(
        "/v1/payments", headers={**headers, "Idempotency-Key": "pay-1"}, json=PAYOUT
    )
    assert unchecked.status_code == 409, unchecked.text
    assert unchecked.json()["code"] == "payee_check_required"
    wrong = await check(
        client, headers, "chk-1", iban="PK36SCBL0000001123456702", name="Zainab Ali"
    )
    assert wrong.json()["result"] == "no_match"
    still = await client.post(
        "/v1/payments", headers={**headers, "Idempotency-Key": "pay-2"}, json=PAYOUT
    )
    assert still.status_code == 409  # a no_match does not count
    right = await check(
        client, headers, "chk-2", iban="PK36 SCBL 0000 0011 2345 6702", name="Ayesha Khan"
    )
    assert right.json()["result"] == "match"
    paid = await client.post(
        "/v1/payments", headers={**headers, "Idempotency-Key": "pay-3"}, json=PAYOUT
    )
    assert paid.status_code == 201, paid.text
    await container.partners.set_payee_check_requirement(ACTOR, merchant.partner.id, False)
    other = {**PAYOUT, "creditor": {"iban": "PK52MEZN0002140100345678", "name": "Bilal"}}
    free = await client.post(
        "/v1/payments", headers={**headers, "Idempotency-Key": "pay-4"}, json=other
    )
    assert free.status_code == 201, free.text


async def test_a_list_of_names_does_not_fish_out_a_title(
    client: httpx.AsyncClient, merchant_headers: dict[str, str]
) -> None:
    fishing = " ".join(["Ayesha", "Khan", "Bilal", "Ahmed", "Fatima", "Ali", "Hassan"])
    answer = await check(
        client, merchant_headers, "fish", iban="PK36SCBL0000001123456702", name=fishing
    )
    assert answer.json()["result"] == "no_match"
    assert answer.json()["name_on_account"] is None
