"""The operator console's HTML flows over httpx: sign-in, session and CSRF, the pages each
role may see, and client and TOTP secrets rendered exactly once."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from tests.support.operators import PASSWORD, Account, NewClient, create_account, totp

from amanat.bootstrap import Container
from amanat.identity.access import ROLE_PERMISSIONS, OperatorRole, Permission
from amanat.identity.sessions import SESSION_COOKIE
from amanat.identity.tables import partners
from amanat.kernel.clock import FrozenClock
from amanat.platform.audit.domain import Actor
from amanat.platform.audit.tables import audit_log

ACTOR = Actor(type="cli", id="test-setup")
GENERIC_FAILURE = "Sign-in failed: the email, password or code is wrong."
P = Permission


def login_form(container: Container, account: Account, **overrides: str) -> dict[str, str]:
    form = {
        "email": account.email,
        "password": PASSWORD,
        "totp_code": totp(container, account),
    }
    return form | overrides


async def sign_in(http: httpx.AsyncClient, container: Container, account: Account) -> str:
    """Sign in through the console form; return the CSRF token the pages carry."""
    response = await http.post("/console/login", data=login_form(container, account))
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"
    page = await http.get("/console")
    assert page.status_code == 200
    return csrf_of(page.text)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page carries no CSRF field"
    return match.group(1)


def post_forms(page: str) -> list[str]:
    return re.findall(r'<form[^>]*method="post"[^>]*>.*?</form>', page, flags=re.DOTALL)


def secret_on(page: str) -> str | None:
    match = re.search(r'id="client-secret">([^<]+)<', page)
    return html.unescape(match.group(1)) if match else None


def option_values(page: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]+)"', page)


async def token_for(http: httpx.AsyncClient, client_id: str, secret: str) -> int:
    response = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    return response.status_code


async def audit_actions(container: Container) -> list[str]:
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.db.read() as conn:
        rows = await conn.execute(sa.select(audit_log.c.action).order_by(audit_log.c.seq))
        return [r.action for r in rows.all()]


async def partner_count(container: Container) -> int:
    async with container.db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(partners))).scalar())


@pytest.fixture
async def http(new_client: NewClient) -> httpx.AsyncClient:
    return new_client()


# -- signing in ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/console"),
        ("GET", "/console/partners"),
        ("GET", "/console/partners/ptr_unknown"),
        ("GET", "/console/operators"),
        ("GET", "/console/audit"),
        ("GET", "/console/keys"),
        ("POST", "/console/partners"),
        ("POST", "/console/logout"),
    ],
)
async def test_pages_need_a_session(http: httpx.AsyncClient, method: str, path: str) -> None:
    http.cookies.set(SESSION_COOKIE, "forged")
    response = await http.request(method, path)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


async def test_htmx_requests_without_a_session_are_sent_to_the_login_page(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/console/partners", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/console/login"


async def test_login_form(http: httpx.AsyncClient) -> None:
    page = await http.get("/console/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for field in ("email", "password", "totp_code"):
        assert f'name="{field}"' in page.text
    assert 'action="/console/login"' in page.text
    assert 'type="password"' in page.text
    assert "Log out" not in page.text
    headers = page.headers
    assert headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"


async def test_login_sets_the_session_cookie_and_shows_who_i_am(
    container: Container, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, "compliance", "support")
    response = await http.post("/console/login", data=login_form(container, account))
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert re.search(r"SameSite=strict", cookie, flags=re.IGNORECASE)
    assert "Path=/" in cookie
    assert "Secure" not in cookie

    page = await http.get("/console")
    assert page.status_code == 200
    assert account.email in page.text
    assert account.id in page.text
    for role in ("compliance", "support"):
        assert f'<span class="tag">{role}</span>' in page.text
    granted = ROLE_PERMISSIONS[OperatorRole.COMPLIANCE] | ROLE_PERMISSIONS[OperatorRole.SUPPORT]
    for permission in Permission:
        row = re.search(
            rf"<code>{re.escape(permission.value)}</code></td><td>(.*?)</td>", page.text
        )
        assert row, permission
        assert ("✓" in row.group(1)) is (permission in granted), permission

    # The console and the operator API share one session.
    me = await http.get("/operator/v1/me")
    assert me.status_code == 200
    assert me.json()["csrf_token"] == csrf_of(page.text)

    # Already signed in: the login form sends you on.
    again = await http.get("/console/login")
    assert again.status_code == 303
    assert again.headers["location"] == "/console"


async def test_session_cookie_is_secure_behind_https(
    container: Container, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(container.settings.http, "public_url", "https://console.bank.example.pk")
    account = await create_account(container, "support")
    response = await http.post("/console/login", data=login_form(container, account))
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


async def test_failed_login_is_generic(container: Container, http: httpx.AsyncClient) -> None:
    account = await create_account(container, "support")
    good_code = login_form(container, account)["totp_code"]
    attempts = {
        "password": login_form(container, account, password="not-the-password!"),
        "code": login_form(container, account, totp_code=f"{(int(good_code) + 1) % 10**6:06d}"),
        "email": login_form(container, account, email="nobody@bank.example.pk"),
    }
    bodies = {}
    for factor, form in attempts.items():
        response = await http.post("/console/login", data=form)
        assert response.status_code == 401, factor
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
        assert GENERIC_FAILURE in response.text
        assert form["password"] not in response.text
        bodies[factor] = response.text.replace(html.escape(form["email"]), "EMAIL")
    # Nothing on the page differs with the factor that was wrong.
    assert bodies["password"] == bodies["code"] == bodies["email"]

    failures = [a for a in await audit_actions(container) if a == "operator.login_failed"]
    assert len(failures) == 3


async def test_lockout_answers_423_at_the_failing_address_only(
    container: Container, clock: FrozenClock, http: httpx.AsyncClient, app: FastAPI
) -> None:
    account = await create_account(container, "support")
    statuses = [
        (await http.post("/console/login", data=login_form(container, account, password="no!")))
        for _ in range(5)
    ]
    assert [r.status_code for r in statuses] == [401, 401, 401, 401, 423]
    locked = await http.post("/console/login", data=login_form(container, account))
    assert locked.status_code == 423
    assert "Too many failed attempts" in locked.text
    assert "is wrong" not in locked.text  # the right factors are not confirmed either
    assert 1 <= int(locked.headers["retry-after"]) <= 15 * 60
    # Only this address is locked out: the operator signs in from their own.
    clock.advance(seconds=30)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.9.8.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as own:
        unlocked = await own.post("/console/login", data=login_form(container, account))
    assert unlocked.status_code == 303


async def test_incomplete_login_form_is_refused_without_calling_the_service(
    container: Container, http: httpx.AsyncClient
) -> None:
    response = await http.post("/console/login", data={"email": "a@bank.example.pk"})
    assert response.status_code == 422
    assert "6-digit code" in response.text
    assert "operator.login_failed" not in await audit_actions(container)


async def test_login_is_rate_limited_with_a_friendly_page(http: httpx.AsyncClient) -> None:
    form = {"email": "flood@bank.example.pk", "password": "x" * 12, "totp_code": "123456"}
    # No such account: locked out after five failures (423), like a real one.
    codes = [(await http.post("/console/login", data=form)).status_code for _ in range(10)]
    assert codes == [401] * 4 + [423] * 6
    limited = await http.post("/console/login", data=form)
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("text/html")
    assert int(limited.headers["retry-after"]) >= 1
    assert '"login";q=10;w=300' in limited.headers["ratelimit-policy"]
    assert "Too many sign-in attempts" in limited.text
    assert 'name="email"' in limited.text  # still the form, with its fields


# -- CSRF -----------------------------------------------------------------------------------


async def test_every_post_form_carries_the_csrf_token(
    container: Container, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, "admin", "operations", "risk")
    csrf = await sign_in(http, container, account)
    partner = await container.partners.create_partner(
        ACTOR, name="Forms Ltd", roles=["merchant"], mode="sandbox"
    )
    await container.partners.create_client(ACTOR, partner.id, name="forms")

    pages = ["/console", "/console/partners", f"/console/partners/{partner.id}"]
    pages += ["/console/operators", "/console/keys", "/console/audit"]
    seen = 0
    for path in pages:
        page = await http.get(path)
        assert page.status_code == 200, path
        assert f"""hx-headers:inherited='{{"X-CSRF-Token": "{csrf}"}}'""" in page.text
        for form in post_forms(page.text):
            assert f'<input type="hidden" name="csrf_token" value="{csrf}">' in form, form
            seen += 1
    # logout x6, create partner, partner status, rate limits x2, rotate, revoke,
    # create client, create operator, rotate signing key
    assert seen == 15
    # GET forms (the audit filter) must not leak the token into URLs.
    audit_page = (await http.get("/console/audit")).text
    get_form = re.search(r'<form[^>]*method="get".*?</form>', audit_page, flags=re.DOTALL)
    assert get_form
    assert "csrf_token" not in get_form.group(0)


async def test_csrf_is_enforced_on_console_posts(
    container: Container, new_client: NewClient
) -> None:
    http = new_client()
    account = await create_account(container, "operations")
    csrf = await sign_in(http, container, account)
    form = {"name": "CSRF Ltd", "roles": "merchant", "mode": "sandbox"}

    missing = await http.post("/console/partners", data=form)
    assert missing.status_code == 403
    assert missing.headers["content-type"].startswith("text/html")
    assert "CSRF check failed" in missing.text
    wrong = await http.post("/console/partners", data=form | {"csrf_token": csrf[::-1]})
    assert wrong.status_code == 403
    assert await partner_count(container) == 0

    as_header = await http.post("/console/partners", data=form, headers={"X-CSRF-Token": csrf})
    assert as_header.status_code == 303
    as_field = await http.post("/console/partners", data=form | {"csrf_token": csrf})
    assert as_field.status_code == 303
    assert await partner_count(container) == 2

    # The token of another session is no good either.
    other = await create_account(container, "operations", email="other@bank.example.pk")
    other_csrf = await sign_in(new_client(), container, other)
    assert other_csrf != csrf
    crossed = await http.post("/console/partners", data=form | {"csrf_token": other_csrf})
    assert crossed.status_code == 403


# -- partners and clients -------------------------------------------------------------------


async def test_create_partner_and_client_shows_the_secret_exactly_once(
    container: Container, http: httpx.AsyncClient
) -> None:
    await container.signing_keys.ensure_active(ACTOR)
    account = await create_account(container, "operations")
    csrf = await sign_in(http, container, account)

    listing = await http.get("/console/partners")
    assert 'action="/console/partners"' in listing.text
    assert set(option_values(listing.text, "roles")) == {"merchant", "aisp", "pisp", "cbpii"}
    created = await http.post(
        "/console/partners",
        data={"csrf_token": csrf, "name": "Lahore Looms", "roles": ["merchant"], "mode": "sandbox"},
    )
    assert created.status_code == 303
    detail_path = created.headers["location"]
    partner_id = detail_path.rsplit("/", 1)[-1]
    assert detail_path == f"/console/partners/{partner_id}"
    assert partner_id.startswith("ptr_")

    listing = await http.get("/console/partners")
    assert f'href="/console/partners/{partner_id}">Lahore Looms</a>' in listing.text

    detail = await http.get(detail_path)
    assert detail.status_code == 200
    assert "Create a client" in detail.text
    scopes = option_values(detail.text, "scopes")
    assert "payments:write" in scopes
    assert "accounts" not in scopes
    # The opt-in scope is offered, but never ticked by default.
    assert "customers:reveal" in scopes
    assert 'value="payments:write" checked' in detail.text
    assert 'value="customers:reveal">' in detail.text

    made = await http.post(
        f"{detail_path}/clients",
        data={
            "csrf_token": csrf,
            "name": "Checkout",
            "auth_method": "client_secret_post",
            "scopes": ["payments:read", "payments:write"],
            "redirect_uris": "https://looms.example.pk/cb\r\n\r\nhttp://127.0.0.1:9000/cb\r\n",
        },
    )
    assert made.status_code == 201, made.text
    secret = secret_on(made.text)
    assert secret
    assert secret.startswith("cs_")
    assert made.text.count(secret) == 1
    assert "Copy it now" in made.text
    client_id = re.search(r'id="client-(cli_[0-9A-Z]+)"', made.text)
    assert client_id
    cid = client_id.group(1)
    assert "https://looms.example.pk/cb" in made.text
    assert "http://127.0.0.1:9000/cb" in made.text

    # The secret works, and it is never rendered again.
    assert await token_for(http, cid, secret) == 200
    for path in (detail_path, "/console/partners", "/console/audit", "/console"):
        again = await http.get(path)
        assert secret not in again.text, path
        assert "Copy it now" not in again.text
    api = await http.get(f"/operator/v1/partners/{partner_id}")
    assert secret not in api.text

    # Rotation shows the new secret once and kills the old one.
    rotated = await http.post(f"/console/clients/{cid}/rotate_secret", data={"csrf_token": csrf})
    assert rotated.status_code == 200
    new_secret = secret_on(rotated.text)
    assert new_secret
    assert new_secret != secret
    assert "Copy it now" in rotated.text
    assert secret not in rotated.text
    assert new_secret not in (await http.get(detail_path)).text
    assert await token_for(http, cid, secret) == 401
    assert await token_for(http, cid, new_secret) == 200

    # Revocation: post, redirect, and the client shows as revoked with no buttons left.
    revoked = await http.post(f"/console/clients/{cid}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == detail_path
    after = await http.get(detail_path)
    assert '<span class="status revoked">revoked</span>' in after.text
    assert f"/console/clients/{cid}/rotate_secret" not in after.text
    assert await token_for(http, cid, new_secret) == 401

    actions = await audit_actions(container)
    for action in ("partner.created", "client.created", "client.secret_rotated", "client.revoked"):
        assert action in actions
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.db.read() as conn:
        actors = (
            await conn.execute(
                sa.select(audit_log.c.actor_id, audit_log.c.source_ip).where(
                    audit_log.c.action.in_(["partner.created", "client.created", "client.revoked"])
                )
            )
        ).all()
    assert {(r.actor_id, r.source_ip) for r in actors} == {(account.id, "127.0.0.1")}


async def test_htmx_client_creation_uses_the_header_and_returns_the_clients_section(
    container: Container, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, "operations")
    csrf = await sign_in(http, container, account)
    partner = await container.partners.create_partner(
        ACTOR, name="Htmx Ltd", roles=["pisp"], mode="sandbox"
    )
    response = await http.post(
        f"/console/partners/{partner.id}/clients",
        data={"name": "tpp", "auth_method": "client_secret_basic", "scopes": "payments"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert response.status_code == 201
    assert '<section id="clients">' in response.text
    assert secret_on(response.text)
    assert "hx-retarget" not in response.headers


async def test_form_errors_are_shown_in_place(
    container: Container, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, "operations")
    csrf = await sign_in(http, container, account)
    no_roles = await http.post(
        "/console/partners", data={"csrf_token": csrf, "name": "Roleless", "mode": "sandbox"}
    )
    assert no_roles.status_code == 422
    assert "Choose at least one role." in no_roles.text
    assert 'value="Roleless"' in no_roles.text
    bad_mode = await http.post(
        "/console/partners",
        data={"csrf_token": csrf, "name": "Moody", "roles": "merchant", "mode": "staging"},
    )
    assert bad_mode.status_code == 422
    assert await partner_count(container) == 0

    partner = await container.partners.create_partner(
        ACTOR, name="Redirects Ltd", roles=["aisp"], mode="sandbox"
    )
    bad_uri = await http.post(
        f"/console/partners/{partner.id}/clients",
        data={
            "csrf_token": csrf,
            "name": "tpp",
            "auth_method": "client_secret_basic",
            "scopes": "accounts",
            "redirect_uris": "http://evil.example.com/cb",
        },
    )
    assert bad_uri.status_code == 422
    assert "must use https" in bad_uri.text
    assert secret_on(bad_uri.text) is None
    assert "http://evil.example.com/cb" in bad_uri.text  # kept in the form to fix
    no_scope = await http.post(
        f"/console/partners/{partner.id}/clients",
        data={"csrf_token": csrf, "name": "tpp", "auth_method": "client_secret_basic"},
    )
    assert no_scope.status_code == 422
    assert "Choose at least one scope." in no_scope.text

    missing = await http.get("/console/partners/ptr_01NOPE")
    assert missing.status_code == 404
    assert "No partner" in missing.text
    bad_cursor = await http.get("/console/partners", params={"cursor": "not-a-cursor"})
    assert bad_cursor.status_code == 400
    assert bad_cursor.headers["content-type"].startswith("text/html")


async def test_partner_pages_are_paginated_newest_first(
    container: Container, clock: FrozenClock, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, "support")
    for n in range(25):
        await container.partners.create_partner(
            ACTOR, name=f"Partner {n:02d}", roles=["merchant"], mode="sandbox"
        )
        clock.advance(seconds=1)
    await sign_in(http, container, account)
    first = await http.get("/console/partners")
    names = re.findall(r">(Partner \d\d)</a>", first.text)
    assert names == [f"Partner {n:02d}" for n in range(24, 4, -1)]
    assert 'action="/console/partners"' not in first.text  # support may not onboard
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older
    second = await http.get(html.unescape(older.group(1)))
    assert re.findall(r">(Partner \d\d)</a>", second.text) == [
        f"Partner {n:02d}" for n in range(4, -1, -1)
    ]
    assert 'rel="next"' not in second.text


async def test_user_input_is_escaped(container: Container, http: httpx.AsyncClient) -> None:
    account = await create_account(container, "operations")
    csrf = await sign_in(http, container, account)
    evil = '<script>alert("x")</script>'
    created = await http.post(
        "/console/partners",
        data={"csrf_token": csrf, "name": evil, "roles": "merchant", "mode": "sandbox"},
    )
    for page in (await http.get(created.headers["location"]), await http.get("/console/partners")):
        assert evil not in page.text
        assert "&lt;script&gt;" in page.text


async def test_pages_load_only_local_assets_and_no_inline_code(
    container: Container, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, "admin", "operations")
    login_page = (await http.get("/console/login")).text
    await sign_in(http, container, account)
    partner = await container.partners.create_partner(
        ACTOR, name="Assets Ltd", roles=["merchant"], mode="sandbox"
    )
    pages = {"/console/login": login_page}
    for path in (
        "/console",
        "/console/partners",
        f"/console/partners/{partner.id}",
    ):
        pages[path] = (await http.get(path)).text
    for path, page in pages.items():
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.DOTALL)
        assert scripts == [(' src="/static/htmx/htmx.min.js" defer', "")], path
        assert "<style" not in page
        assert " style=" not in page
        assert not re.search(r"<[^>]+\son[a-z]+=", page), "inline event handler"
        for asset in re.findall(r'(?:src|href)="([^"]+)"', page):
            assert asset.startswith("/"), f"{asset} would leave the server"
            if asset.startswith("/static/"):
                assert (await http.get(asset)).status_code == 200
    htmx = await http.get("/static/htmx/htmx.min.js")
    assert "htmx" in htmx.text[:200]


async def test_an_operator_sets_a_partner_rate_limit_in_the_console(
    container: Container, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, "operations")
    csrf = await sign_in(http, container, account)
    partner = await container.partners.create_partner(
        ACTOR, name="Payroll Co", roles=["merchant"], mode="sandbox"
    )
    path = f"/console/partners/{partner.id}/rate_limits"
    bad = await http.post(path, data={"policy": "write", "quota": "lots", "csrf_token": csrf})
    assert bad.status_code == 422
    saved = await http.post(path, data={"policy": "write", "quota": "30000/60", "csrf_token": csrf})
    assert saved.status_code == 303
    page = (await http.get(f"/console/partners/{partner.id}")).text
    assert 'value="30000/60"' in page
    assert "6000 / 60 s" in page  # the platform's quota beside it
    cleared = await http.post(path, data={"policy": "write", "quota": "", "csrf_token": csrf})
    assert cleared.status_code == 303
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.transactions.read() as tx:
        page_of = await tx.audit.list_records(10, None, "partner.rate_limit_changed", partner.id)
    assert [(r.actor.id, r.payload["to"]) for r in reversed(page_of.items)] == [
        (account.id, [30000, 60]),
        (account.id, None),
    ]


# -- the permission matrix, in HTML ---------------------------------------------------------

CONSOLE_PAGES = [
    ("GET", "/console/partners", P.PARTNERS_READ),
    ("GET", "/console/partners/{partner_id}", P.PARTNERS_READ),
    ("GET", "/console/operators", P.OPERATORS_READ),
    ("GET", "/console/audit", P.AUDIT_READ),
    ("GET", "/console/keys", P.KEYS_ROTATE),
    ("POST", "/console/partners", P.PARTNERS_WRITE),
    ("POST", "/console/partners/{partner_id}/status", P.PARTNERS_SUSPEND),
    ("POST", "/console/partners/{partner_id}/rate_limits", P.PARTNERS_WRITE),
    ("POST", "/console/partners/{partner_id}/clients", P.CLIENTS_WRITE),
    ("POST", "/console/clients/{client_id}/rotate_secret", P.CLIENTS_WRITE),
    ("POST", "/console/clients/{client_id}/revoke", P.CLIENTS_WRITE),
    ("POST", "/console/operators", P.OPERATORS_WRITE),
    ("POST", "/console/keys/rotate", P.KEYS_ROTATE),
]
NAV = {
    P.PARTNERS_READ: "/console/partners",
    P.OPERATORS_READ: "/console/operators",
    P.AUDIT_READ: "/console/audit",
    P.KEYS_ROTATE: "/console/keys",
}


@pytest.mark.parametrize("role", list(OperatorRole), ids=lambda r: r.value)
async def test_each_role_sees_exactly_its_pages(
    role: OperatorRole, container: Container, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, role.value)
    partner = await container.partners.create_partner(
        ACTOR, name="Matrix Ltd", roles=["merchant"], mode="sandbox"
    )
    issued = await container.partners.create_client(ACTOR, partner.id, name="matrix")
    ids = {"partner_id": partner.id, "client_id": issued.client.id}
    forms = {
        "/console/partners": {"name": "New", "roles": "merchant", "mode": "sandbox"},
        "/console/partners/{partner_id}/status": {"status": "active"},
        "/console/partners/{partner_id}/rate_limits": {"policy": "write", "quota": "6000/60"},
        "/console/partners/{partner_id}/clients": {"name": "m", "scopes": "payments:read"},
        "/console/operators": {
            "email": f"made-by-{role.value}@bank.example.pk",
            "name": "Made",
            "roles": "support",
            "password": PASSWORD,
        },
    }
    csrf = await sign_in(http, container, account)
    granted = ROLE_PERMISSIONS[role]
    dashboard = (await http.get("/console")).text
    for permission, link in NAV.items():
        assert (f'href="{link}"' in dashboard) is (permission in granted), link

    mismatches = []
    for method, path, permission in CONSOLE_PAGES:
        data = forms.get(path, {}) | {"csrf_token": csrf} if method == "POST" else None
        response = await http.request(method, path.format(**ids), data=data)
        if permission in granted:
            ok = response.status_code in {200, 201, 303}
        else:
            ok = (
                response.status_code == 403
                and f'<code class="missing-permission">{permission.value}</code>' in response.text
            )
        if not ok:
            mismatches.append((method, path, permission.value, response.status_code))
    assert mismatches == [], f"{role.value}: {mismatches}"


async def test_the_403_page_names_the_permission_and_who_has_it(
    container: Container, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, "support")
    csrf = await sign_in(http, container, account)
    page = await http.get("/console/audit")
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "Not permitted" in page.text
    assert '<code class="missing-permission">audit.read</code>' in page.text
    for role in ("admin", "auditor", "compliance"):
        assert f'<span class="tag">{role}</span>' in page.text
    refused = await http.post(
        "/console/partners",
        data={"csrf_token": csrf, "name": "Sneaky", "roles": "merchant", "mode": "sandbox"},
    )
    assert refused.status_code == 403
    assert "partners.write" in refused.text
    assert await partner_count(container) == 0

    htmx = await http.get("/console/operators", headers={"HX-Request": "true"})
    assert htmx.status_code == 403
    assert htmx.headers["hx-retarget"] == "#main"
    assert htmx.headers["hx-reselect"] == "#main"


# -- operators, audit, keys -------------------------------------------------------------------


async def test_creating_an_operator_shows_the_totp_secret_once(
    container: Container, clock: FrozenClock, new_client: NewClient
) -> None:
    admin = await create_account(container, "admin")
    http = new_client()
    csrf = await sign_in(http, container, admin)
    page = await http.get("/console/operators")
    assert "Add an operator" in page.text
    created = await http.post(
        "/console/operators",
        data={
            "csrf_token": csrf,
            "email": "risk.analyst@bank.example.pk",
            "name": "Risk Analyst",
            "roles": ["risk"],
            "password": PASSWORD,
        },
    )
    assert created.status_code == 201, created.text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', created.text)
    uri = re.search(r'id="totp-uri">([^<]+)<', created.text)
    assert secret
    assert uri
    assert "Copy it now" in created.text
    otpauth = html.unescape(uri.group(1))
    assert otpauth.startswith("otpauth://totp/")
    assert parse_qs(urlsplit(otpauth).query)["secret"] == [secret.group(1)]
    assert PASSWORD not in created.text

    listing = await http.get("/console/operators")
    assert "risk.analyst@bank.example.pk" in listing.text
    assert secret.group(1) not in listing.text
    assert "operator.created" in await audit_actions(container)

    newcomer = Account("", "risk.analyst@bank.example.pk", secret.group(1))
    clock.advance(seconds=30)
    await sign_in(new_client(), container, newcomer)

    short = await http.post(
        "/console/operators",
        data={"csrf_token": csrf, "email": "x@bank.example.pk", "name": "X", "roles": "risk"},
    )
    assert short.status_code == 422
    assert "at least 12 characters" in short.text
    duplicate = await http.post(
        "/console/operators",
        data={
            "csrf_token": csrf,
            "email": "risk.analyst@bank.example.pk",
            "name": "Again",
            "roles": "risk",
            "password": PASSWORD,
        },
    )
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.text


async def test_audit_page_filters_and_paginates_by_seq(
    container: Container, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, "auditor")
    created = [
        await container.partners.create_partner(
            ACTOR, name=f"Audited {n}", roles=["merchant"], mode="sandbox"
        )
        for n in range(55)
    ]
    await sign_in(http, container, account)
    first = await http.get("/console/audit")
    assert first.status_code == 200
    seqs = [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", first.text)]
    assert len(seqs) == 50
    assert seqs == sorted(seqs, reverse=True)
    assert "operator.login_succeeded" in first.text  # newest first
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older
    second = await http.get(html.unescape(older.group(1)))
    more = [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", second.text)]
    assert more
    assert max(more) < min(seqs)
    assert len(seqs) + len(more) == len(await audit_actions(container))

    target = created[7].id
    filtered = await http.get(
        "/console/audit", params={"action": "partner.created", "target_id": target}
    )
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>", filtered.text)
    assert len(rows) == 1
    assert target in filtered.text
    assert "Audited 7" in filtered.text
    assert 'value="partner.created"' in filtered.text
    none = await http.get("/console/audit", params={"action": "no.such.action"})
    assert "No matching records." in none.text
    bad = await http.get("/console/audit", params={"cursor": "!!"})
    assert bad.status_code == 400


async def test_signing_key_rotation_from_the_console(
    container: Container, http: httpx.AsyncClient
) -> None:
    first = await container.signing_keys.ensure_active(ACTOR)
    admin = await create_account(container, "admin")
    csrf = await sign_in(http, container, admin)
    rotated = await http.post("/console/keys/rotate", data={"csrf_token": csrf})
    assert rotated.status_code == 303
    page = await http.get(rotated.headers["location"])
    assert first.kid in page.text
    assert '<span class="status verifying">verifying</span>' in page.text
    assert '<span class="status active">active</span>' in page.text
    assert "signing_key.rotated" in await audit_actions(container)


# -- leaving --------------------------------------------------------------------------------


async def test_logout_ends_the_session(container: Container, http: httpx.AsyncClient) -> None:
    account = await create_account(container, "support")
    csrf = await sign_in(http, container, account)
    token = http.cookies.get(SESSION_COOKIE)
    assert token
    refused = await http.post("/console/logout")
    assert refused.status_code == 403  # no token: a cross-site form cannot log you out
    response = await http.post("/console/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"
    cleared = response.headers["set-cookie"]
    assert cleared.startswith(f'{SESSION_COOKIE}=""') or "Max-Age=0" in cleared
    assert http.cookies.get(SESSION_COOKIE) is None

    # The old cookie is dead server-side too.
    http.cookies.set(SESSION_COOKIE, token)
    replay = await http.get("/console")
    assert replay.status_code == 303
    assert "operator.logged_out" in await audit_actions(container)


async def test_idle_sessions_expire(
    container: Container, clock: FrozenClock, http: httpx.AsyncClient
) -> None:
    account = await create_account(container, "support")
    await sign_in(http, container, account)
    clock.advance(minutes=29)
    assert (await http.get("/console")).status_code == 200
    clock.advance(minutes=31)
    expired = await http.get("/console")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/console/login"
