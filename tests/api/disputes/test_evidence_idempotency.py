"""An evidence upload retried with its Idempotency-Key is the same upload only if it is the
same file of the same declared type."""

from __future__ import annotations

import httpx
from tests.support import disputes as d

from amanat.bootstrap import Container

TEXT = b"Delivered to the customer on 3 December; courier receipt 7741.\n"


async def test_the_same_bytes_under_another_type_are_not_a_replay(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 30_000)
    dispute = await d.opened(client, shop, payment)
    path = f"/v1/disputes/{dispute['id']}/evidence"
    headers = shop.auth | {"Idempotency-Key": "evidence-1"}

    first = await client.post(path, content=TEXT, headers=headers | {"Content-Type": "text/plain"})
    assert first.status_code == 201, first.text
    again = await client.post(path, content=TEXT, headers=headers | {"Content-Type": "text/plain"})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    other = await client.post(
        path, content=TEXT, headers=headers | {"Content-Type": "application/pdf"}
    )
    assert other.status_code == 422, other.text
    assert "idempotent-replayed" not in other.headers
