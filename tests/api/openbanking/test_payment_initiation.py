"""Payment initiation end to end over HTTP, on both databases: a signed, keyed payment
consent; the customer authorising the payment from one account; the payment paid as a
Raast payout through the payments core, the customer's account debited in the same
unit of work; every request and answer checked against the official specification."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import KeySet
from joserfc.registry import HeaderParameter
from tests.support.oauth import RegisteredClient, bearer
from tests.support.open_banking import (
    PISP,
    authorise,
    domestic_initiation,
    make_signing_tpp,
    obie,
    pisp,
    seed_bank,
    sign_body,
)

from amanat.bootstrap import Container
from amanat.openbanking.adapters.sandbox_bank import SandboxBank

RISK = {"PaymentContextCode": "PartyToParty"}


@pytest.fixture
async def tpp(container: Container) -> RegisteredClient:
    await seed_bank(container)
    return await make_signing_tpp(container)


async def consent_for(
    client: httpx.AsyncClient, tpp: RegisteredClient, initiation: dict[str, Any], key: str
) -> httpx.Response:
    return await pisp(
        client,
        tpp,
        "POST",
        "/domestic-payment-consents",
        await bearer(client, tpp, scope="payments"),
        {"Data": {"Initiation": initiation}, "Risk": RISK},
        idempotency_key=key,
    )


async def bank_signature_verifies(client: httpx.AsyncClient, response: httpx.Response) -> None:
    keys = KeySet.import_key_set((await client.get("/.well-known/jwks.json")).json())
    signature = response.headers["x-jws-signature"]
    jws.deserialize_compact(
        signature,
        keys,
        algorithms=["ES256"],
        payload=response.content,
        registry=jws.JWSRegistry(
            header_registry={
                name: HeaderParameter(name, lambda _value: None, True)
                for name in (
                    "http://openbanking.org.uk/iat",
                    "http://openbanking.org.uk/iss",
                    "http://openbanking.org.uk/tan",
                )
            }
        ),
    )


async def ayesha_balance(container: Container, account_id: str) -> int:
    (balance,) = await container.get(SandboxBank).balances((account_id,))
    return balance.booked_minor


async def test_a_customer_pays_through_a_pisp(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    initiation = domestic_initiation("1500.00")
    created = await consent_for(client, tpp, initiation, "consent-key-1")
    assert created.status_code == 201, created.text
    await bank_signature_verifies(client, created)
    consent_id = created.json()["Data"]["ConsentId"]
    assert created.json()["Data"]["Initiation"] == initiation

    again = await consent_for(client, tpp, initiation, "consent-key-1")
    assert again.status_code == 201 and again.json()["Data"]["ConsentId"] == consent_id
    other = await consent_for(client, tpp, domestic_initiation("2.00"), "consent-key-1")
    assert other.status_code == 400
    assert other.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Header.Invalid"

    tokens = await authorise(client, tpp, consent_id, scope="payments", accounts=1)
    psu = {"Authorization": f"Bearer {tokens['access_token']}"}
    funds = await obie(
        client,
        "payments",
        "GET",
        f"/domestic-payment-consents/{consent_id}/funds-confirmation",
        psu,
        base=PISP,
    )
    assert funds.json()["Data"]["FundsAvailableResult"]["FundsAvailable"] is True

    account_id = await _authorised_account(container, consent_id)
    before = await ayesha_balance(container, account_id)
    body = {"Data": {"ConsentId": consent_id, "Initiation": initiation}, "Risk": RISK}
    paid = await pisp(client, tpp, "POST", "/domestic-payments", psu, body, idempotency_key="pay-1")
    assert paid.status_code == 201, paid.text
    await bank_signature_verifies(client, paid)
    payment = paid.json()["Data"]
    assert payment["Status"] == "AcceptedSettlementInProcess"
    assert payment["ConsentId"] == consent_id
    assert await ayesha_balance(container, account_id) == before - 150000
    assert await container.payments.check_ledger() == []

    replayed = await pisp(
        client, tpp, "POST", "/domestic-payments", psu, body, idempotency_key="pay-1"
    )
    assert replayed.json()["Data"]["DomesticPaymentId"] == payment["DomesticPaymentId"]
    twice = await pisp(
        client, tpp, "POST", "/domestic-payments", psu, body, idempotency_key="pay-2"
    )
    assert twice.status_code == 403
    assert twice.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Resource.InvalidConsentStatus"
    assert await ayesha_balance(container, account_id) == before - 150000

    setup = await bearer(client, tpp, scope="payments")
    read = await obie(
        client,
        "payments",
        "GET",
        f"/domestic-payments/{payment['DomesticPaymentId']}",
        setup,
        base=PISP,
    )
    assert read.json()["Data"]["Initiation"] == initiation
    details = await obie(
        client,
        "payments",
        "GET",
        f"/domestic-payments/{payment['DomesticPaymentId']}/payment-details",
        setup,
        base=PISP,
    )
    assert (
        details.json()["Data"]["PaymentStatus"][0]["PaymentTransactionId"]
        == payment["DomesticPaymentId"]
    )
    consent = await obie(
        client, "payments", "GET", f"/domestic-payment-consents/{consent_id}", setup, base=PISP
    )
    assert consent.json()["Data"]["Status"] == "Consumed"


async def _authorised_account(container: Container, consent_id: str) -> str:
    from amanat.openbanking.services.consents import ConsentService

    consent = await container.get(ConsentService).opened(consent_id)
    assert consent is not None
    return consent.account_ids[0]


async def test_a_payment_the_account_cannot_cover_changes_nothing(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    # One rupee more than the account holds (within the PISP's limit): the account the
    # customer pays from is their first, bac_0001.
    short = await ayesha_balance(container, "bac_0001") + 100
    initiation = domestic_initiation(f"{short // 100}.{short % 100:02d}")
    consent_id = (await consent_for(client, tpp, initiation, "big-1")).json()["Data"]["ConsentId"]
    tokens = await authorise(client, tpp, consent_id, scope="payments", accounts=1)
    psu = {"Authorization": f"Bearer {tokens['access_token']}"}
    account_id = await _authorised_account(container, consent_id)
    before = await ayesha_balance(container, account_id)
    body = {"Data": {"ConsentId": consent_id, "Initiation": initiation}, "Risk": RISK}
    refused = await pisp(
        client, tpp, "POST", "/domestic-payments", psu, body, idempotency_key="big-pay"
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["Errors"][0]["ErrorCode"] == "PK.AMANAT.InsufficientFunds"
    assert await ayesha_balance(container, account_id) == before
    setup = await bearer(client, tpp, scope="payments")
    consent = await obie(
        client, "payments", "GET", f"/domestic-payment-consents/{consent_id}", setup, base=PISP
    )
    assert consent.json()["Data"]["Status"] == "Authorised"
    assert await container.payments.check_ledger() == []


async def test_the_payment_must_be_exactly_what_the_customer_authorised(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    initiation = domestic_initiation("100.00")
    consent_id = (await consent_for(client, tpp, initiation, "exact-1")).json()["Data"]["ConsentId"]
    tokens = await authorise(client, tpp, consent_id, scope="payments", accounts=1)
    psu = {"Authorization": f"Bearer {tokens['access_token']}"}
    changed = domestic_initiation("100.00", EndToEndIdentification="E2E-OTHER")
    body = {"Data": {"ConsentId": consent_id, "Initiation": changed}, "Risk": RISK}
    refused = await pisp(
        client, tpp, "POST", "/domestic-payments", psu, body, idempotency_key="exact-pay"
    )
    assert refused.status_code == 403
    assert refused.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Resource.ConsentMismatch"


async def test_unsigned_or_tampered_requests_are_refused(
    client: httpx.AsyncClient, tpp: RegisteredClient
) -> None:
    headers = await bearer(client, tpp, scope="payments")
    body = {"Data": {"Initiation": domestic_initiation()}, "Risk": RISK}
    raw = httpx.Request("POST", "http://x", json=body).content
    common = {**headers, "x-idempotency-key": "sig-1", "content-type": "application/json"}
    url = f"{PISP}/domestic-payment-consents"
    missing = await client.post(url, headers=common, content=raw)
    assert missing.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Signature.Missing"
    tampered = await client.post(
        url,
        headers={**common, "x-jws-signature": sign_body(raw.replace(b"1500", b"9500"), tpp.id)},
        content=raw,
    )
    assert tampered.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Signature.Invalid"
    not_me = await client.post(
        url, headers={**common, "x-jws-signature": sign_body(raw, "cli_someone_else")}, content=raw
    )
    assert not_me.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Signature.InvalidClaim"
    stale = await client.post(
        url,
        headers={**common, "x-jws-signature": sign_body(raw, tpp.id, iat=1_000_000_000)},
        content=raw,
    )
    assert stale.json()["Errors"][0]["ErrorCode"] == "UK.OBIE.Signature.InvalidClaim"
    for answer in (missing, tampered, not_me, stale):
        assert answer.status_code == 400
        assert answer.headers["x-jws-signature"]  # the bank signs its refusals too


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            {"InstructedAmount": {"Amount": "10.00", "Currency": "USD"}},
            "UK.OBIE.Unsupported.Currency",
        ),
        ({"LocalInstrument": "UK.OBIE.FPS"}, "UK.OBIE.Unsupported.LocalInstrument"),
        (
            {
                "CreditorAccount": {
                    "SchemeName": "UK.OBIE.SortCodeAccountNumber",
                    "Identification": "11223321325698",
                    "Name": "X",
                }
            },
            "UK.OBIE.Unsupported.AccountIdentifier",
        ),
        (
            {
                "CreditorAccount": {
                    "SchemeName": "UK.OBIE.IBAN",
                    "Identification": "PK00MEZN0002140100345678",
                    "Name": "X",
                }
            },
            "UK.OBIE.Field.Invalid",
        ),
    ],
)
async def test_what_amanat_cannot_pay_is_refused_at_the_consent(
    client: httpx.AsyncClient, tpp: RegisteredClient, change: dict[str, Any], code: str
) -> None:
    response = await consent_for(client, tpp, domestic_initiation(**change), f"bad-{code[-12:]}")
    assert response.status_code == 400, response.text
    assert response.json()["Errors"][0]["ErrorCode"] == code


async def test_a_payout_that_ends_unpaid_gives_the_customer_their_money_back(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    initiation = domestic_initiation("250.00")
    consent_id = (await consent_for(client, tpp, initiation, "ret-1")).json()["Data"]["ConsentId"]
    tokens = await authorise(client, tpp, consent_id, scope="payments", accounts=1)
    psu = {"Authorization": f"Bearer {tokens['access_token']}"}
    account_id = await _authorised_account(container, consent_id)
    before = await ayesha_balance(container, account_id)
    body = {"Data": {"ConsentId": consent_id, "Initiation": initiation}, "Risk": RISK}
    paid = await pisp(
        client, tpp, "POST", "/domestic-payments", psu, body, idempotency_key="ret-pay"
    )
    payment_id = paid.json()["Data"]["DomesticPaymentId"]
    assert await ayesha_balance(container, account_id) == before - 25000

    # The rail refuses it (what the submit job does on a rejection): with that change the
    # money leaves the PISP's balance, never spendable there; then the worker returns it.
    await container.payments.fail_submission(payment_id, "rail_rejected", "Account closed.")
    assert (await container.payments.balance(tpp.partner.id)).available == 0
    assert await container.payments.check_ledger() == []
    runtime = container.job_runtime()
    while await runtime.run_once():
        pass

    assert await ayesha_balance(container, account_id) == before
    assert await container.payments.check_ledger() == []
    balance = await container.payments.balance(tpp.partner.id)
    assert balance.available == 0  # nothing of the customer's money stays with the PISP
    setup = await bearer(client, tpp, scope="payments")
    read = await obie(
        client, "payments", "GET", f"/domestic-payments/{payment_id}", setup, base=PISP
    )
    assert read.json()["Data"]["Status"] == "Rejected"
    # Running the jobs again changes nothing more.
    while await runtime.run_once():
        pass
    assert await ayesha_balance(container, account_id) == before


async def test_a_pisp_that_is_also_a_merchant_cannot_cancel_or_forge_a_customer_payment(
    client: httpx.AsyncClient, container: Container
) -> None:
    from tests.support.oauth import make_client, tpp_key_jwks
    from tests.support.open_banking import sign_at_server_time

    await seed_bank(container)
    sign_at_server_time(container)
    both = await make_client(
        container,
        roles=("merchant", "pisp"),
        name="Both Ltd",
        redirect_uris=["http://127.0.0.1:8765/callback"],
        jwks=tpp_key_jwks(),
    )
    initiation = domestic_initiation("100.00")
    consent_id = (await consent_for(client, both, initiation, "both-1")).json()["Data"]["ConsentId"]
    tokens = await authorise(client, both, consent_id, scope="payments", accounts=1)
    psu = {"Authorization": f"Bearer {tokens['access_token']}"}
    body = {"Data": {"ConsentId": consent_id, "Initiation": initiation}, "Risk": RISK}
    paid = await pisp(client, both, "POST", "/domestic-payments", psu, body, idempotency_key="b1")
    payment_id = paid.json()["Data"]["DomesticPaymentId"]
    merchant = await bearer(client, both, scope="payments:write")
    cancel = await client.post(
        f"/v1/payments/{payment_id}/cancel", headers={**merchant, "Idempotency-Key": "c1"}
    )
    assert cancel.status_code == 409, cancel.text
    assert cancel.json()["code"] == "payment_not_cancelable"
    forged = await client.post(
        "/v1/payments",
        headers={**merchant, "Idempotency-Key": "f1"},
        json={
            "amount": 100,
            "currency": "PKR",
            "creditor": {"iban": "PK52MEZN0002140100345678", "name": "Bilal Ahmed"},
            "metadata": {"obie_consent_id": consent_id},
        },
    )
    assert forged.status_code == 422, forged.text


async def test_an_authorised_payment_consent_is_not_a_standing_permission(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    from amanat.kernel.clock import FrozenClock

    initiation = domestic_initiation("100.00")
    consent_id = (await consent_for(client, tpp, initiation, "late-1")).json()["Data"]["ConsentId"]
    tokens = await authorise(client, tpp, consent_id, scope="payments", accounts=1)
    psu = {"Authorization": f"Bearer {tokens['access_token']}"}
    clock = container.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(minutes=61)
    body = {"Data": {"ConsentId": consent_id, "Initiation": initiation}, "Risk": RISK}
    late = await pisp(client, tpp, "POST", "/domestic-payments", psu, body, idempotency_key="l1")
    assert late.status_code in (401, 403), late.text
    setup = await bearer(client, tpp, scope="payments")
    read = await obie(
        client, "payments", "GET", f"/domestic-payment-consents/{consent_id}", setup, base=PISP
    )
    assert read.json()["Data"]["Status"] == "Rejected"


async def test_a_payment_over_the_pisps_limit_is_refused_before_the_customer_is_asked(
    client: httpx.AsyncClient, container: Container, tpp: RegisteredClient
) -> None:
    from tests.support.oauth import ACTOR

    await container.partners.set_transaction_limit(ACTOR, tpp.partner.id, 5_000)  # PKR 50
    refused = await consent_for(client, tpp, domestic_initiation("100.00"), "over-1")
    assert refused.status_code == 400, refused.text
    error = refused.json()["Errors"][0]
    assert error["Path"] == "Data.Initiation.InstructedAmount.Amount"
    allowed = await consent_for(client, tpp, domestic_initiation("50.00"), "under-1")
    assert allowed.status_code == 201, allowed.text
