"""Driving open banking as a TPP and a PSU would, over HTTP: create a consent, walk the
bank's hosted pages (sign in, one-time code, accounts, approve), exchange the code.

Every OBIE answer these helpers see is validated against the official specification
(tests/support/obie_spec.py), so any test that uses them checks the contract too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from tests.support.oauth import (
    LOOPBACK_REDIRECT,
    RegisteredClient,
    bearer,
    exchange_code,
    pkce_pair,
)
from tests.support.obie_spec import validate_request, validate_response

from amanat.bootstrap import Container
from amanat.openbanking.adapters.sandbox_bank import SandboxBank
from amanat.openbanking.domain.sandbox_credentials import SANDBOX_PSU_PASSWORD
from amanat.platform.audit.domain import Actor

TESTS = Actor(type="cli", id="tests")

AISP = "/open-banking/v3.1/aisp"
INTERACTION = "93bac548-d2de-4546-b106-880a5018460d"


async def seed_bank(container: Container) -> None:
    """A small sandbox bank: three customers, four months of history (enough for
    Ayesha's transactions to span more than one page)."""
    await container.protection.ensure_keys(TESTS)
    await container.get(SandboxBank).seed(customers=3, months=4)


async def obie(
    http: httpx.AsyncClient,
    api: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    *,
    base: str = AISP,
) -> httpx.Response:
    """One OBIE call, its request and response both checked against the spec."""
    sent = {"x-fapi-interaction-id": INTERACTION, **headers}
    raw = None
    if body is not None:
        raw = httpx.Request("POST", "http://x", json=body).content
        sent["content-type"] = "application/json"
        validate_request(api, method, path, sent, raw)
    response = await http.request(method, f"{base}{path}", headers=sent, content=raw)
    validate_response(
        api, method, path, response.status_code, dict(response.headers), response.content
    )
    return response


async def create_account_consent(
    http: httpx.AsyncClient, tpp: RegisteredClient, permissions: list[str], **data: str
) -> dict[str, Any]:
    headers = await bearer(http, tpp, scope="accounts")
    response = await obie(
        http,
        "accounts",
        "POST",
        "/account-access-consents",
        headers,
        {"Data": {"Permissions": permissions, **data}, "Risk": {}},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@dataclass
class Walk:
    """A browser on the bank's pages: the page it is on, and the last HTML it saw."""

    http: httpx.AsyncClient
    location: str
    html: str = ""

    async def get(self) -> httpx.Response:
        response = await self.http.get(self.location)
        self.html = response.text
        return response

    async def post(self, action: str, data: dict[str, Any]) -> httpx.Response:
        response = await self.http.post(action, data=data)
        self.html = response.text
        return response


async def start_walk(
    http: httpx.AsyncClient,
    tpp: RegisteredClient,
    consent_id: str,
    *,
    scope: str = "accounts",
    state: str = "st-1",
) -> tuple[Walk, str]:
    """The TPP's redirect to the authorization endpoint, followed to the sign-in page;
    returns the walk and the PKCE verifier."""
    verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": tpp.id,
            "redirect_uri": LOOPBACK_REDIRECT,
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": consent_id,
        }
    )
    first = await http.get(f"/oauth/authorize?{query}")
    assert first.status_code == 303, first.text
    second = await http.get(first.headers["location"])
    assert second.status_code == 303, second.text
    walk = Walk(http, second.headers["location"])
    page = await walk.get()
    assert page.status_code == 200, page.text
    return walk, verifier


def sandbox_code(html: str) -> str:
    found = re.search(r"<strong data-code>(\d{6})</strong>", html)
    assert found, html
    return found.group(1)


def offered_accounts(html: str) -> list[str]:
    return re.findall(r'name="accounts" value="([^"]+)"', html)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(LOOPBACK_REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def authorise(
    http: httpx.AsyncClient,
    tpp: RegisteredClient,
    consent_id: str,
    *,
    username: str = "ayesha.khan",
    accounts: int | None = None,
    scope: str = "accounts",
) -> dict[str, Any]:
    """A PSU approves the consent with ``accounts`` of their accounts (all by default);
    returns the TPP's token response."""
    walk, verifier = await start_walk(http, tpp, consent_id, scope=scope)
    walk_id = walk.location.rsplit("/", 1)[1]
    signed_in = await walk.post(
        f"/psu/walks/{walk_id}/sign-in",
        {"username": username, "password": SANDBOX_PSU_PASSWORD},
    )
    assert signed_in.status_code == 200, signed_in.text
    decided = await walk.post(f"/psu/walks/{walk_id}/code", {"code": sandbox_code(walk.html)})
    assert decided.status_code == 200, decided.text
    offered = offered_accounts(walk.html)
    assert offered, walk.html
    chosen = offered if accounts is None else offered[:accounts]
    finished = await walk.post(
        f"/psu/walks/{walk_id}/decision",
        {"decision": "approve", "accounts": chosen, "device": "test-device"},
    )
    params = redirect_params(finished)
    assert params["state"] == "st-1"
    tokens = await exchange_code(http, tpp, params["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


CBPII = "/open-banking/v3.1/cbpii"
AYESHA_IBAN = "PK36SCBL0000001123456702"  # her first sandbox account (sandbox_bank_data)


async def create_funds_consent(
    http: httpx.AsyncClient, tpp: RegisteredClient, iban: str = AYESHA_IBAN
) -> dict[str, Any]:
    headers = await bearer(http, tpp, scope="fundsconfirmations")
    response = await obie(
        http,
        "funds",
        "POST",
        "/funds-confirmation-consents",
        headers,
        {"Data": {"DebtorAccount": {"SchemeName": "UK.OBIE.IBAN", "Identification": iban}}},
        base=CBPII,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


PISP = "/open-banking/v3.1/pisp"
_SIGNING_KEYS: dict[str, Any] = {}


def tpp_key() -> Any:
    """The test TPP's RSA signing key (made once per test process: RSA is slow)."""
    from joserfc.jwk import RSAKey

    if "key" not in _SIGNING_KEYS:
        _SIGNING_KEYS["key"] = RSAKey.generate_key(2048, parameters={"kid": "tpp-sig-1"})
    return _SIGNING_KEYS["key"]


def sign_at_server_time(container: Container) -> None:
    """Sign with the server's (frozen) clock, whoever registered the key."""
    _SIGNING_KEYS["clock"] = container.clock


async def make_signing_tpp(container: Container) -> RegisteredClient:
    """A TPP client that registered its public signing key (for x-jws-signature)."""
    from tests.support.oauth import make_tpp_client

    public = tpp_key().as_dict(private=False)
    _SIGNING_KEYS["clock"] = container.clock  # signatures carry the server's (frozen) time
    return await make_tpp_client(container, jwks={"keys": [public]})


def _signing_time() -> int:
    import time

    clock = _SIGNING_KEYS.get("clock")
    return int(clock.now().timestamp()) if clock is not None else int(time.time())


def sign_body(body: bytes, client_id: str, *, iat: int | None = None, key: Any = None) -> str:
    """A detached JWS of ``body`` as OBIE v3.1.11 profiles it."""
    from joserfc import jws
    from joserfc.jws import JWSRegistry
    from joserfc.registry import HeaderParameter

    crit = [
        "http://openbanking.org.uk/iat",
        "http://openbanking.org.uk/iss",
        "http://openbanking.org.uk/tan",
    ]
    registry = JWSRegistry(
        header_registry={name: HeaderParameter(name, lambda _value: None, True) for name in crit},
        algorithms=["PS256"],
    )
    signing = key or tpp_key()
    header = {
        "alg": "PS256",
        "kid": signing.kid,
        "typ": "JOSE",
        "cty": "application/json",
        crit[0]: iat if iat is not None else _signing_time(),
        crit[1]: client_id,
        crit[2]: "openbanking.org.uk",
        "crit": crit,
    }
    protected, _payload, signature = jws.serialize_compact(
        header, body, signing, registry=registry
    ).split(".")
    return f"{protected}..{signature}"


async def pisp(
    http: httpx.AsyncClient,
    tpp: RegisteredClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
) -> httpx.Response:
    """A payment-initiation call: signed and keyed when it has a body."""
    sent = dict(headers)
    if body is not None:
        raw = httpx.Request("POST", "http://x", json=body).content
        sent["x-jws-signature"] = sign_body(raw, tpp.id)
        sent["x-idempotency-key"] = idempotency_key or f"k-{len(raw)}-{hash(raw) & 0xFFFFFF}"
    return await obie(http, "payments", method, path, sent, body, base=PISP)


def domestic_initiation(amount: str = "1500.00", **changes: Any) -> dict[str, Any]:
    return {
        "InstructionIdentification": "INSTR-0001",
        "EndToEndIdentification": "E2E-0001",
        "LocalInstrument": "PK.SBP.Raast",
        "InstructedAmount": {"Amount": amount, "Currency": "PKR"},
        "CreditorAccount": {
            "SchemeName": "UK.OBIE.IBAN",
            "Identification": "PK52MEZN0002140100345678",
            "Name": "Bilal Ahmed",
        },
        "RemittanceInformation": {"Reference": "Invoice 42", "Unstructured": "Rent for December"},
        **changes,
    }
