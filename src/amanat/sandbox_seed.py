"""Seeding the sandbox: one merchant, one TPP, one console admin, and a signing key.

Secrets are shown once and stored only as hashes, so the seed writes the sandbox
credentials it generated to a local file (mode 0600, under ``var/``) and prints them again
on every ``make run``. The sandbox never runs with production data, and ``production``
refuses to seed at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from amanat.bootstrap import Container
from amanat.identity.queries import IdentityQueries
from amanat.openbanking.adapters.sandbox_bank import SandboxBank
from amanat.platform.audit.domain import Actor
from amanat.platform.crypto.secret_files import exclusive, replace_atomically

SEED_ACTOR = Actor(type="cli", id="sandbox-seed")
# The page at this path (platform/http/pages.py) shows the code and state the TPP app would receive.
TPP_REDIRECT_PATH = "/sandbox/oauth/callback"
# Made-up people with valid-looking identifiers (the IBAN is the standard example).
SANDBOX_CUSTOMERS = [
    ("Ayesha Khan", "PK36SCBL0000001123456702", "+923001234567", "35202-1234567-3"),
    ("Bilal Ahmed", "PK52MEZN0002140100345678", "+923331234567", "42101-7654321-9"),
]


async def seed(container: Container) -> dict[str, Any]:
    settings = container.settings
    if settings.is_production:
        raise RuntimeError("refusing to seed sandbox data in production")
    # Two `make run`s starting together would each find no credentials and seed twice;
    # one at a time, the second finds the first's credentials and keeps them.
    path = settings.auth.sandbox_credentials_file
    with exclusive(path.with_name(path.name + ".lock")):
        return await _seed(container)


async def _seed(container: Container) -> dict[str, Any]:
    settings = container.settings
    await container.signing_keys.ensure_active(SEED_ACTOR)
    await container.protection.ensure_keys(SEED_ACTOR)
    # The bank behind open banking: made-up customers with months of history (once).
    await container.get(SandboxBank).seed()
    path = settings.auth.sandbox_credentials_file
    redirect_uri = tpp_redirect_uri(settings.http.public_url)
    existing = _read(path)
    if existing and await _still_valid(container, existing):
        if (
            existing["tpp"].get("redirect_uri") != redirect_uri
            or "signing_key" not in existing["tpp"]
        ):
            # The server moved (another port or public URL): the TPP app gets a client
            # whose redirect_uri is on the new address, and the old client goes.
            existing["tpp"] = await _reissue_tpp_client(container, existing["tpp"], redirect_uri)
            _write(path, existing)
        return existing
    merchant = await container.partners.create_partner(
        SEED_ACTOR, name="Sandbox Merchant", roles=["merchant"], mode="sandbox"
    )
    # The sandbox client may try everything a merchant may, the opt-in customers:reveal
    # included (its tokens still carry it only when asked for by name).
    merchant_client = await container.partners.create_client(
        SEED_ACTOR,
        merchant.id,
        name="Sandbox Merchant server",
        scopes=sorted(merchant.allowed_scopes),
    )
    tpp = await container.partners.create_partner(
        SEED_ACTOR, name="Sandbox TPP", roles=["aisp", "pisp", "cbpii"], mode="sandbox"
    )
    signing_key, public_jwks = _tpp_signing_key()
    tpp_client = await container.partners.create_client(
        SEED_ACTOR, tpp.id, name="Sandbox TPP app", redirect_uris=[redirect_uri], jwks=public_jwks
    )
    from amanat.auth.domain import Caller

    await container.payments.top_up(
        Caller(partner_id=merchant.id, client_id=None, actor=SEED_ACTOR),
        container.settings.sandbox.initial_balance_minor,
    )
    customers = []
    for name, iban, raast_id, cnic in SANDBOX_CUSTOMERS:
        record = await container.protection.create_subject(
            SEED_ACTOR, merchant.id, name=name, iban=iban, raast_id=raast_id, cnic=cnic
        )
        customers.append({"id": record.id, "name": name})
    admin_password = "sandbox-" + os.urandom(9).hex()
    admin = await container.operators.create_operator(
        SEED_ACTOR,
        email="admin@sandbox.amanat.local",
        name="Sandbox admin",
        roles=["admin", "operations"],
        password=admin_password,
    )
    credentials = {
        "merchant": {
            "partner_id": merchant.id,
            "client_id": merchant_client.client.id,
            "client_secret": merchant_client.secret,
            "scopes": sorted(merchant_client.client.allowed_scopes),
        },
        "tpp": {
            "partner_id": tpp.id,
            "client_id": tpp_client.client.id,
            "client_secret": tpp_client.secret,
            "redirect_uri": redirect_uri,
            "scopes": sorted(tpp_client.client.allowed_scopes),
            # Signs payment-initiation requests (x-jws-signature): `amanat sandbox jws`.
            "signing_key": signing_key,
        },
        "customers": customers,
        "console_admin": {
            "email": admin.operator.email,
            "password": admin_password,
            "totp_secret": admin.totp_secret,
            "totp_uri": admin.provisioning_uri,
        },
    }
    _write(path, credentials)
    return credentials


def tpp_redirect_uri(public_url: str) -> str:
    return public_url.rstrip("/") + TPP_REDIRECT_PATH


def _tpp_signing_key() -> tuple[dict[str, Any], dict[str, Any]]:
    """The sandbox TPP app's message-signing key (a private JWK, kept in the credentials
    file beside its client secret) and the public JWKS its client registers."""
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "sandbox-tpp-sig-1", "alg": "PS256"})
    return key.as_dict(private=True), {"keys": [key.as_dict(private=False)]}


def sign_as_sandbox_tpp(body: bytes, tpp: dict[str, Any], now: int) -> str:
    """``x-jws-signature`` for ``body`` as the sandbox TPP app would send it (OBIE's
    detached JWS profile: docs/open-banking.md, "Message signing")."""
    from joserfc import jws
    from joserfc.jwk import RSAKey
    from joserfc.jws import JWSRegistry
    from joserfc.registry import HeaderParameter

    critical = [f"http://openbanking.org.uk/{name}" for name in ("iat", "iss", "tan")]
    registry = JWSRegistry(
        header_registry={name: HeaderParameter(name, lambda _v: None, True) for name in critical},
        algorithms=["PS256"],
    )
    key = RSAKey.import_key(tpp["signing_key"])
    header = {
        "alg": "PS256",
        "kid": key.kid,
        "typ": "JOSE",
        "cty": "application/json",
        critical[0]: now,
        critical[1]: tpp["client_id"],
        critical[2]: "openbanking.org.uk",
        "crit": critical,
    }
    protected, _payload, signature = jws.serialize_compact(
        header, body, key, registry=registry
    ).split(".")
    return f"{protected}..{signature}"


async def _reissue_tpp_client(
    container: Container, tpp: dict[str, Any], redirect_uri: str
) -> dict[str, Any]:
    signing_key, public_jwks = _tpp_signing_key()
    issued = await container.partners.create_client(
        SEED_ACTOR,
        tpp["partner_id"],
        name="Sandbox TPP app",
        redirect_uris=[redirect_uri],
        jwks=public_jwks,
    )
    await container.partners.revoke_client(SEED_ACTOR, tpp["client_id"])
    return {
        **tpp,
        "client_id": issued.client.id,
        "client_secret": issued.secret,
        "redirect_uri": redirect_uri,
        "signing_key": signing_key,
    }


async def _still_valid(container: Container, credentials: dict[str, Any]) -> bool:
    queries = container.get(IdentityQueries)
    for key in ("merchant", "tpp"):
        client = await queries.client(credentials.get(key, {}).get("client_id", ""))
        if client is None or not client.is_active:
            return False
    return True


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write(path: Path, data: dict[str, Any]) -> None:
    replace_atomically(path, json.dumps(data, indent=2).encode())
