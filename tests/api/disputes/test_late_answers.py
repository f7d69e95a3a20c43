"""The respond-by date is a deadline, not a suggestion: once it has passed, the merchant
can neither respond nor add evidence, whether or not the expiry job has run yet, and the
job then closes the dispute lost."""

from __future__ import annotations

import httpx
from tests.api.identity.test_operator_api import problem_code
from tests.support import disputes as d

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock


async def test_after_the_deadline_the_merchant_can_no_longer_answer(
    client: httpx.AsyncClient, container: Container, clock: FrozenClock
) -> None:
    shop = await d.shop(client, container)
    payment = await d.collection(client, container, shop, 30_000)
    dispute = await d.opened(client, shop, payment)
    clock.advance(days=40)
    await shop.sign_in(client)  # the first token expired meanwhile

    late = await d.act(client, shop, dispute["id"], "respond", explanation="It was delivered.")
    assert late.status_code == 409, late.text
    assert problem_code(late) == "dispute_response_deadline_passed"
    evidence = await d.upload(client, shop, dispute["id"], d.PDF)
    assert evidence.status_code == 409
    assert problem_code(evidence) == "dispute_response_deadline_passed"

    assert await d.service(container).expire_overdue() == [dispute["id"]]
    closed = (await client.get(f"/v1/disputes/{dispute['id']}", headers=shop.auth)).json()
    assert closed["status"] == "lost"
