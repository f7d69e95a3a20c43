"""The published OpenAPI document tells the truth: every operation is described, every
POST under /v1 declares its required Idempotency-Key, enums are declared, no text points
at a repository path, and every request-body example works as published against the
sandbox."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pyotp
from tests.support.oauth import ACTOR, fetch_token, make_client
from tests.support.openapi_walk import operations

from amanat.bootstrap import Container, registry
from amanat.platform.http.problems import CATALOGUE
from amanat.sandbox_rail.magic import CREDIT_TRANSFER, REQUEST_TO_PAY, magic_for
from amanat.sandbox_seed import seed

registry()  # every capability's problem codes are in the catalogue

_REPO_PATH = re.compile(r"\bdocs/[\w./-]+")


async def test_every_operation_is_described(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    undescribed = [
        f"{m.upper()} {p}" for m, p, op in operations(schema) if not op.get("description")
    ]
    assert undescribed == []


async def test_every_v1_post_requires_an_idempotency_key(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    posts = [(p, op) for m, p, op in operations(schema) if m == "post" and p.startswith("/v1/")]
    assert posts
    for path, operation in posts:
        headers = [
            parameter
            for parameter in operation.get("parameters", [])
            if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key"
        ]
        assert headers and headers[0]["required"] is True, path
        assert "null" not in str(headers[0]["schema"]), path


async def test_enums_are_declared(client: httpx.AsyncClient) -> None:
    components = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert set(components["PaymentStatus"]["enum"]) >= {"pending", "succeeded", "failed"}
    payment = components["PaymentOut"]["properties"]
    assert payment["type"]["enum"] == ["payout", "collection", "refund"]
    assert payment["currency"].get("enum") == ["PKR"] or payment["currency"]["const"] == "PKR"
    failure_codes = components["FailureOut"]["properties"]["code"]["enum"]
    assert set(failure_codes) == {c for c, e in CATALOGUE.items() if e.is_rail_failure}
    assert "payment.succeeded" in components["EventOut"]["properties"]["type"]["enum"]
    enabled = components["EndpointIn"]["properties"]["enabled_events"]["items"]["enum"]
    assert "*" in enabled and "refund.failed" in enabled
    assert components["PartnerOut"]["properties"]["status"]["enum"] == ["active", "suspended"]
    assert "admin" in components["OperatorRole"]["enum"]
    assert "partners.suspend" in components["Permission"]["enum"]
    assert "private_key_jwt" in components["ClientAuthMethod"]["enum"]
    assert components["DeliveryOut"]["properties"]["status"]["enum"] == [
        "pending",
        "succeeded",
        "failed",
    ]


async def test_no_text_points_at_a_repository_path(
    client: httpx.AsyncClient, container: Container
) -> None:
    published = (await client.get("/openapi.json")).text
    assert _REPO_PATH.findall(published) == []
    for entry in CATALOGUE.values():
        texts = f"{entry.title} {entry.description} {entry.remedy} {entry.example or ''}"
        assert _REPO_PATH.findall(texts) == [], entry.code
    token = await fetch_token(client, await make_client(container), scope="webhooks:manage")
    refusal = await client.post(
        "/v1/webhook_endpoints",
        json={"url": "https://merchant.example.pk/hooks", "enabled_events": ["no.such_event"]},
        headers={"Idempotency-Key": "k", "Authorization": f"Bearer {token['access_token']}"},
    )
    assert refusal.status_code == 422
    assert "no.such_event" in refusal.text
    assert _REPO_PATH.findall(refusal.text) == []


class _Sandbox:
    """The seeded sandbox and the ids the examples' paths and bodies refer to."""

    def __init__(self, client: httpx.AsyncClient, container: Container) -> None:
        self.client = client
        self.container = container
        self.ids: dict[str, str] = {}

    async def start(self) -> None:
        self.credentials = await seed(self.container)
        merchant = self.credentials["merchant"]
        self.basic = httpx.BasicAuth(merchant["client_id"], merchant["client_secret"])
        self.bearer = {"Authorization": f"Bearer {await self.token()}"}
        # The seeded admin may do everything but suspend; the risk role adds that.
        async with self.container.transactions.read() as tx:
            (admin,) = await tx.operators.list_operators()
        await self.container.operators.set_roles(ACTOR, admin.id, ["admin", "operations", "risk"])

    async def token(self) -> str:
        response = await self.client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=self.basic
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def path(self, template: str) -> str:
        ids = self.ids
        if template.startswith("/operator/v1/disputes/"):
            # Operations' examples act on the dispute operations opened.
            ids = ids | {"dispute_id": ids["operator_dispute_id"]}

        def fill(match: re.Match[str]) -> str:
            return ids[match.group(1)]

        return re.sub(r"\{(\w+)\}", fill, template)

    async def body(self, method: str, path: str, value: Any) -> Any:
        """The published example, with only what no example can know: your own ids and
        secrets."""
        if (method, path) in (
            ("post", "/v1/refunds"),
            ("post", "/v1/disputes"),
            ("post", "/operator/v1/disputes"),
        ):
            return value | {"payment_id": self.ids["collection_id"]}
        if path in ("/oauth/revoke", "/oauth/introspect"):
            return value | {"token": await self.token()}
        if path == "/operator/v1/login":
            admin = self.credentials["console_admin"]
            code = pyotp.TOTP(admin["totp_secret"]).at(self.container.clock.now())
            return value | {"password": admin["password"], "totp_code": code}
        return value

    async def colleague(self) -> None:
        """Sign in another operations operator: who opened a dispute and answered it for
        the merchant may not also decide it (four eyes)."""
        created = await self.container.operators.create_operator(
            ACTOR,
            email="colleague@sandbox.amanat.local",
            name="Colleague",
            roles=["operations"],
            password=COLLEAGUE_PASSWORD,
        )
        code = pyotp.TOTP(created.totp_secret).at(self.container.clock.now())
        login = await self.client.post(
            "/operator/v1/login",
            json={
                "email": created.operator.email,
                "password": COLLEAGUE_PASSWORD,
                "totp_code": code,
            },
        )
        assert login.status_code == 200, login.text
        self.ids["csrf"] = login.json()["csrf_token"]

    async def send(
        self, method: str, path: str, media: str, value: Any, params: dict[str, Any]
    ) -> httpx.Response:
        if path == "/operator/v1/disputes/{dispute_id}/decide" and "colleague" not in self.ids:
            await self.colleague()  # the decision is the last example sent
            self.ids["colleague"] = "yes"
        url = self.path(path)
        body = await self.body(method, path, value)
        if path.startswith("/oauth/"):
            return await self.client.request(method, url, data=body, auth=self.basic)
        headers: dict[str, str] = {}
        if path.startswith("/v1/"):
            headers |= self.bearer
            if method == "post":
                headers["Idempotency-Key"] = str(uuid.uuid4())
        elif "csrf" in self.ids:
            headers["X-CSRF-Token"] = self.ids["csrf"]
        if media != "application/json":  # a file sent as it is (a statement, evidence)
            return await self.client.request(
                method,
                url,
                content=body.encode(),
                params=params,
                headers=headers | {"Content-Type": media},
            )
        assert media == "application/json"
        return await self.client.request(method, url, json=body, params=params, headers=headers)

    async def remember(self, method: str, path: str, answer: dict[str, Any]) -> None:
        """Keep the ids later examples need (their paths name them)."""
        if path == "/operator/v1/login":
            self.ids["csrf"] = answer["csrf_token"]
        elif path == "/operator/v1/partners":
            self.ids["partner_id"] = answer["id"]
        elif path == "/operator/v1/operators" and method == "post":
            self.ids["operator_id"] = answer["id"]
        elif path == "/operator/v1/reconciliation/imports":
            breaks = await self.client.get("/operator/v1/reconciliation/breaks")
            self.ids["break_id"] = breaks.json()["data"][0]["id"]
        elif path == "/v1/disputes":
            self.ids["dispute_id"] = answer["id"]
        elif path == "/operator/v1/disputes" and method == "post":
            self.ids["operator_dispute_id"] = answer["id"]
        elif path == "/v1/webhook_endpoints":
            self.ids["endpoint_id"] = answer["id"]
        elif path == "/v1/payments":
            # Accepted is not enough: the example must not pick a failing sandbox outcome.
            kind = CREDIT_TRANSFER if answer["type"] == "payout" else REQUEST_TO_PAY
            assert magic_for(kind, answer["amount"]).succeeds, answer["amount"]
        if path == "/v1/payments" and answer["type"] == "collection":
            self.ids["collection_id"] = answer["id"]
            # The payer approves in the sandbox bank: now it can be refunded.
            await self.container.payments.apply_rail_status(
                answer["id"], "approved", sequence=3, cause="test"
            )
            events = (await self.client.get("/v1/events", headers=self.bearer)).json()
            self.ids["event_id"] = events["data"][0]["id"]


COLLEAGUE_PASSWORD = "colleague password 2026"

# After the collection they name: its refund and its disputes.
AFTER_THE_COLLECTION = ("/v1/refunds", "/v1/disputes", "/operator/v1/disputes")
# A dispute's life, in order: evidence while it awaits the response, then the response,
# then the decision.
DISPUTE_STEPS = ("evidence", "respond", "decide")


def _order(entry: tuple[str, str, dict[str, Any]]) -> tuple[int, int, str]:
    """Creations first (later examples' paths name what they create), refunds and
    disputes after the collection they name, logins before the operator calls they open,
    a dispute's steps in the order of its life."""
    _method, path, _operation = entry
    step = 0
    if "/disputes/{" in path:
        last = path.rsplit("/", 1)[-1]
        step = DISPUTE_STEPS.index(last) + 1 if last in DISPUTE_STEPS else 0
    return ("{" in path) + (path in AFTER_THE_COLLECTION), step, path


async def test_every_published_example_is_accepted_by_the_sandbox(
    client: httpx.AsyncClient, container: Container
) -> None:
    schema = (await client.get("/openapi.json")).json()
    sandbox = _Sandbox(client, container)
    await sandbox.start()
    with_body = sorted(
        ((m, p, op) for m, p, op in operations(schema) if "requestBody" in op), key=_order
    )
    assert len(with_body) >= 19
    tried = 0
    for method, path, operation in with_body:
        content = operation["requestBody"]["content"]
        assert len(content) == 1, path
        media, media_type = next(iter(content.items()))
        examples = media_type.get("examples")
        assert examples, f"{method.upper()} {path} publishes no example"
        params = {
            p["name"]: next(iter(p["examples"].values()))["value"]
            for p in operation.get("parameters", [])
            if p["in"] == "query" and p.get("examples")
        }
        for name, example in examples.items():
            response = await sandbox.send(method, path, media, example["value"], params)
            assert response.is_success, f"{method.upper()} {path} example {name}: {response.text}"
            if response.content:
                await sandbox.remember(method, path, response.json())
            tried += 1
    assert tried >= len(with_body)
