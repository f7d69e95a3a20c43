"""The console and the API reference in a real browser (Debian's Chromium via Playwright),
against a real server, with the browser's network fenced to 127.0.0.1.

CI installs Chromium with ``apt-get install chromium``; Playwright's own browser downloads
(``playwright install``) are never used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest
from playwright.sync_api import (
    ConsoleMessage,
    Page,
    Request,
    Route,
    expect,
    sync_playwright,
)
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.e2e,
    # The server under test always runs on its own SQLite file; one pass is enough.
    pytest.mark.sqlite_only,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

EXPECTED_HTTP_ERROR = "Failed to load resource: the server responded with a status of 4"
BrowserSession = tuple[Page, list[str], list[str], list[Request]]


@pytest.fixture
def browser_session(console_server: Any) -> Iterator[BrowserSession]:
    """A page whose every request outside 127.0.0.1 is aborted and recorded."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            # Why 15 s (default 5 s): a slow, shared machine may take longer to render;
            # restored afterwards, as the setting is global.
            expect.set_options(timeout=15_000)
            context = browser.new_context(base_url=console_server.base_url)
            blocked: list[str] = []
            errors: list[str] = []
            requests: list[Request] = []

            def fence(route: Route) -> None:
                if urlsplit(route.request.url).hostname == "127.0.0.1":
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            context.route("**/*", fence)
            page = context.new_page()
            page.on("request", lambda request: requests.append(request))
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def on_console(message: ConsoleMessage) -> None:
                # Chromium logs every 4xx it receives; the tests expect some (422, 401).
                if message.type == "error" and not message.text.startswith(EXPECTED_HTTP_ERROR):
                    errors.append(message.text)

            page.on("console", on_console)
            yield page, blocked, errors, requests
        finally:
            browser.close()
            expect.set_options(timeout=None)


def test_operator_creates_a_partner_and_client_and_sees_the_secret_once(
    console_server: Any, browser_session: BrowserSession
) -> None:
    page, blocked, errors, requests = browser_session
    base = console_server.base_url

    # Not signed in: the console sends us to the login form.
    page.goto("/console")
    expect(page).to_have_url(f"{base}/console/login")
    page.fill('input[name="email"]', console_server.email)
    page.fill('input[name="password"]', console_server.password)
    page.fill('input[name="totp_code"]', pyotp.TOTP(console_server.totp_secret).now())
    page.click('button:has-text("Sign in")')
    expect(page).to_have_url(f"{base}/console")
    expect(page.locator("h1")).to_contain_text("Signed in as E2E Admin")
    expect(page.locator("#permissions")).to_contain_text("clients.write")

    session = [c for c in page.context.cookies() if c["name"] == "amanat_session"]
    assert len(session) == 1
    assert session[0]["httpOnly"] is True
    assert session[0]["sameSite"] == "Strict"
    assert "amanat_session" not in page.evaluate("document.cookie")

    # Onboard a partner.
    page.click('nav >> text="Partners"')
    expect(page).to_have_url(f"{base}/console/partners")
    page.fill('#new-partner input[name="name"]', "Browser Bazaar")
    page.check('#new-partner input[name="roles"][value="merchant"]')
    page.select_option('#new-partner select[name="mode"]', "sandbox")
    page.click('#new-partner button[type="submit"]')
    expect(page).to_have_url(re.compile(r"/console/partners/ptr_[0-9A-Z]+$"))
    partner_url = page.url

    # Open it from the list.
    page.goto("/console/partners")
    page.click('#partners a:has-text("Browser Bazaar")')
    expect(page).to_have_url(partner_url)
    expect(page.locator("h1")).to_have_text("Browser Bazaar")

    # Create a client: htmx posts the form and swaps the clients section in place.
    page.fill('#new-client input[name="name"]', "Storefront")
    page.fill('#new-client textarea[name="redirect_uris"]', "https://bazaar.example.pk/cb")
    page.click('#new-client button[type="submit"]')
    secret_box = page.locator("#client-secret")
    expect(secret_box).to_be_visible()
    expect(page.locator("#new-secret")).to_contain_text("Copy it now")
    secret = secret_box.inner_text().strip()
    assert secret.startswith("cs_")
    assert page.url == partner_url  # no navigation: a reload is a plain GET
    client_id = re.search(r"cli_[0-9A-Z]+", page.locator("#new-secret").inner_text())
    assert client_id
    posts = [r for r in requests if r.method == "POST" and r.url.endswith("/clients")]
    assert len(posts) == 1
    assert posts[0].headers.get("hx-request") == "true"
    assert posts[0].headers.get("x-csrf-token")

    token = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id.group(0), secret),
    )
    assert token.status_code == 200, token.text

    page.reload()
    expect(page.locator("#client-list")).to_contain_text("Storefront")
    expect(page.locator("#client-secret")).to_have_count(0)
    assert secret not in page.content()

    # Rotating asks for confirmation, then shows the new secret once.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('#client-list button:has-text("Rotate secret")')
    expect(page.locator("#client-secret")).to_be_visible()
    rotated = page.locator("#client-secret").inner_text().strip()
    assert rotated.startswith("cs_")
    assert rotated != secret
    page.reload()
    expect(page.locator("#client-secret")).to_have_count(0)

    # A refused form is re-rendered in place, with the reason and no secret.
    page.fill('#new-client input[name="name"]', "Bad redirect")
    page.fill('#new-client textarea[name="redirect_uris"]', "http://bazaar.example.pk/cb")
    page.click('#new-client button[type="submit"]')
    expect(page.locator("#clients .alert.error")).to_contain_text("must use https")
    expect(page.locator("#client-secret")).to_have_count(0)
    expect(page.locator('#new-client textarea[name="redirect_uris"]')).to_have_value(
        "http://bazaar.example.pk/cb"
    )

    # Revoking asks for confirmation; the row then shows the client revoked.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('#client-list button:has-text("Revoke")')
    expect(page.locator("#client-list .status.revoked")).to_have_count(1)
    assert page.url == partner_url

    # Signing out in another tab ends the session; this tab's next htmx request is sent
    # to the login page instead of swapping anything in.
    other = page.context.new_page()
    other.goto("/console")
    other.click('button:has-text("Log out")')
    expect(other).to_have_url(f"{base}/console/login")
    page.fill('#new-client input[name="name"]', "After logout")
    page.click('#new-client button[type="submit"]')
    expect(page).to_have_url(f"{base}/console/login")
    page.goto(partner_url)
    expect(page).to_have_url(f"{base}/console/login")

    assert blocked == [], f"the console tried to leave 127.0.0.1: {blocked}"
    assert errors == [], f"browser errors (CSP or script): {errors}"


def test_api_reference_renders_offline(browser_session: BrowserSession) -> None:
    page, blocked, errors, _requests = browser_session
    page.goto("/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 5
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("amanat API")
    assert blocked == [], f"Swagger UI tried to leave 127.0.0.1: {blocked}"
    assert errors == [], f"browser errors: {errors}"

    # Guard the guard: a request to anywhere else is caught by the fence.
    page.evaluate("fetch('https://cdn.example.com/probe.js').catch(() => null)")
    page.wait_for_timeout(200)
    assert blocked == ["https://cdn.example.com/probe.js"]
