"""Open banking end to end: a TPP (httpx) and a bank customer (Debian's Chromium via
Playwright) through the account-information journey against a real server seeded by
``amanat sandbox seed``, with the browser's network fenced to 127.0.0.1.

The TPP asks for a consent, the customer signs in to the sandbox bank, confirms with the
one-time code and allows access to an account, the TPP reads accounts, balances and
transactions. The TPP then asks for a payment consent, the customer approves the payment
from one account, the TPP initiates the payment (signed with the sandbox TPP's key) and
sees it settle over the sandbox Raast rail (the server runs its worker and the rail
embedded, as ``make run`` does). Last, the customer withdraws the account access from
the consent dashboard and the TPP's next read is refused. Every OBIE answer the TPP gets
is checked against the official specification (tests/support/obie_spec.py).

CI installs Chromium with ``apt-get install chromium``; Playwright's own browser downloads
(``playwright install``) are never used.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Route, expect, sync_playwright
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, START_TIMEOUT, server_env
from tests.support.oauth import pkce_pair
from tests.support.obie_spec import validate_response
from tests.support.processes import answers_healthz, free_port, run_amanat, serving

from amanat.openbanking.domain.sandbox_credentials import SANDBOX_PSU_PASSWORD
from amanat.sandbox_seed import sign_as_sandbox_tpp

pytestmark = [
    pytest.mark.e2e,
    # The server under test always runs on its own SQLite file; one pass is enough.
    pytest.mark.sqlite_only,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

AISP = "/open-banking/v3.1/aisp"
PISP = "/open-banking/v3.1/pisp"
SETTLE_TIMEOUT = 60.0  # s: a bound on a hang, never a timing assertion
PSU_USERNAME = "ayesha.khan"
PERMISSIONS = [
    "ReadAccountsDetail",
    "ReadBalances",
    "ReadTransactionsDetail",
    "ReadTransactionsCredits",
    "ReadTransactionsDebits",
]
UI_TIMEOUT = 10_000  # ms: a bound on a hang, never a timing assertion


@dataclass(frozen=True)
class SandboxServer:
    base_url: str
    client_id: str
    client_secret: str
    redirect_uri: str
    credentials: dict[str, Any]
    log: Path


@dataclass
class Tpp:
    """The sandbox TPP app: its credentials and the server it talks to."""

    http: httpx.Client
    server: SandboxServer

    @property
    def auth(self) -> tuple[str, str]:
        return self.server.client_id, self.server.client_secret

    def token(self, data: dict[str, str]) -> dict[str, Any]:
        response = self.http.post("/oauth/token", data=data, auth=self.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["token_type"].lower() == "bearer", body
        return body

    def obie(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """One account-information call; the answer echoes the interaction id and agrees
        with the OBIE specification."""
        interaction = str(uuid.uuid4())
        response = self.http.request(
            method,
            f"{AISP}{path}",
            headers={"authorization": f"Bearer {token}", "x-fapi-interaction-id": interaction},
            json=body,
        )
        assert response.headers.get("x-fapi-interaction-id") == interaction, response.headers
        validate_response(
            "accounts", method, path, response.status_code, response.headers, response.content
        )
        return response


@dataclass
class Browser:
    """The customer's browser: the page, and what the fence and the listeners caught."""

    page: Page
    blocked: list[str]
    errors: list[str]


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A migrated SQLite server seeded by ``amanat sandbox seed`` (sandbox TPP, sandbox
    bank), serving on a free port."""
    workdir = tmp_path_factory.mktemp("e2e-open-banking")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = server_env(
        workdir,
        base_url,
        AMANAT_AUTH__ISSUER=base_url,
        AMANAT_OBSERVABILITY__LOG_JSON="true",
        # As `make run`: the worker and the sandbox Raast rail in the server process.
        AMANAT_WORKER__EMBEDDED="true",
        AMANAT_AUDIT__WITNESS_FILE=str(workdir / "audit-witness.jsonl"),
    )
    run_amanat(["migrate"], env, workdir)
    run_amanat(["sandbox", "seed"], env, workdir)
    tpp = json.loads(Path(env["AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE"]).read_text())["tpp"]
    assert tpp["redirect_uri"] == f"{base_url}/sandbox/oauth/callback", tpp

    log = workdir / "server.log"
    uvicorn = [sys.executable, "-m", "uvicorn", "amanat.asgi:app", "--factory"]
    with serving(
        [*uvicorn, "--host", "127.0.0.1", "--port", str(port)],
        env,
        workdir,
        log,
        ready=lambda: answers_healthz(base_url),
        timeout=START_TIMEOUT,
    ):
        yield SandboxServer(
            base_url=base_url,
            client_id=tpp["client_id"],
            client_secret=tpp["client_secret"],
            redirect_uri=tpp["redirect_uri"],
            credentials=tpp,
            log=log,
        )


@pytest.fixture
def tpp(sandbox_server: SandboxServer) -> Iterator[Tpp]:
    with httpx.Client(base_url=sandbox_server.base_url, timeout=30) as http:
        yield Tpp(http, sandbox_server)


@pytest.fixture
def browser(sandbox_server: SandboxServer) -> Iterator[Browser]:
    """A page whose every request outside 127.0.0.1 is aborted and recorded, and whose
    script errors and console errors are collected."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = chromium.new_context(base_url=sandbox_server.base_url)
            context.set_default_timeout(UI_TIMEOUT)
            blocked: list[str] = []
            errors: list[str] = []

            def fence(route: Route) -> None:
                if urlsplit(route.request.url).hostname == "127.0.0.1":
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            context.route("**/*", fence)
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def on_console(message: ConsoleMessage) -> None:
                # Nothing in this journey should answer 4xx to the browser, so every
                # console error counts (a CSP refusal or a failed load included).
                if message.type == "error":
                    errors.append(message.text)

            page.on("console", on_console)
            yield Browser(page, blocked, errors)
        finally:
            chromium.close()


# -- the steps ------------------------------------------------------------------------------


def tpp_requests_account_access(tpp: Tpp) -> str:
    """Step 1: a client-credentials token, then an account-access consent awaiting the
    customer; returns its ConsentId."""
    token = tpp.token({"grant_type": "client_credentials", "scope": "accounts"})["access_token"]
    response = tpp.obie(
        "POST",
        "/account-access-consents",
        token,
        {"Data": {"Permissions": PERMISSIONS}, "Risk": {}},
    )
    assert response.status_code == 201, response.text
    data = response.json()["Data"]
    assert data["Status"] == "AwaitingAuthorisation", data
    assert sorted(data["Permissions"]) == sorted(PERMISSIONS), data
    consent_id: str = data["ConsentId"]
    assert consent_id
    return consent_id


def psu_signs_in(page: Page) -> None:
    """The bank's sign-in page, then its one-time code page (the sandbox shows the code)."""
    expect(page).to_have_url(re.compile(r"/psu/walks/[^/?]+$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(PSU_USERNAME)
    page.get_by_label("Password").fill(SANDBOX_PSU_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    shown = page.locator("strong[data-code]")
    expect(shown).to_have_text(re.compile(r"^\d{6}$"))
    page.get_by_label("One-time code").fill(shown.inner_text().strip())
    page.get_by_role("button", name="Continue").click()


def open_authorization(page: Page, tpp: Tpp, consent_id: str, scope: str) -> tuple[str, str]:
    """The TPP's authorization request opened in the browser, through sign-in and the
    one-time code; returns (state, code_verifier)."""
    server = tpp.server
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": server.client_id,
            "redirect_uri": server.redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": consent_id,
        }
    )
    page.goto(f"/oauth/authorize?{query}")
    psu_signs_in(page)
    return state, verifier


def back_at_the_tpp(page: Page, tpp: Tpp, state: str) -> str:
    """The TPP's redirect_uri page; returns the authorization code."""
    server = tpp.server
    expect(page).to_have_url(re.compile(rf"^{re.escape(server.redirect_uri)}\?"))
    expect(page.get_by_role("heading", name="Sandbox TPP: authorization answer")).to_be_visible()
    params = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert params.get("state") == state, params
    assert params.get("iss") == server.base_url, params
    assert "error" not in params, params
    assert params.get("code"), params
    return params["code"]


def psu_authorises(page: Page, tpp: Tpp, consent_id: str) -> tuple[str, str]:
    """Step 2: the customer signs in, reviews the request and allows one account.
    Returns (code, code_verifier) from the TPP's redirect_uri."""
    state, verifier = open_authorization(page, tpp, consent_id, "accounts")
    expect(page.get_by_role("heading", name="Review the request")).to_be_visible()
    expect(page.locator("ul.permissions li")).to_have_count(len(PERMISSIONS))
    expect(page.locator("ul.permissions")).to_contain_text("Your account balances")
    expect(page.get_by_text(consent_id, exact=True)).to_be_visible()
    accounts = page.get_by_role("group", name="Choose the accounts to share").get_by_role(
        "checkbox"
    )
    expect(accounts.first).to_be_visible()
    accounts.first.check()
    page.get_by_role("button", name="Allow").click()
    return back_at_the_tpp(page, tpp, state), verifier


def tpp_exchanges_code(tpp: Tpp, code: str, verifier: str) -> str:
    """Step 3a: the code and the PKCE verifier for an access token bound to the consent."""
    tokens = tpp.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": tpp.server.redirect_uri,
            "code_verifier": verifier,
        }
    )
    token: str = tokens["access_token"]
    return token


def tpp_reads_account_information(tpp: Tpp, token: str) -> None:
    """Step 3b: accounts (a Pakistani IBAN), balances (booked and available) and at least
    one transaction of the shared account."""
    accounts = tpp.obie("GET", "/accounts", token)
    assert accounts.status_code == 200, accounts.text
    listed = accounts.json()["Data"]["Account"]
    assert len(listed) == 1, listed  # exactly the one account the customer chose
    account = listed[0]
    assert account["Account"][0]["Identification"].startswith("PK"), account
    account_id = account["AccountId"]

    balances = tpp.obie("GET", f"/accounts/{account_id}/balances", token)
    assert balances.status_code == 200, balances.text
    kinds = {b["Type"] for b in balances.json()["Data"]["Balance"]}
    assert {"InterimBooked", "InterimAvailable"} <= kinds, kinds

    transactions = tpp.obie("GET", f"/accounts/{account_id}/transactions", token)
    assert transactions.status_code == 200, transactions.text
    found = transactions.json()["Data"].get("Transaction", [])
    assert found, transactions.text
    assert all(t["AccountId"] == account_id for t in found)


INITIATION = {
    "InstructionIdentification": "E2E-INSTR-1",
    "EndToEndIdentification": "E2E-E2E-1",
    "LocalInstrument": "PK.SBP.Raast",
    "InstructedAmount": {"Amount": "1500.00", "Currency": "PKR"},
    "CreditorAccount": {
        "SchemeName": "UK.OBIE.IBAN",
        "Identification": "PK52MEZN0002140100345678",
        "Name": "Bilal Ahmed",
    },
    "RemittanceInformation": {"Reference": "Invoice 42"},
}
RISK = {"PaymentContextCode": "PartyToParty"}


def pisp_call(
    tpp: Tpp, method: str, path: str, token: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    """One payment-initiation call: signed with the sandbox TPP's key and keyed when it
    has a body; the answer agrees with the OBIE specification and carries the bank's
    signature."""
    headers = {"authorization": f"Bearer {token}", "x-fapi-interaction-id": str(uuid.uuid4())}
    raw = None
    if body is not None:
        raw = json.dumps(body).encode()
        headers |= {
            "content-type": "application/json",
            "x-idempotency-key": secrets.token_hex(8),
            "x-jws-signature": sign_as_sandbox_tpp(raw, tpp.server.credentials, int(time.time())),
        }
    response = tpp.http.request(method, f"{PISP}{path}", headers=headers, content=raw)
    validate_response(
        "payments", method, path, response.status_code, response.headers, response.content
    )
    if response.content:
        assert response.headers.get("x-jws-signature"), response.headers
    return response


def tpp_requests_a_payment(tpp: Tpp) -> str:
    """Step 4a: a signed payment consent for PKR 1,500.00 to Bilal Ahmed."""
    token = tpp.token({"grant_type": "client_credentials", "scope": "payments"})["access_token"]
    response = pisp_call(
        tpp,
        "POST",
        "/domestic-payment-consents",
        token,
        {"Data": {"Initiation": INITIATION}, "Risk": RISK},
    )
    assert response.status_code == 201, response.text
    consent_id: str = response.json()["Data"]["ConsentId"]
    return consent_id


def psu_approves_the_payment(page: Page, tpp: Tpp, consent_id: str) -> tuple[str, str]:
    """Step 4b: the customer sees the amount and the payee, picks the account to pay
    from, and pays."""
    state, verifier = open_authorization(page, tpp, consent_id, "payments")
    expect(page.get_by_role("heading", name="Review the request")).to_be_visible()
    expect(page.locator("ul.permissions")).to_contain_text("Pay PKR 1500.00 to Bilal Ahmed")
    expect(page.locator("ul.permissions")).to_contain_text("Invoice 42")
    accounts = page.get_by_role("group", name="Pay from").get_by_role("radio")
    accounts.first.check()
    page.get_by_role("button", name="Pay").click()
    return back_at_the_tpp(page, tpp, state), verifier


def tpp_pays_and_sees_it_settle(tpp: Tpp, token: str, consent_id: str) -> None:
    """Step 4c: the signed payment, then its status until the sandbox rail settles it."""
    made = pisp_call(
        tpp,
        "POST",
        "/domestic-payments",
        token,
        {"Data": {"ConsentId": consent_id, "Initiation": INITIATION}, "Risk": RISK},
    )
    assert made.status_code == 201, made.text
    payment_id = made.json()["Data"]["DomesticPaymentId"]
    reader = tpp.token({"grant_type": "client_credentials", "scope": "payments"})["access_token"]
    deadline = time.monotonic() + SETTLE_TIMEOUT
    status = made.json()["Data"]["Status"]
    while status != "AcceptedCreditSettlementCompleted" and time.monotonic() < deadline:
        assert status in ("AcceptedSettlementInProcess", "Pending"), status
        time.sleep(0.25)
        status = pisp_call(tpp, "GET", f"/domestic-payments/{payment_id}", reader).json()["Data"][
            "Status"
        ]
    assert status == "AcceptedCreditSettlementCompleted", status
    details = pisp_call(tpp, "GET", f"/domestic-payments/{payment_id}/payment-details", reader)
    assert details.json()["Data"]["PaymentStatus"][0]["Status"] == status


def psu_withdraws_access(page: Page, consent_id: str) -> None:
    """Step 4: the consent dashboard (signing in again), the consent listed as
    Authorised, withdrawn with its button, then shown Revoked."""
    page.goto("/psu/consents")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Sign in to see the apps")).to_be_visible()
    psu_signs_in(page)

    expect(page).to_have_url(re.compile(r"/psu/consents$"))
    consent = page.locator(f'section[data-consent="{consent_id}"]')
    expect(consent.locator("[data-status]")).to_have_text("Authorised")
    consent.get_by_role("button", name="Withdraw access").click()

    expect(page).to_have_url(re.compile(r"/psu/consents\?withdrawn="))
    expect(page.get_by_role("status")).to_contain_text("Access withdrawn")
    expect(consent.locator("[data-status]")).to_have_text("Revoked")
    expect(consent.get_by_role("button", name="Withdraw access")).to_have_count(0)


def tpp_is_refused(tpp: Tpp, token: str) -> None:
    """Step 5: the withdrawn consent's token reads nothing more."""
    refused = tpp.obie("GET", "/accounts", token)
    assert refused.status_code == 403, refused.text
    errors = refused.json()["Errors"]
    assert errors[0]["ErrorCode"] == "UK.OBIE.Resource.InvalidConsentStatus", errors


# -- the journey ----------------------------------------------------------------------------


def test_a_tpp_reads_accounts_and_pays_until_the_customer_withdraws_access(
    tpp: Tpp, browser: Browser
) -> None:
    page = browser.page

    consent_id = tpp_requests_account_access(tpp)
    code, verifier = psu_authorises(page, tpp, consent_id)
    token = tpp_exchanges_code(tpp, code, verifier)
    tpp_reads_account_information(tpp, token)

    payment_consent = tpp_requests_a_payment(tpp)
    code, verifier = psu_approves_the_payment(page, tpp, payment_consent)
    tpp_pays_and_sees_it_settle(tpp, tpp_exchanges_code(tpp, code, verifier), payment_consent)

    psu_withdraws_access(page, consent_id)
    tpp_is_refused(tpp, token)

    assert browser.blocked == [], f"the bank's pages tried to leave 127.0.0.1: {browser.blocked}"
    assert browser.errors == [], f"browser errors (CSP or script): {browser.errors}"
