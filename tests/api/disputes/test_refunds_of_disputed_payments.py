"""A collection's refunds and its disputes share one amount: together they never return
more to the payer than the collection took, whichever comes first."""

from __future__ import annotations

import httpx
from tests.api.identity.test_operator_api import problem_code
from tests.support import disputes as d

from amanat.bootstrap import Container


async def refund(
    client: httpx.AsyncClient, shop: d.Shop, payment_id: str, amount: int | None = None
) -> httpx.Response:
    body: dict[str, object] = {"payment_id": payment_id}
    if amount is not None:
        body["amount"] = amount
    return await client.post(
        "/v1/refunds", json=body, headers=shop.auth | {"Idempotency-Key": d.key()}
    )


async def test_an_open_dispute_leaves_only_the_rest_to_refund(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container, top_up=1_000_000)
    payment = await d.collection(client, container, shop, 100_000)
    await d.opened(client, shop, payment, amount=60_000)

    too_much = await refund(client, shop, payment, 40_001)
    assert too_much.status_code == 409, too_much.text
    assert problem_code(too_much) == "refund_exceeds_remaining"
    assert "disputes" in too_much.json()["detail"]

    rest = await refund(client, shop, payment)  # no amount: all that is left
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == 40_000
    none_left = await refund(client, shop, payment, 1)
    assert none_left.status_code == 409


async def test_a_refunded_collection_cannot_be_disputed_again_for_the_same_money(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container, top_up=1_000_000)
    payment = await d.collection(client, container, shop, 50_000)
    assert (await refund(client, shop, payment, 30_000)).status_code == 201
    too_much = await d.open_dispute(client, shop, payment, amount=20_001)
    assert too_much.status_code == 409, too_much.text
    assert (await d.open_dispute(client, shop, payment, amount=20_000)).status_code == 201


async def test_an_accepted_dispute_keeps_its_money_out_of_reach_of_refunds(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await d.shop(client, container, top_up=1_000_000)
    lost = await d.collection(client, container, shop, 70_000)
    dispute = await d.opened(client, shop, lost)
    assert (await d.act(client, shop, dispute["id"], "accept")).status_code == 200
    after_loss = await refund(client, shop, lost)
    assert after_loss.status_code == 409, "the payer already got it back through the dispute"
