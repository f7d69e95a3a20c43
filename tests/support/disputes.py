"""Disputes made the way merchants, operations and the rail make them, for the disputes
tests: a shop with settled payments, its disputes over the API, and what to look at
afterwards (balances, the ledger, events, audit records, raw rows)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from tests.api.identity.test_operator_api import audit_rows, login
from tests.support.oauth import ACTOR, RegisteredClient, fetch_token, make_client
from tests.support.operators import create_account
from tests.support.settled_payments import settled_collection, settled_payout

from amanat.auth.domain import Caller
from amanat.bootstrap import Container
from amanat.disputes.services.disputes import DisputeService
from amanat.disputes.tables import dispute_evidence, disputes
from amanat.payments.domain.ledger import dispute_held_account, merchant_account

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32) + b"\xff\xd9"
TEXT = b"Courier receipt: order 7781 delivered, signed by Bilal Ahmed.\n"

_keys = itertools.count(1)


def key() -> str:
    return f"k-{next(_keys)}-{uuid.uuid4().hex[:6]}"


@dataclass
class Shop:
    registered: RegisteredClient
    auth: dict[str, str] = field(default_factory=dict)
    made: int = 0

    @property
    def partner_id(self) -> str:
        return self.registered.partner.id

    async def sign_in(self, client: httpx.AsyncClient) -> dict[str, str]:
        token = await fetch_token(client, self.registered)
        self.auth = {"Authorization": f"Bearer {token['access_token']}"}
        return self.auth


async def shop(
    client: httpx.AsyncClient, container: Container, name: str = "Shop", top_up: int = 0
) -> Shop:
    made = Shop(await make_client(container, name=name))
    await made.sign_in(client)
    if top_up:
        await container.payments.top_up(Caller(made.partner_id, None, ACTOR), top_up)
    return made


async def collection(
    client: httpx.AsyncClient, container: Container, who: Shop, amount: int
) -> str:
    who.made += 1
    return await settled_collection(
        client, container, who.auth, amount, int(uuid.uuid4().int % 10**9) + who.made
    )


async def payout(client: httpx.AsyncClient, container: Container, who: Shop, amount: int) -> str:
    who.made += 1
    return await settled_payout(
        client, container, who.auth, amount, int(uuid.uuid4().int % 10**9) + who.made
    )


async def open_dispute(
    client: httpx.AsyncClient, who: Shop, payment_id: str, *, reason: str = "fraud", **extra: Any
) -> httpx.Response:
    return await client.post(
        "/v1/disputes",
        json={"payment_id": payment_id, "reason": reason, **extra},
        headers=who.auth | {"Idempotency-Key": key()},
    )


async def opened(
    client: httpx.AsyncClient, who: Shop, payment_id: str, **extra: Any
) -> dict[str, Any]:
    response = await open_dispute(client, who, payment_id, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def act(
    client: httpx.AsyncClient, who: Shop, dispute_id: str, action: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/disputes/{dispute_id}/{action}",
        json=body or None,
        headers=who.auth | {"Idempotency-Key": key()},
    )


async def upload(
    client: httpx.AsyncClient,
    who: Shop,
    dispute_id: str,
    content: bytes,
    content_type: str | None = "application/pdf",
) -> httpx.Response:
    headers = who.auth | {"Idempotency-Key": key()}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await client.post(
        f"/v1/disputes/{dispute_id}/evidence", content=content, headers=headers
    )


async def balance(client: httpx.AsyncClient, who: Shop) -> dict[str, int]:
    response = await client.get("/v1/balance", headers=who.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    return {"available": body["available"], "held": body["held"]}


async def ledger(container: Container, partner_id: str) -> dict[str, int]:
    """The merchant's posted balance and its dispute-held account, from the ledger; and
    that the ledger checks out."""
    async with container.transactions.read() as tx:
        assert await tx.ledger.check() == []
        posted, _ = await tx.ledger.balance(merchant_account(partner_id))
        held, _ = await tx.ledger.balance(dispute_held_account(partner_id))
    return {"merchant": posted, "dispute_held": held}


async def journals(container: Container, dispute_id: str) -> list[tuple[str, str, int]]:
    """``(journal kind, account, amount)`` of every journal about a dispute."""
    from amanat.payments.tables import ledger_entries, ledger_journals

    async with container.db.read() as conn:
        rows = await conn.execute(
            sa.select(ledger_journals.c.kind, ledger_entries.c.account_id, ledger_entries.c.amount)
            .join(ledger_entries, ledger_entries.c.journal_id == ledger_journals.c.id)
            .where(ledger_journals.c.reference == dispute_id)
            .order_by(ledger_entries.c.id)
        )
        return [(r.kind, r.account_id, int(r.amount)) for r in rows]


async def events(
    client: httpx.AsyncClient, who: Shop, prefix: str = "dispute."
) -> list[dict[str, Any]]:
    response = await client.get("/v1/events", params={"limit": 100}, headers=who.auth)
    assert response.status_code == 200, response.text
    found = [e for e in response.json()["data"] if e["type"].startswith(prefix)]
    found.reverse()  # oldest first
    return found


async def audits(container: Container, action: str) -> list[dict[str, Any]]:
    return await audit_rows(container, action)


async def raw_dispute(container: Container, dispute_id: str) -> dict[str, Any]:
    async with container.db.read() as conn:
        row = (await conn.execute(disputes.select().where(disputes.c.id == dispute_id))).one()
    return dict(row._mapping)


async def raw_evidence(container: Container, evidence_id: str) -> dict[str, Any]:
    async with container.db.read() as conn:
        row = (
            await conn.execute(
                dispute_evidence.select().where(dispute_evidence.c.id == evidence_id)
            )
        ).one()
    return dict(row._mapping)


async def operations(client: httpx.AsyncClient, container: Container, *roles: str) -> str:
    """Log an operator in on ``client``; returns the CSRF token."""
    email = f"{'-'.join(roles) or 'operations'}-{uuid.uuid4().hex[:8]}@bank.example.pk"
    account = await create_account(container, *(roles or ("operations",)), email=email)
    return await login(client, container, account)


def service(container: Container) -> DisputeService:
    return container.get(DisputeService)
