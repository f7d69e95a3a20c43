"""Confirmation of funds end to end over HTTP: a CBPII's consent naming the customer's
IBAN, the customer's authorisation of exactly that account, yes-or-no answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.support.oauth import RegisteredClient, bearer, make_tpp_client
from tests.support.open_banking import (
    CBPII,
    authorise,
    create_funds_consent,
    obie,
    offered_accounts,
    sandbox_code,
    seed_bank,
    start_walk,
)

from amanat.bootstrap import Container
from amanat.openbanking.domain.sandbox_credentials import SANDBOX_PSU_PASSWORD


@pytest.fixture
async def tpp(container: Container) -> RegisteredClient:
    await seed_bank(container)
    return await make_tpp_client(container)


def ask(consent_id: str, amount: str, currency: str = "PKR") -> dict[str, Any]:
    return {
        "Data": {
            "ConsentId": consent_id,
            "Reference": "Order 1182",
            "InstructedAmount": {"Amount": amount, "Currency": currency},
        }
    }


async def test_a_cbpii_hears_yes_or_no_and_never_the_balance(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    created = await create_funds_consent(client, tpp)
    consent_id = created["Data"]["ConsentId"]
    assert created["Data"]["DebtorAccount"]["Identification"] == "PK36SCBL0000001123456702"
    tokens = await authorise(client, tpp, consent_id, scope="fundsconfirmations")
    psu = {"Authorization": f"Bearer {tokens['access_token']}"}

    yes = await obie(
        client, "funds", "POST", "/funds-confirmations", psu, ask(consent_id, "1.00"), base=CBPII
    )
    assert yes.status_code == 201, yes.text
    assert yes.json()["Data"]["FundsAvailable"] is True
    assert "Balance" not in yes.text
    no = await obie(
        client,
        "funds",
        "POST",
        "/funds-confirmations",
        psu,
        ask(consent_id, "9999999999.00"),
        base=CBPII,
    )
    assert no.json()["Data"]["FundsAvailable"] is False

    other = await obie(
        client, "funds", "POST", "/funds-confirmations", psu, ask("cns_other", "1.00"), base=CBPII
    )
    assert other.status_code == 403
    usd = await obie(
        client,
        "funds",
        "POST",
        "/funds-confirmations",
        psu,
        ask(consent_id, "1.00", "USD"),
        base=CBPII,
    )
    assert usd.status_code == 400
    assert usd.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Unsupported.Currency"

    setup = await bearer(client, tpp, scope="fundsconfirmations")
    read = await obie(
        client, "funds", "GET", f"/funds-confirmation-consents/{consent_id}", setup, base=CBPII
    )
    assert read.json()["Data"]["Status"] == "Authorised"
    gone = await obie(
        client, "funds", "DELETE", f"/funds-confirmation-consents/{consent_id}", setup, base=CBPII
    )
    assert gone.status_code == 204
    after = await obie(
        client, "funds", "POST", "/funds-confirmations", psu, ask(consent_id, "1.00"), base=CBPII
    )
    assert after.status_code == 403

    await container.audit_integrity.chain_pending()
    async with container.transactions.read() as tx:
        page = await tx.audit.list_records(10, None, "funds.confirmed", consent_id)
    assert [r.payload["available"] for r in reversed(page.items)] == [True, False]


async def test_only_the_named_account_can_be_authorised(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    # Ayesha's IBAN, but Bilal signs in: he cannot allow it.
    created = await create_funds_consent(client, tpp)
    walk, _verifier = await start_walk(
        client, tpp, created["Data"]["ConsentId"], scope="fundsconfirmations"
    )
    walk_id = walk.location.rsplit("/", 1)[1]
    page = await walk.post(
        f"/psu/walks/{walk_id}/sign-in",
        {"username": "bilal.ahmed", "password": SANDBOX_PSU_PASSWORD},
    )
    decision = await walk.post(f"/psu/walks/{walk_id}/code", {"code": sandbox_code(page.text)})
    assert offered_accounts(decision.text) == []
    assert "not one of your accounts" in decision.text
    assert 'value="approve"' not in decision.text
    forced = await walk.post(
        f"/psu/walks/{walk_id}/decision", {"decision": "approve", "accounts": ["bac_0003"]}
    )
    assert forced.status_code == 400
    setup = await bearer(client, tpp, scope="fundsconfirmations")
    status = await obie(
        client,
        "funds",
        "GET",
        f"/funds-confirmation-consents/{created['Data']['ConsentId']}",
        setup,
        base=CBPII,
    )
    assert status.json()["Data"]["Status"] == "AwaitingAuthorisation"


@pytest.mark.parametrize(
    ("account", "code"),
    [
        (
            {"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "11223321325698"},
            "UK.OBIE.Unsupported.AccountIdentifier",
        ),
        (
            {"SchemeName": "UK.OBIE.IBAN", "Identification": "PK00SCBL0000001123456702"},
            "UK.OBIE.Field.Invalid",
        ),
    ],
)
async def test_a_consent_must_name_a_valid_pakistani_iban(
    client: httpx.AsyncClient, tpp: RegisteredClient, account: dict[str, str], code: str
) -> None:
    setup = await bearer(client, tpp, scope="fundsconfirmations")
    response = await obie(
        client,
        "funds",
        "POST",
        "/funds-confirmation-consents",
        setup,
        {"Data": {"DebtorAccount": account}},
        base=CBPII,
    )
    assert response.status_code == 400
    assert response.json()["Errors"][0]["ErrorCode"] == code
