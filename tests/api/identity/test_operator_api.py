"""The operator API: password + TOTP login, sessions and CSRF, lockout, the permission
matrix (checked against ``amanat.identity.access``), role changes, and the client-secret
lifecycle (shown once, never listed, rotation kills the old secret)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from tests.support.operators import PASSWORD, Account, NewClient, create_account, totp

from amanat.auth.routes import operator_keys
from amanat.bootstrap import Container
from amanat.identity.access import ROLE_PERMISSIONS, OperatorRole, Permission
from amanat.identity.routes import operator_api as operator_routes
from amanat.identity.sessions import SESSION_COOKIE
from amanat.identity.tables import oauth_clients
from amanat.kernel.clock import FrozenClock
from amanat.platform.audit.domain import Actor, AuditRecord
from amanat.platform.audit.tables import audit_log
from amanat.platform.ratelimit.limiter import Policy

ACTOR = Actor(type="cli", id="test-setup")
P = Permission
API = "/operator/v1"


def login_body(
    container: Container, account: Account, *, password: str = PASSWORD, code: str | None = None
) -> dict[str, str]:
    return {
        "email": account.email,
        "password": password,
        "totp_code": code if code is not None else totp(container, account),
    }


async def login(http: httpx.AsyncClient, container: Container, account: Account) -> str:
    """Log ``account`` in on ``http``; return the session's CSRF token."""
    response = await http.post(f"{API}/login", json=login_body(container, account))
    assert response.status_code == 200, response.text
    assert http.cookies.get(SESSION_COOKIE)
    csrf: str = response.json()["csrf_token"]
    return csrf


def problem_code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    code: str = response.json()["code"]
    return code


async def audit_rows(container: Container, action: str) -> list[dict[str, Any]]:
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.db.read() as conn:
        result = await conn.execute(
            sa.select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq)
        )
        return [dict(row._mapping) for row in result.all()]


async def audit_records(container: Container, action: str, target_id: str) -> list[AuditRecord]:
    """Decoded records, through the repository (payloads as the services wrote them)."""
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.transactions.read() as tx:
        page = await tx.audit.list_records(100, None, action, target_id)
    return list(page.items)


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")
    return {"Authorization": f"Basic {raw}"}


async def token_status(http: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client_id, secret),
    )


# -- login, session, CSRF -----------------------------------------------------------------


async def test_login_sets_a_strict_http_only_cookie_and_me_works(
    container: Container, new_client: NewClient
) -> None:
    account = await create_account(container, "support")
    http = new_client()
    response = await http.post(f"{API}/login", json=login_body(container, account))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["operator"]["email"] == account.email
    assert body["operator"]["roles"] == ["support"]
    assert body["csrf_token"]
    assert "password_hash" not in response.text
    assert "totp_secret" not in response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # public URL is http://127.0.0.1 in tests

    me = await http.get(f"{API}/me")
    assert me.status_code == 200
    assert me.json()["operator"]["id"] == account.id
    assert sorted(me.json()["operator"]["permissions"]) == sorted(
        p.value for p in ROLE_PERMISSIONS[OperatorRole.SUPPORT]
    )
    assert me.json()["csrf_token"] == body["csrf_token"]

    anonymous = await new_client().get(f"{API}/me")
    assert anonymous.status_code == 401
    assert problem_code(anonymous) == "unauthorized"


async def test_unsafe_methods_need_the_csrf_header(
    container: Container, new_client: NewClient
) -> None:
    account = await create_account(container, "operations")
    http = new_client()
    csrf = await login(http, container, account)
    body = {"name": "No token Ltd", "roles": ["merchant"]}

    missing = await http.post(f"{API}/partners", json=body)
    assert missing.status_code == 403
    assert problem_code(missing) == "csrf_failed"

    wrong = await http.post(f"{API}/partners", json=body, headers={"X-CSRF-Token": "x" + csrf})
    assert wrong.status_code == 403
    assert problem_code(wrong) == "csrf_failed"

    no_logout = await http.post(f"{API}/logout")
    assert problem_code(no_logout) == "csrf_failed"
    assert (await http.get(f"{API}/me")).status_code == 200

    ok = await http.post(f"{API}/partners", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text

    out = await http.post(f"{API}/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200
    assert (await http.get(f"{API}/me")).status_code == 401


@pytest.mark.parametrize(
    ("password", "use_wrong_code", "reason"),
    [("wrong password 123", False, "bad_password"), (PASSWORD, True, "bad_totp")],
    ids=["wrong-password", "wrong-totp"],
)
async def test_failed_login_is_generic_and_audited_with_source_ip(
    container: Container,
    new_client: NewClient,
    password: str,
    use_wrong_code: bool,
    reason: str,
) -> None:
    account = await create_account(container, "support")
    good = totp(container, account)
    code = f"{(int(good) + 1) % 1_000_000:06d}" if use_wrong_code else good
    http = new_client()
    response = await http.post(
        f"{API}/login",
        json=login_body(container, account, password=password, code=code),
        headers={"User-Agent": "pytest-operator"},
    )
    assert response.status_code == 401
    assert problem_code(response) == "login_failed"
    detail = response.json()["detail"]
    assert detail == "Email, password or code is wrong."  # never says which factor
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")

    unknown = await http.post(
        f"{API}/login", json={**login_body(container, account), "email": "nobody@bank.example.pk"}
    )
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == detail

    rows = list(await audit_rows(container, "operator.login_failed"))
    mine = [r for r in rows if r["target_id"] == account.id]
    assert len(mine) == 1
    assert mine[0]["source_ip"] == "127.0.0.1"
    assert mine[0]["user_agent"] == "pytest-operator"
    assert mine[0]["actor_type"] == "operator"
    records = await audit_records(container, "operator.login_failed", account.id)
    assert records[0].payload == {"reason": reason}
    # An unknown email is recorded by a short hash, never as the raw string it was.
    expected = "unknown:" + hashlib.sha256(b"nobody@bank.example.pk").hexdigest()[:16]
    assert any(r["actor_id"] == expected for r in rows)


async def test_five_failures_lock_out_the_address_not_the_operator(
    container: Container, clock: FrozenClock, from_address: Callable[[str], httpx.AsyncClient]
) -> None:
    """Someone who knows an operator's email and fails five times from one address is
    locked out there (423 with Retry-After), even with the right password and code; the
    operator, from another address, still signs in."""
    account = await create_account(container, "support")
    attacker = from_address("127.0.0.6")
    statuses = []
    for _ in range(5):
        response = await attacker.post(
            f"{API}/login", json=login_body(container, account, password="not the password")
        )
        statuses.append((response.status_code, problem_code(response)))
    assert statuses[:4] == [(401, "login_failed")] * 4
    assert statuses[4] == (423, "account_locked")
    assert 1 <= int(response.headers["retry-after"]) <= 15 * 60

    locked = await audit_rows(container, "operator.locked_out")
    assert [r["target_id"] for r in locked] == [account.id]
    assert locked[0]["source_ip"] == "127.0.0.6"

    # The right password and code are refused from the locked address …
    right = await attacker.post(f"{API}/login", json=login_body(container, account))
    assert right.status_code == 423 and problem_code(right) == "account_locked"
    assert int(right.headers["retry-after"]) >= 1
    # … and accepted from the operator's own.
    clock.advance(seconds=30)
    operator = from_address("127.0.0.9")
    response = await operator.post(f"{API}/login", json=login_body(container, account))
    assert response.status_code == 200, response.text
    assert await audit_rows(container, "operator.login_succeeded")


async def test_failures_from_many_addresses_slow_down_but_never_lock_the_operator(
    container: Container, clock: FrozenClock, from_address: Callable[[str], httpx.AsyncClient]
) -> None:
    """Once an email has failed too often from everywhere, each further failing address
    is locked at its first failure, not its fifth; an address that gives the right
    password and code still signs in. An unknown email answers the same."""
    container.rate_limiter.policies["login_email_failures"] = Policy("login_email_failures", 3, 900)
    account = await create_account(container, "support")

    async def spread(email: str, first_octet: int) -> list[tuple[int, str, bool]]:
        answers = []
        for n in range(5):
            body = {"email": email, "password": "wrong-password!", "totp_code": "000000"}
            response = await from_address(f"10.{first_octet}.0.{n + 1}").post(
                f"{API}/login", json=body
            )
            answers.append(
                (response.status_code, problem_code(response), "retry-after" in response.headers)
            )
        return answers

    real = await spread(account.email, 1)
    assert real == [(401, "login_failed", False)] * 2 + [(423, "account_locked", True)] * 3
    assert await spread("nobody-here@bank.example.pk", 2) == real
    clock.advance(seconds=30)
    operator = from_address("10.1.0.99")
    response = await operator.post(f"{API}/login", json=login_body(container, account))
    assert response.status_code == 200, response.text


async def test_a_totp_code_works_once(
    container: Container, clock: FrozenClock, new_client: NewClient
) -> None:
    account = await create_account(container, "support")
    code = totp(container, account)
    first = await new_client().post(f"{API}/login", json=login_body(container, account, code=code))
    assert first.status_code == 200

    replay = await new_client().post(f"{API}/login", json=login_body(container, account, code=code))
    assert replay.status_code == 401
    assert problem_code(replay) == "login_failed"
    previous = pyotp.TOTP(account.totp_secret).at(clock.now(), counter_offset=-1)
    older = await new_client().post(
        f"{API}/login", json=login_body(container, account, code=previous)
    )
    assert older.status_code == 401

    clock.advance(seconds=30)
    fresh = await new_client().post(f"{API}/login", json=login_body(container, account))
    assert fresh.status_code == 200


async def test_unknown_emails_lock_out_exactly_like_accounts(
    container: Container, new_client: NewClient
) -> None:
    """After five failures a real account answers 423; an email with no account must
    answer the same, or the 423 tells which emails exist."""
    account = await create_account(container, "support")
    http = new_client()

    retry_after_given: list[bool] = []

    async def tries(email: str) -> list[tuple[int, str, str, str]]:
        body = {"email": email, "password": "wrong-password!", "totp_code": "000000"}
        answers = []
        for _ in range(7):
            response = await http.post(f"{API}/login", json=body)
            problem = response.json()
            answers.append(
                (response.status_code, problem["code"], problem["title"], problem["detail"])
            )
            retry_after_given.append("retry-after" in response.headers)
        return answers

    real = await tries(account.email)
    unknown = await tries("nobody-here@bank.example.pk")
    assert [a[0] for a in real] == [401] * 4 + [423] * 3
    assert unknown == real
    assert retry_after_given == [False] * 4 + [True] * 3 + [False] * 4 + [True] * 3
    # Each email is locked on its own: a sixth address still gets its five tries.
    fresh = await tries("someone-else@bank.example.pk")
    assert [a[0] for a in fresh] == [401] * 4 + [423] * 3


async def test_rate_limit_applies_to_login(container: Container, new_client: NewClient) -> None:
    http = new_client()
    body = {"email": "flood@bank.example.pk", "password": "x" * 12, "totp_code": "000000"}
    codes = [(await http.post(f"{API}/login", json=body)).status_code for _ in range(10)]
    # No such account: locked out after five failures all the same, like a real one.
    assert codes == [401] * 4 + [423] * 6
    limited = await http.post(f"{API}/login", json=body)
    assert limited.status_code == 429
    assert problem_code(limited) == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


async def test_operators_set_a_partner_rate_limit(
    container: Container, new_client: NewClient
) -> None:
    account = await create_account(container, "operations")
    http = new_client()
    csrf = {"X-CSRF-Token": await login(http, container, account)}
    partner = await container.partners.create_partner(
        ACTOR, name="Payroll Co", roles=["merchant"], mode="sandbox"
    )
    path = f"{API}/partners/{partner.id}/rate_limits"
    for bad in ({"policy": "write", "limit": 0}, {"policy": "token", "limit": 5}):
        refused = await http.post(path, json=bad, headers=csrf)
        assert refused.status_code == 422
    answer = await http.post(
        path, json={"policy": "write", "limit": 6000, "window_seconds": 30}, headers=csrf
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["rate_limits"] == {"write": {"limit": 6000, "window_seconds": 30}}
    shown = (await http.get(f"{API}/partners/{partner.id}")).json()
    assert shown["rate_limits"] == {"write": {"limit": 6000, "window_seconds": 30}}
    cleared = await http.post(path, json={"policy": "write", "limit": None}, headers=csrf)
    assert cleared.json()["rate_limits"] == {}
    records = await audit_records(container, "partner.rate_limit_changed", partner.id)
    assert [(r.actor.id, r.payload["to"]) for r in reversed(records)] == [
        (account.id, [6000, 30]),
        (account.id, None),
    ]


# -- the permission matrix ------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    permission: Permission
    body: dict[str, Any] | None = None


# In call order: rotation happens before revocation, status change keeps the partner active.
ENDPOINTS = [
    Endpoint("GET", "/partners", P.PARTNERS_READ),
    Endpoint("GET", "/partners/{partner_id}", P.PARTNERS_READ),
    Endpoint("POST", "/partners", P.PARTNERS_WRITE, {"name": "Matrix", "roles": ["merchant"]}),
    Endpoint("POST", "/partners/{partner_id}/status", P.PARTNERS_SUSPEND, {"status": "active"}),
    Endpoint(
        "POST", "/partners/{partner_id}/limits", P.PARTNERS_WRITE, {"per_transaction_limit": 100000}
    ),
    Endpoint(
        "POST",
        "/partners/{partner_id}/rate_limits",
        P.PARTNERS_WRITE,
        {"policy": "write", "limit": 6000, "window_seconds": 60},
    ),
    Endpoint("POST", "/partners/{partner_id}/clients", P.CLIENTS_WRITE, {"name": "matrix"}),
    Endpoint("POST", "/clients/{client_id}/rotate_secret", P.CLIENTS_WRITE),
    Endpoint("POST", "/clients/{client_id}/revoke", P.CLIENTS_WRITE),
    Endpoint("GET", "/operators", P.OPERATORS_READ),
    Endpoint(
        "POST",
        "/operators",
        P.OPERATORS_WRITE,
        {"email": "{role}-new@bank.example.pk", "name": "New", "roles": ["support"]},
    ),
    Endpoint("PATCH", "/operators/{operator_id}", P.OPERATORS_WRITE, {"roles": ["auditor"]}),
    Endpoint("GET", "/signing_keys", P.KEYS_ROTATE),
    Endpoint("POST", "/signing_keys/rotate", P.KEYS_ROTATE),
    Endpoint("GET", "/audit", P.AUDIT_READ),
]


def _declared_permission(route: APIRoute) -> Permission | None:
    names = {f"require_{p.value.replace('.', '_')}": p for p in Permission}
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        name = getattr(dependency.call, "__name__", "")
        if name in names:
            return names[name]
        stack.extend(dependency.dependencies)
    return None


def test_the_matrix_covers_every_permission_checked_route() -> None:
    declared: dict[tuple[str, str], Permission] = {}
    operator_api = [operator_routes.public, operator_routes.router, operator_keys.router]
    for route in [r for router in operator_api for r in router.routes]:
        assert isinstance(route, APIRoute)
        permission = _declared_permission(route)
        if permission is not None:
            for method in route.methods:
                declared[(method, route.path.removeprefix(API))] = permission
    assert declared == {(e.method, e.path): e.permission for e in ENDPOINTS}


@pytest.mark.parametrize("role", list(OperatorRole), ids=lambda r: r.value)
async def test_each_role_gets_exactly_its_permissions(
    role: OperatorRole, container: Container, new_client: NewClient
) -> None:
    account = await create_account(container, role.value)
    partner = await container.partners.create_partner(
        ACTOR, name="Matrix target", roles=["merchant"], mode="sandbox"
    )
    issued = await container.partners.create_client(ACTOR, partner.id, name="matrix target")
    other = await create_account(container, "support", email=f"other-{role.value}@bank.example.pk")
    ids = {"partner_id": partner.id, "client_id": issued.client.id, "operator_id": other.id}
    http = new_client()
    csrf = await login(http, container, account)
    granted = ROLE_PERMISSIONS[role]

    mismatches = []
    for endpoint in ENDPOINTS:
        body = endpoint.body
        if body is not None and "email" in body:
            body = {**body, "email": body["email"].format(role=role.value), "password": PASSWORD}
        response = await http.request(
            endpoint.method,
            API + endpoint.path.format(**ids),
            json=body,
            headers={"X-CSRF-Token": csrf} if endpoint.method != "GET" else None,
        )
        allowed = endpoint.permission in granted
        ok = (
            200 <= response.status_code < 300
            if allowed
            else response.status_code == 403 and problem_code(response) == "forbidden"
        )
        if not ok:
            mismatches.append(
                (endpoint.method, endpoint.path, endpoint.permission.value, response.status_code)
            )
        if not allowed:
            assert endpoint.permission.value in response.json()["detail"]
    assert mismatches == [], f"{role.value}: {mismatches}"


# -- operator administration ----------------------------------------------------------------


async def test_an_operator_cannot_change_their_own_roles(
    container: Container, new_client: NewClient
) -> None:
    admin = await create_account(container, "admin")
    http = new_client()
    csrf = await login(http, container, admin)
    response = await http.patch(
        f"{API}/operators/{admin.id}",
        json={"roles": ["admin", "operations"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 409
    assert problem_code(response) == "conflict"
    me = await http.get(f"{API}/me")
    assert me.json()["operator"]["roles"] == ["admin"]
    assert await audit_rows(container, "operator.role_changed") == []


async def test_role_change_is_audited_and_revokes_sessions(
    container: Container, new_client: NewClient
) -> None:
    admin = await create_account(container, "admin")
    target = await create_account(container, "support", "risk")
    admin_http, target_http = new_client(), new_client()
    csrf = await login(admin_http, container, admin)
    await login(target_http, container, target)
    assert (await target_http.get(f"{API}/me")).status_code == 200

    response = await admin_http.patch(
        f"{API}/operators/{target.id}", json={"roles": ["auditor"]}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["auditor"]
    assert response.json()["permissions"] == sorted(
        p.value for p in ROLE_PERMISSIONS[OperatorRole.AUDITOR]
    )

    records = await audit_records(container, "operator.role_changed", target.id)
    assert len(records) == 1
    assert records[0].actor.id == admin.id
    assert records[0].actor.source_ip == "127.0.0.1"
    assert records[0].payload == {"from": ["risk", "support"], "to": ["auditor"]}

    after = await target_http.get(f"{API}/me")
    assert after.status_code == 401
    assert (await admin_http.get(f"{API}/me")).status_code == 200


async def test_create_operator_returns_the_totp_secret_once(
    container: Container, clock: FrozenClock, new_client: NewClient
) -> None:
    admin = await create_account(container, "admin")
    http = new_client()
    csrf = await login(http, container, admin)
    response = await http.post(
        f"{API}/operators",
        json={
            "email": "New.Analyst@Bank.example.pk",
            "name": "New Analyst",
            "roles": ["compliance"],
            "password": PASSWORD,
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["email"] == "new.analyst@bank.example.pk"
    assert created["totp_uri"].startswith("otpauth://totp/")
    secret = created["totp_secret"]
    listing = await http.get(f"{API}/operators")
    assert secret not in listing.text
    assert "totp" not in listing.text
    assert "password" not in listing.text

    newcomer = Account(created["id"], created["email"], secret, ("compliance",))
    clock.advance(seconds=30)
    await login(new_client(), container, newcomer)


# -- partners and client secrets ------------------------------------------------------------


async def test_client_secret_is_shown_once_and_rotation_replaces_it(
    container: Container, new_client: NewClient
) -> None:
    await container.signing_keys.ensure_active(ACTOR)
    ops = await create_account(container, "operations")
    http = new_client()
    headers = {"X-CSRF-Token": await login(http, container, ops)}

    partner = await http.post(
        f"{API}/partners",
        json={"name": "Karachi Kebabs", "roles": ["merchant"], "mode": "sandbox"},
        headers=headers,
    )
    assert partner.status_code == 201, partner.text
    partner_id = partner.json()["id"]
    created = await http.post(
        f"{API}/partners/{partner_id}/clients",
        json={"name": "checkout", "scopes": ["payments:read", "payments:write"]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    client_id, secret = created.json()["id"], created.json()["client_secret"]
    assert secret.startswith("cs_")
    assert created.json()["scopes"] == ["payments:read", "payments:write"]

    detail = await http.get(f"{API}/partners/{partner_id}")
    assert detail.status_code == 200
    (listed,) = detail.json()["clients"]
    assert listed["id"] == client_id
    assert "client_secret" not in listed
    assert "secret_hash" not in listed
    assert secret not in detail.text
    async with container.db.read() as conn:
        stored = (
            await conn.execute(
                sa.select(oauth_clients.c.secret_hash).where(oauth_clients.c.id == client_id)
            )
        ).scalar_one()
    assert stored != secret
    assert secret not in stored

    assert (await token_status(http, client_id, secret)).status_code == 200

    rotated = await http.post(f"{API}/clients/{client_id}/rotate_secret", headers=headers)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret
    assert rotated.json()["secret_rotated_at"]
    assert new_secret not in (await http.get(f"{API}/partners/{partner_id}")).text

    old = await token_status(http, client_id, secret)
    assert old.status_code == 401
    assert old.json()["error"] == "invalid_client"
    new = await token_status(http, client_id, new_secret)
    assert new.status_code == 200, new.text
    assert new.json()["token_type"] == "Bearer"

    rotations = await audit_records(container, "client.secret_rotated", client_id)
    assert [r.actor.id for r in rotations] == [ops.id]
    assert all(secret not in str(r.payload) for r in rotations)

    revoked = await http.post(f"{API}/clients/{client_id}/revoke", headers=headers)
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    after = await token_status(http, client_id, new_secret)
    assert after.status_code == 401
    assert after.json()["error"] == "invalid_client"
