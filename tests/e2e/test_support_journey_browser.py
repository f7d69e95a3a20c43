"""The support journey of the operator console in a real browser, against the sandbox as
``make run`` serves it (API, embedded worker and sandbox rail in one process):

support signs in, finds a failed sandbox payout by the customer's phone number, reads its
timeline, reveals the IBAN with a reason and finds that reveal in the access log through
the auditor; the auditor sees it; support tries an admin action and is refused. The
timeline, the dashboard and the access log are saved as screenshots
(``$AMANAT_ARTIFACTS_DIR`` or ``var/test-artifacts/``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, START_TIMEOUT, server_env
from tests.support.paths import REPO
from tests.support.processes import answers_healthz, free_port, run_amanat, serving

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sqlite_only,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

PASSWORD = "e2e support journey 2026"
IBAN = "PK36SCBL0000001123456702"
PHONE = "03001234567"
CNIC = "35202-1234567-3"
ARTIFACTS = Path(os.environ.get("AMANAT_ARTIFACTS_DIR", REPO / "var" / "test-artifacts"))


@dataclass(frozen=True)
class Operator:
    email: str
    totp_secret: str


@dataclass(frozen=True)
class Sandbox:
    base_url: str
    payment_id: str
    support: Operator
    auditor: Operator
    # Each test signs in as its own operator: a TOTP code is accepted once, so a second
    # sign-in of the same account within 30 seconds would be refused as a replay.
    support_b: Operator
    operations: Operator


def _json_block(output: str) -> dict[str, Any]:
    match = re.search(r"^\{$.*?^\}$", output, flags=re.MULTILINE | re.DOTALL)
    assert match, output
    data: dict[str, Any] = json.loads(match.group(0))
    return data


def _operator(env: dict[str, str], workdir: Path, email: str, role: str) -> Operator:
    created = _json_block(
        run_amanat(
            [
                "operators",
                "create",
                "--email",
                email,
                "--name",
                f"E2E {role}",
                "--role",
                role,
                "--password-stdin",
            ],
            env,
            workdir,
            stdin=PASSWORD + "\n",
        ).stdout
    )
    return Operator(email=email, totp_secret=str(created["totp_secret"]))


def _failed_payout(base_url: str, credentials: dict[str, Any]) -> str:
    """As the sandbox merchant: a customer with IBAN, phone and CNIC, and a payout to them
    whose amount ends in 01 (the sandbox rail refuses it: invalid account)."""
    merchant = credentials["merchant"]
    with httpx.Client(base_url=base_url, timeout=10) as http:
        token = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(merchant["client_id"], merchant["client_secret"]),
        )
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        customer = http.post(
            "/v1/customers",
            json={"name": "Ayesha Khan", "iban": IBAN, "raast_id": PHONE, "cnic": CNIC},
            headers=auth | {"Idempotency-Key": "e2e-customer"},
        )
        assert customer.status_code == 201, customer.text
        created = http.post(
            "/v1/payments",
            json={
                "amount": 250_001,
                "currency": "PKR",
                "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
                "reference": "E2E-SUPPORT",
            },
            headers=auth | {"Idempotency-Key": "e2e-payout"},
        )
        assert created.status_code == 201, created.text
        payment_id: str = created.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = http.get(f"/v1/payments/{payment_id}", headers=auth).json()["status"]
            if status == "failed":
                return payment_id
            time.sleep(0.25)
    raise AssertionError(f"payout {payment_id} never failed (last status {status})")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    workdir = tmp_path_factory.mktemp("e2e-sandbox")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = server_env(
        workdir,
        base_url,
        AMANAT_AUTH__ISSUER=base_url,
        AMANAT_WORKER__EMBEDDED="true",
        AMANAT_PAYMENTS__SANDBOX_RAIL_DB=str(workdir / "sandbox-rail.db"),
        AMANAT_AUDIT__WITNESS_FILE=str(workdir / "audit-witness.jsonl"),
    )
    run_amanat(["migrate"], env, workdir)
    run_amanat(["sandbox", "seed"], env, workdir)
    credentials = json.loads((workdir / "sandbox-credentials.json").read_text())
    support = _operator(env, workdir, "e2e.support@bank.example.pk", "support")
    auditor = _operator(env, workdir, "e2e.auditor@bank.example.pk", "auditor")
    support_b = _operator(env, workdir, "e2e.support.b@bank.example.pk", "support")
    operations = _operator(env, workdir, "e2e.operations@bank.example.pk", "operations")
    with serving(
        [
            str(Path(sys.executable).parent / "amanat"),
            "serve",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        env,
        workdir,
        workdir / "server.log",
        ready=lambda: answers_healthz(base_url),
        timeout=START_TIMEOUT,
    ):
        payment_id = _failed_payout(base_url, credentials)
        yield Sandbox(base_url, payment_id, support, auditor, support_b, operations)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            # Why 15 s (default 5 s): a slow, shared machine may take longer to render;
            # restored afterwards, as the setting is global.
            expect.set_options(timeout=15_000)
            yield launched
        finally:
            launched.close()
            expect.set_options(timeout=None)


def _page(browser: Browser, base_url: str, blocked: list[str]) -> Page:
    context = browser.new_context(base_url=base_url, viewport={"width": 1366, "height": 768})

    def fence(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", fence)
    return context.new_page()


def _sign_in(page: Page, operator: Operator) -> None:
    page.goto("/console")
    page.get_by_label("Email").fill(operator.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label(re.compile("code", re.IGNORECASE)).fill(
        pyotp.TOTP(operator.totp_secret).now()
    )
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1")).to_contain_text("Signed in as")


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_support_finds_a_failed_payment_by_phone_and_reveals_the_iban_which_the_auditor_sees(
    sandbox: Sandbox, browser: Browser
) -> None:
    blocked: list[str] = []
    page = _page(browser, sandbox.base_url, blocked)
    _sign_in(page, sandbox.support)

    # Find the payment by the customer's phone number, typed the way a caller says it.
    page.get_by_role("link", name="Search").click()
    page.get_by_label(re.compile("phone", re.IGNORECASE)).fill("0300 1234567")
    page.keyboard.press("Enter")
    hit = page.locator("#hits a", has_text=sandbox.payment_id)
    expect(hit).to_be_visible()
    expect(page.locator("#search-results")).not_to_contain_text("1234567")
    hit.click()

    # Its timeline: failed, the rail's refusal, masked counterparty.
    expect(page.locator("h1")).to_contain_text(sandbox.payment_id)
    expect(page.locator("h1")).to_contain_text("failed")
    entries = page.locator("#timeline-entries tbody tr")
    expect(entries.first).to_be_visible()
    assert entries.count() >= 3
    expect(page.locator("#timeline-entries")).to_contain_text("failed")
    expect(page.locator("#masked-iban")).to_contain_text("6702")
    expect(page.locator("#counterparty")).not_to_contain_text(IBAN)
    _shot(page, "console-timeline.png")

    # Reveal the IBAN with a reason.
    page.get_by_label("IBAN").check()
    page.get_by_label(re.compile("Reason", re.IGNORECASE)).fill("TICKET-9001 partner asks why")
    page.get_by_role("button", name="Reveal").click()
    expect(page.locator("#revealed-iban")).to_have_text(IBAN)
    expect(page.get_by_role("status")).to_contain_text("audit trail")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/console/login$"))

    # The auditor finds the reveal in the access log, and in the audit trail.
    auditor = _page(browser, sandbox.base_url, blocked)
    _sign_in(auditor, sandbox.auditor)
    auditor.get_by_role("link", name="Access log").click()
    auditor.get_by_label("Operator").fill(sandbox.support.email)
    auditor.get_by_label("Kind").select_option("reveal")
    auditor.get_by_role("button", name="Filter").click()
    reveal_rows = auditor.locator("#access-log tbody tr.access-reveal")
    expect(reveal_rows).to_have_count(1)
    expect(reveal_rows.first).to_contain_text(sandbox.support.email)
    expect(reveal_rows.first).to_contain_text(sandbox.payment_id)
    expect(reveal_rows.first).to_contain_text("iban")
    expect(auditor.locator("#access-log")).not_to_contain_text(IBAN)
    _shot(auditor, "console-access-log.png")
    auditor.goto("/console/audit?action=data_subject.revealed")
    expect(auditor.locator("#audit")).to_contain_text("TICKET-9001")
    expect(auditor.locator("#audit")).not_to_contain_text(IBAN)

    assert blocked == [], f"the console reached outside 127.0.0.1: {blocked}"


def test_support_is_refused_an_admin_action(sandbox: Sandbox, browser: Browser) -> None:
    blocked: list[str] = []
    page = _page(browser, sandbox.base_url, blocked)
    _sign_in(page, sandbox.support_b)
    expect(page.locator("nav")).not_to_contain_text("Operators")
    page.goto("/console/operators")
    expect(page.locator("h1")).to_contain_text("Not permitted")
    expect(page.locator("main")).to_contain_text("operators.read")
    # Forging the form of an admin action does not help either.
    response = page.request.post(
        "/console/keys/rotate",
        form={"csrf_token": page.locator('input[name="csrf_token"]').first.input_value()},
    )
    assert response.status == 403
    assert "keys.rotate" in response.text()


def test_dashboard_screenshot(sandbox: Sandbox, browser: Browser) -> None:
    blocked: list[str] = []
    page = _page(browser, sandbox.base_url, blocked)
    _sign_in(page, sandbox.operations)
    page.goto("/console/operations")
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator("main")).to_contain_text("failed")
    _shot(page, "console-dashboard.png")
    assert blocked == []
