"""The operator API's reads are in the access log like the console's pages: who read which
dispute (and its explanation and evidence), when and from where."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from tests.support import disputes as d

from amanat.bootstrap import Container
from amanat.platform.access_log import console_access_log


async def test_reading_a_dispute_through_the_operator_api_is_access_logged(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 30_000)
    dispute = await d.opened(client, shop, payment)
    await d.operations(client, container)

    read = await client.get(f"/operator/v1/disputes/{dispute['id']}")
    assert read.status_code == 200
    listed = await client.get("/operator/v1/disputes")
    assert listed.status_code == 200

    async with container.db.read() as conn:
        rows = (
            (
                await conn.execute(
                    sa.select(console_access_log).where(
                        console_access_log.c.screen == "operator_api"
                    )
                )
            )
            .mappings()
            .all()
        )
    details = [(r["action"], r["subject"], r["detail"]) for r in rows]
    assert ("view", dispute["id"], "GET /operator/v1/disputes/{dispute_id}") in details
    assert ("view", None, "GET /operator/v1/disputes") in details
    assert all(r["operator_email"].endswith("@bank.example.pk") and r["ip"] for r in rows)
