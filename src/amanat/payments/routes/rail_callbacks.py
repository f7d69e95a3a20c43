"""Inbound rail callbacks: verified, de-duplicated, applied, acknowledged after commit.

A callback with a bad or missing signature gets 401 and is recorded (never applied). A
repeated event id is acknowledged without effect. The event record and the payment change
commit together, so a crash in between makes the rail send it again rather than lose it.
"""

from __future__ import annotations

import hashlib

import structlog
from fastapi import APIRouter, Request
from starlette.responses import Response

from amanat.auth.verification import container_of
from amanat.kernel.rail_signatures import InvalidCallback, InvalidCallbackSignature
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.responses import JsonResponse

log = structlog.get_logger("amanat.rails")
router = APIRouter(tags=["rails"], include_in_schema=False)


@router.post("/rails/raast/callbacks")
async def raast_callback(request: Request) -> Response:
    container = container_of(request)
    body = await request.body()
    try:
        callback = container.rail.verify_callback(request.headers, body)
    except InvalidCallback as exc:
        async with container.transactions.write() as tx:
            await tx.rail_events.reject(
                "raast",
                exc.reason,
                client_ip(request),
                hashlib.sha256(body).hexdigest(),
                container.clock.now(),
            )
        log.warning("rail_callback_rejected", reason=exc.reason)
        if isinstance(exc, InvalidCallbackSignature):
            raise ApiProblem(
                "unauthorized", "The callback signature did not verify.", status=401
            ) from None
        raise ApiProblem(
            "validation_error", "The callback body is malformed.", status=400
        ) from None
    async with container.transactions.atomic() as tx:
        fresh = await tx.rail_events.remember(
            callback.event_id,
            callback.end_to_end_id,
            callback.status,
            callback.sequence,
            "applied",
            container.clock.now(),
        )
        if not fresh:
            return JsonResponse({"received": True, "duplicate": True})
        outcome = await container.payments.apply_rail_status(
            callback.end_to_end_id,
            callback.status,
            sequence=callback.sequence,
            reason_code=callback.reason_code,
            reason=callback.reason,
            cause="rail callback",
        )
    log.info("rail_callback", end_to_end_id=callback.end_to_end_id, outcome=outcome)
    return JsonResponse({"received": True, "duplicate": False})
