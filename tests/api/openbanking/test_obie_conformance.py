"""Schemathesis drives every account-information operation amanat implements with input
generated from the official OBIE v3.1.11 document (specs/obie-v3.1.11/), in process.

The TPP's and the PSU's tokens are real: a consent is created and authorised through the
hosted pages before the run, so resource operations answer with data, not only with
refusals. No generated request may produce a 5xx, and every answer must match the status
codes, headers, content types and schemas the official document gives.
"""

from __future__ import annotations

import json
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.testclient import TestClient
from tests.conftest import make_database
from tests.support.oauth import LOOPBACK_REDIRECT, TPP_ROLES, basic_auth, pkce_pair
from tests.support.obie_spec import SPEC_DIR
from tests.support.open_banking import domestic_initiation, sign_body, tpp_key

from amanat.app import create_app
from amanat.openbanking.adapters.sandbox_bank import SandboxBank
from amanat.openbanking.domain.sandbox_credentials import SANDBOX_PSU_PASSWORD
from amanat.platform.audit.domain import Actor
from amanat.platform.settings import DatabaseSettings, Settings

ACCOUNTS = [
    "CreateAccountAccessConsents",
    "GetAccountAccessConsentsConsentId",
    "DeleteAccountAccessConsentsConsentId",
    "GetAccounts",
    "GetAccountsAccountId",
    "GetAccountsAccountIdBalances",
    "GetAccountsAccountIdTransactions",
    "GetBalances",
    "GetTransactions",
]
FUNDS = [
    "CreateFundsConfirmationConsents",
    "GetFundsConfirmationConsentsConsentId",
    "DeleteFundsConfirmationConsentsConsentId",
    "CreateFundsConfirmations",
]
PAYMENTS = [
    "CreateDomesticPaymentConsents",
    "GetDomesticPaymentConsentsConsentId",
    "GetDomesticPaymentConsentsConsentIdFundsConfirmation",
    "CreateDomesticPayments",
    "GetDomesticPaymentsDomesticPaymentId",
    "GetDomesticPaymentsDomesticPaymentIdPaymentDetails",
]
AYESHA_IBAN = "PK36SCBL0000001123456702"
TESTS = Actor(type="cli", id="obie-conformance")

_tmp = Path(tempfile.mkdtemp(prefix="amanat-obie-"))
_url, _drop = make_database(_tmp)
app = create_app(
    Settings(
        database=DatabaseSettings(url=_url),
        auth={"sandbox_credentials_file": _tmp / "creds.json"},
        crypto={"sandbox_master_key_file": _tmp / "master.key"},
        audit={"witness_file": _tmp / "witness.jsonl"},
    )
)
accounts_schema = schemathesis.openapi.from_path(SPEC_DIR / "account-info-openapi.yaml")
accounts_schema.app = app
accounts_schema = accounts_schema.include(operation_id=ACCOUNTS)
funds_schema = schemathesis.openapi.from_path(SPEC_DIR / "confirmation-funds-openapi.yaml")
funds_schema.app = app
funds_schema = funds_schema.include(operation_id=FUNDS)
payments_schema = schemathesis.openapi.from_path(SPEC_DIR / "payment-initiation-openapi.yaml")
payments_schema.app = app
payments_schema = payments_schema.include(operation_id=PAYMENTS)
TOKENS: dict[str, str] = {}


def _setup(http: TestClient) -> dict[str, str]:
    container = app.state.container

    async def tpp() -> Any:
        await container.protection.ensure_keys(TESTS)
        await container.get(SandboxBank).seed(customers=2, months=1)
        partner = await container.partners.create_partner(
            TESTS, name="Conformance TPP", roles=list(TPP_ROLES), mode="sandbox"
        )
        return await container.partners.create_client(
            TESTS,
            partner.id,
            name="Conformance TPP app",
            redirect_uris=[LOOPBACK_REDIRECT],
            jwks={"keys": [tpp_key().as_dict(private=False)]},
        )

    issued = http.portal.call(tpp)  # type: ignore[union-attr]
    auth = basic_auth(issued.client.id, issued.secret)

    def token(scope: str) -> str:
        answer = http.post(
            "/oauth/token", data={"grant_type": "client_credentials", "scope": scope}, headers=auth
        )
        return str(answer.json()["access_token"])

    def authorised(scope: str, consent: str) -> tuple[str, str]:
        """The PSU's token for ``consent`` after the hosted pages, and the account chosen."""
        verifier, challenge = pkce_pair()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": issued.client.id,
                "redirect_uri": LOOPBACK_REDIRECT,
                "scope": scope,
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "consent_id": consent,
            }
        )
        walk = http.get(f"/oauth/authorize?{query}", follow_redirects=True)
        walk_path = urlsplit(str(walk.url)).path
        page = http.post(
            f"{walk_path}/sign-in",
            data={"username": "ayesha.khan", "password": SANDBOX_PSU_PASSWORD},
        ).text
        code = page.split("<strong data-code>", 1)[1][:6]
        page = http.post(f"{walk_path}/code", data={"code": code}).text
        accounts = [part.split('"', 1)[0] for part in page.split('name="accounts" value="')[1:]]
        back = http.post(
            f"{walk_path}/decision",
            data={"decision": "approve", "accounts": accounts[:1]},
            follow_redirects=False,
        )
        params = parse_qs(urlsplit(back.headers["location"]).query)
        answer = http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": params["code"][0],
                "redirect_uri": LOOPBACK_REDIRECT,
                "code_verifier": verifier,
            },
            headers=auth,
        )
        return str(answer.json()["access_token"]), accounts[0]

    accounts_setup = token("accounts")
    accounts_consent = http.post(
        "/open-banking/v3.1/aisp/account-access-consents",
        headers={"Authorization": f"Bearer {accounts_setup}"},
        json={
            "Data": {
                "Permissions": [
                    "ReadAccountsDetail",
                    "ReadBalances",
                    "ReadTransactionsDetail",
                    "ReadTransactionsCredits",
                    "ReadTransactionsDebits",
                ]
            },
            "Risk": {},
        },
    ).json()["Data"]["ConsentId"]
    accounts_psu, account = authorised("accounts", accounts_consent)
    funds_setup = token("fundsconfirmations")
    funds_consent = http.post(
        "/open-banking/v3.1/cbpii/funds-confirmation-consents",
        headers={"Authorization": f"Bearer {funds_setup}"},
        json={
            "Data": {"DebtorAccount": {"SchemeName": "UK.OBIE.IBAN", "Identification": AYESHA_IBAN}}
        },
    ).json()["Data"]["ConsentId"]
    funds_psu, _account = authorised("fundsconfirmations", funds_consent)
    payments_setup = token("payments")
    consent_body = {"Data": {"Initiation": domestic_initiation("10.00")}, "Risk": {}}
    raw = json.dumps(consent_body).encode()
    payment_consent = http.post(
        "/open-banking/v3.1/pisp/domestic-payment-consents",
        headers={
            "Authorization": f"Bearer {payments_setup}",
            "x-idempotency-key": "conformance-consent",
            "x-jws-signature": sign_body(raw, issued.client.id),
            "content-type": "application/json",
        },
        content=raw,
    ).json()["Data"]["ConsentId"]
    payments_psu, _account = authorised("payments", payment_consent)
    TOKENS["client_id"] = issued.client.id
    return {
        "accounts_setup": accounts_setup,
        "accounts_psu": accounts_psu,
        "account": account,
        "funds_setup": funds_setup,
        "funds_psu": funds_psu,
        "payments_setup": payments_setup,
        "payments_psu": payments_psu,
        "client_id": issued.client.id,
    }


@pytest.fixture(scope="module", autouse=True)
def _world():  # type: ignore[no-untyped-def]
    # Closed before the run: each schemathesis call runs the app's lifespan on a loop of
    # its own, and PostgreSQL connections cannot cross event loops.
    with TestClient(app) as http:
        TOKENS.update(_setup(http))
    yield
    _drop()


SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _call(case: schemathesis.Case, setup: str, psu: str) -> None:
    operation_id = (case.operation.definition.raw or {}).get("operationId", "")
    token = TOKENS[setup] if "Consents" in operation_id else TOKENS[psu]
    meta = case.meta
    if meta is None or not meta.is_negative_at(ParameterLocation.HEADER):
        # The spec's Authorization and interaction id are free strings; a real token and
        # a UUID let the rest of the request reach the operation. A case whose headers
        # are the deliberately invalid part keeps them, and must be refused.
        case.headers = {
            **(case.headers or {}),
            "Authorization": f"Bearer {token}",
            "x-fapi-interaction-id": str(uuid.uuid4()),
        }
    negative_path = meta is not None and meta.is_negative_at(ParameterLocation.PATH)
    # Half the runs read the PSU's real account; the rest, ids outside the consent.
    real_account = zlib.crc32(repr(case.query).encode()) % 2 == 0
    if "AccountId" in (case.path_parameters or {}) and not negative_path and real_account:
        case.path_parameters["AccountId"] = TOKENS["account"]
    headers_negative = meta is not None and meta.is_negative_at(ParameterLocation.HEADER)
    signed = case.method == "POST" and "x-jws-signature" in (case.headers or {})
    if signed and not headers_negative:
        # Payment requests are signed over the exact bytes sent: send those bytes.
        # (A case run again, while hypothesis shrinks a failure, already holds the bytes.)
        raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        case.headers["x-jws-signature"] = sign_body(raw, TOKENS["client_id"])
        case.headers["x-idempotency-key"] = f"k{zlib.crc32(raw)}"
        case.headers["content-type"] = "application/json"
        case.body = raw
        case.media_type = "application/json"
    # Opaque values (ids, dates the bank has no data for) are schema-valid and still
    # refused, so "any schema-valid input is accepted" cannot hold for them.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


@accounts_schema.parametrize()
@SETTINGS
def test_account_information_honours_the_official_contract(case: schemathesis.Case) -> None:
    _call(case, "accounts_setup", "accounts_psu")


@payments_schema.parametrize()
@SETTINGS
def test_payment_initiation_honours_the_official_contract(case: schemathesis.Case) -> None:
    _call(case, "payments_setup", "payments_psu")


@funds_schema.parametrize()
@SETTINGS
def test_confirmation_of_funds_honours_the_official_contract(case: schemathesis.Case) -> None:
    _call(case, "funds_setup", "funds_psu")
