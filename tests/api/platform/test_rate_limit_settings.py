"""Rate limits as a product setting: AMANAT_RATE_LIMITS__<POLICY>=LIMIT/WINDOW_SECONDS at
start-up, and a partner's own quota set by an operator, applied from its next request."""

from __future__ import annotations

import httpx
import pydantic
import pytest
from tests.support.oauth import ACTOR, RegisteredClient, fetch_token, funded_merchant, make_client
from typer.testing import CliRunner

from amanat.bootstrap import Container
from amanat.cli import app as cli_app
from amanat.kernel.errors import InvalidInput
from amanat.platform.audit.domain import AuditRecord
from amanat.platform.ratelimit.limiter import DEFAULT_POLICIES, Policy
from amanat.platform.settings import Settings

PAYOUT = {
    "amount": 1000,
    "currency": "PKR",
    "creditor": {"iban": "PK36SCBL0000001123456702", "name": "Ayesha Khan"},
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limits": {"write": "5/60"}})


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    return await funded_merchant(container, "Payroll Co")


async def audit_records(container: Container, action: str, target_id: str) -> list[AuditRecord]:
    await container.audit_integrity.chain_pending()  # the sequencer's work, now
    async with container.transactions.read() as tx:
        page = await tx.audit.list_records(100, None, action, target_id)
    return list(page.items)


async def _writes(
    client: httpx.AsyncClient, auth: dict[str, str], count: int, tag: str
) -> list[httpx.Response]:
    return [
        await client.post(
            "/v1/payments", json=PAYOUT, headers=auth | {"Idempotency-Key": f"{tag}-{i}"}
        )
        for i in range(count)
    ]


async def _auth(client: httpx.AsyncClient, registered: RegisteredClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {(await fetch_token(client, registered))['access_token']}"}


# --- the setting ---------------------------------------------------------------------------


def test_env_sets_each_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMANAT_RATE_LIMITS__WRITE", "400/60")
    monkeypatch.setenv("AMANAT_RATE_LIMITS__TOKEN_FAILURES", " 7 / 120 ")
    policies = Settings().rate_limit_policies()
    assert policies["write"] == Policy("write", 400, 60)
    assert policies["token_failures"] == Policy("token_failures", 7, 120)
    assert policies["read"] == DEFAULT_POLICIES["read"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AMANAT_RATE_LIMITS__WRITE", "400", "LIMIT/WINDOW_SECONDS"),
        ("AMANAT_RATE_LIMITS__WRITE", "400x60", "LIMIT/WINDOW_SECONDS"),
        ("AMANAT_RATE_LIMITS__WRITE", "-1/60", "LIMIT/WINDOW_SECONDS"),
        ("AMANAT_RATE_LIMITS__WRITE", "0/60", "limit must be at least 1"),
        ("AMANAT_RATE_LIMITS__WRITE", "10/0", "window_seconds must be at least 1"),
        ("AMANAT_RATE_LIMITS__WRTIE", "10/60", "no such policy"),
    ],
)
def test_a_bad_setting_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(pydantic.ValidationError, match=message):
        Settings()
    result = CliRunner().invoke(cli_app, ["config", "show"])
    output = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2
    assert "a setting is wrong" in output
    assert message in output
    assert "Traceback" not in output


async def test_the_configured_write_quota_applies(
    client: httpx.AsyncClient, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    responses = await _writes(client, auth, 6, "env")
    assert [r.status_code for r in responses] == [201] * 5 + [429]
    refused = responses[-1]
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-policy"] == '"write";q=5;w=60'
    assert responses[0].headers["ratelimit"] == '"write";r=4;t=60'


# --- a partner's own quota -----------------------------------------------------------------


async def test_a_partner_quota_raises_and_lowers_the_limit_at_once(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    auth = await _auth(client, merchant)
    await container.partners.set_rate_limit(ACTOR, merchant.partner.id, "write", (8, 60))
    raised = await _writes(client, auth, 9, "raised")
    assert [r.status_code for r in raised] == [201] * 8 + [429]
    assert raised[0].headers["ratelimit-policy"] == '"write";q=8;w=60'
    assert raised[0].headers["ratelimit"] == '"write";r=7;t=60'

    await container.partners.set_rate_limit(ACTOR, merchant.partner.id, "write", (2, 30))
    lowered = await _writes(client, auth, 3, "lowered")
    assert [r.status_code for r in lowered] == [201, 201, 429]
    assert lowered[-1].headers["ratelimit-policy"] == '"write";q=2;w=30'

    # Other partners keep the platform's quota.
    other = await make_client(container, name="Other Co")
    read = await client.get("/v1/balance", headers=await _auth(client, other))
    assert read.headers["ratelimit-policy"] == '"read";q=6000;w=60'

    changed = await container.partners.set_rate_limit(ACTOR, merchant.partner.id, "write", None)
    assert changed.rate_limits == {}
    records = await audit_records(container, "partner.rate_limit_changed", merchant.partner.id)
    assert [r.payload for r in reversed(records)] == [
        {"policy": "write", "from": None, "to": [8, 60]},
        {"policy": "write", "from": [8, 60], "to": [2, 30]},
        {"policy": "write", "from": [2, 30], "to": None},
    ]
    assert all(r.actor.id == ACTOR.id for r in records)


@pytest.mark.parametrize(
    ("policy", "quota"),
    [("token", (10, 60)), ("write", (0, 60)), ("write", (10, 0)), ("write", (10, 86_401))],
)
async def test_a_bad_partner_quota_is_refused(
    container: Container, merchant: RegisteredClient, policy: str, quota: tuple[int, int]
) -> None:
    with pytest.raises(InvalidInput):
        await container.partners.set_rate_limit(ACTOR, merchant.partner.id, policy, quota)
    assert await audit_records(container, "partner.rate_limit_changed", merchant.partner.id) == []
