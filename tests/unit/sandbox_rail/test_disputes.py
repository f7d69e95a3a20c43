"""The sandbox rail's disputes, driven directly: what it disputes, where it tells amanat,
that its messages verify with amanat's scheme, and which answers it retries."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from amanat.kernel.clock import FrozenClock
from amanat.kernel.pakistan import make_iban
from amanat.kernel.rail_signatures import SIGNATURE_HEADER, verify
from amanat.sandbox_rail.disputes import (
    DecisionRequest,
    DisputeRefused,
    DisputeRequest,
    RailDisputes,
    dispute_url,
)
from amanat.sandbox_rail.engine import RailEngine, RailSettings, TransferRequest

SECRET = "rail-callback-secret"
CALLBACKS = "https://amanat.example/rails/raast/callbacks"


class Amanat:
    """amanat's dispute URL: answers from a script, records what it got (the transfers'
    callbacks are acknowledged and not recorded)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.got: list[tuple[str, dict[str, Any], str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/callbacks"):
            return httpx.Response(200)  # the transfer's own callbacks
        self.got.append(
            (str(request.url), json.loads(request.content), request.headers[SIGNATURE_HEADER])
        )
        status = self.statuses.pop(0) if self.statuses else 200
        return httpx.Response(status, json={"received": status < 300, "dispute_id": "dp_1"})


async def _rail(amanat: Amanat, clock: FrozenClock) -> tuple[RailEngine, RailDisputes]:
    async def no_wait(_: float) -> None:
        return None

    engine = RailEngine(
        RailSettings(
            callback_secret=SECRET,
            admin_token="admin",
            settle_delay=0.0,
            callback_backoff_seconds=0.0,
            clock=clock,
            sleep=no_wait,
            http=httpx.AsyncClient(transport=httpx.MockTransport(amanat)),
        )
    )
    return engine, RailDisputes(engine)


async def _settled(engine: RailEngine, e2e: str = "pay_1", amount: int = 150_000) -> str:
    await engine.submit(
        TransferRequest(
            end_to_end_id=e2e,
            type="credit_transfer",
            amount=amount,
            currency="PKR",
            creditor={"iban": str(make_iban("SCBL", "0000001123456702"))},  # type: ignore[arg-type]
            callback_url=CALLBACKS,
        )
    )
    await engine.drain()
    return e2e


def test_amanats_dispute_url_is_beside_its_callback_url() -> None:
    assert dispute_url(CALLBACKS) == "https://amanat.example/rails/raast/disputes"
    assert dispute_url("https://x.example/hook/") == "https://x.example/hook/disputes"


async def test_a_settled_transfer_is_disputed_and_decided() -> None:
    amanat, clock = Amanat(), FrozenClock()
    engine, disputes = await _rail(amanat, clock)
    try:
        e2e = await _settled(engine)
        status, raised = await disputes.raise_dispute(
            DisputeRequest(end_to_end_id=e2e, reason="fraud", amount=50_000)
        )
        assert (status, raised["status"], raised["amount"]) == (201, "raised", 50_000)
        assert raised["amanat_dispute_id"] == "dp_1"
        decided = await disputes.decide(raised["rail_dispute_id"], DecisionRequest(outcome="lost"))
        assert decided["status"] == "lost" and decided["decided_at"]
        again = await disputes.decide(raised["rail_dispute_id"], DecisionRequest(outcome="lost"))
        assert again["status"] == "lost" and len(amanat.got) == 2  # not sent twice
        with pytest.raises(DisputeRefused) as refused:
            await disputes.decide(raised["rail_dispute_id"], DecisionRequest(outcome="won"))
        assert (refused.value.status, refused.value.error) == (409, "already_decided")
        (url, first, signature), (_, second, _) = amanat.got
        assert url == "https://amanat.example/rails/raast/disputes"
        assert first["type"] == "dispute.raised" and second["type"] == "dispute.decided"
        assert second["outcome"] == "lost" and first["event_id"] != second["event_id"]
        body = json.dumps(first, separators=(",", ":")).encode()
        verify(SECRET, signature, body, clock.now())  # amanat's own check passes
    finally:
        await engine.aclose()


async def test_what_the_rail_will_not_dispute() -> None:
    engine, disputes = await _rail(Amanat(), FrozenClock())
    try:
        with pytest.raises(DisputeRefused) as refused:
            await disputes.raise_dispute(DisputeRequest(end_to_end_id="pay_x", reason="fraud"))
        assert (refused.value.status, refused.value.error) == (404, "unknown_transfer")
        e2e = await _settled(engine, "pay_2", 10_001)  # 01: rejected by the rail
        with pytest.raises(DisputeRefused) as refused:
            await disputes.raise_dispute(DisputeRequest(end_to_end_id=e2e, reason="fraud"))
        assert (refused.value.status, refused.value.error) == (409, "transfer_not_settled")
        e2e = await _settled(engine, "pay_3", 10_000)
        with pytest.raises(DisputeRefused) as refused:
            await disputes.raise_dispute(
                DisputeRequest(end_to_end_id=e2e, reason="fraud", amount=10_001)
            )
        assert refused.value.status == 400
    finally:
        await engine.aclose()


async def test_a_5xx_is_retried_and_a_4xx_is_final() -> None:
    amanat = Amanat(503, 500, 200, 409)
    engine, disputes = await _rail(amanat, FrozenClock())
    try:
        e2e = await _settled(engine)
        status, raised = await disputes.raise_dispute(
            DisputeRequest(end_to_end_id=e2e, reason="duplicate")
        )
        assert status == 201 and len(amanat.got) == 3  # two 5xx, then taken
        assert len({event_id for _, m, _ in amanat.got for event_id in [m["event_id"]]}) == 1
        with pytest.raises(DisputeRefused) as refused:
            await disputes.decide(raised["rail_dispute_id"], DecisionRequest(outcome="won"))
        assert (refused.value.status, refused.value.error) == (502, "not_acknowledged")
        assert refused.value.detail["status_code"] == 409 and len(amanat.got) == 4
        assert disputes.get(raised["rail_dispute_id"])["status"] == "raised"  # type: ignore[index]
    finally:
        await engine.aclose()
