"""Payments that have settled, made the way a merchant makes them (over the API) and
settled the way the rail settles them (its statuses applied through the service): the
day of money that settlement and reconciliation tests start from."""

from __future__ import annotations

import httpx

from amanat.bootstrap import Container


async def settled_collection(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], amount: int, n: int
) -> str:
    """A collection of ``amount`` the payer approved; ``n`` keeps keys and references apart."""
    created = await client.post(
        "/v1/payments",
        json={
            "type": "collection",
            "amount": amount,
            "currency": "PKR",
            "debtor": {"raast_id": "03001234567", "name": "Bilal Ahmed"},
            "reference": f"ORDER-{n}",
        },
        headers=auth | {"Idempotency-Key": f"c{n}"},
    )
    assert created.status_code == 201, created.text
    payment_id: str = created.json()["id"]
    await container.payments.apply_rail_status(payment_id, "approved", sequence=3, cause="t")
    return payment_id


async def settle(container: Container, payment_id: str) -> None:
    """The rail accepts, then settles, a payout or a refund."""
    await container.payments.apply_rail_status(payment_id, "accepted", sequence=1, cause="t")
    await container.payments.apply_rail_status(payment_id, "settled", sequence=2, cause="t")


async def settled_payout(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str], amount: int, n: int
) -> str:
    """A payout of ``amount`` the rail settled."""
    created = await client.post(
        "/v1/payments",
        json={
            "amount": amount,
            "currency": "PKR",
            "creditor": {"iban": "PK36SCBL0000001123456702", "name": "Ayesha Khan"},
            "reference": f"PAYOUT-{n}",
        },
        headers=auth | {"Idempotency-Key": f"p{n}"},
    )
    assert created.status_code == 201, created.text
    payment_id: str = created.json()["id"]
    await settle(container, payment_id)
    return payment_id
