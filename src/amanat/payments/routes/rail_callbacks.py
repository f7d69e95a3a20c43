"""Inbound rail callbacks: verified, de-duplicated, applied, acknowledged after commit.

A callback with a bad or missing signature gets 401 and is recorded (never applied). A
repeated event id is acknowledged without effect. The event record and the payment change
commit together, so a crash in between makes the rail send it again rather than lose it.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from starlette.responses import Response

from amanat.kernel.rail_signatures import InvalidCallback, InvalidCallbackSignature
from amanat.payments.callbacks import RailCallbacks
from amanat.payments.rail import RailAdapter
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.services import find_service

log = structlog.get_logger("amanat.rails")
router = APIRouter(tags=["rails"], include_in_schema=False)


@router.post("/rails/raast/callbacks")
async def raast_callback(request: Request) -> Response:
    body = await request.body()
    callbacks = find_service(request, RailCallbacks)
    try:
        callback = find_service(request, RailAdapter).verify_callback(request.headers, body)
    except InvalidCallback as exc:
        await callbacks.reject("raast", exc.reason, client_ip(request), body)
        log.warning("rail_callback_rejected", reason=exc.reason)
        if isinstance(exc, InvalidCallbackSignature):
            raise ApiProblem(
                "unauthorized", "The callback signature did not verify.", status=401
            ) from None
        raise ApiProblem(
            "validation_error", "The callback body is malformed.", status=400
        ) from None
    outcome = await callbacks.apply(callback)
    if outcome is None:
        return JsonResponse({"received": True, "duplicate": True})
    log.info("rail_callback", end_to_end_id=callback.end_to_end_id, outcome=outcome)
    return JsonResponse({"received": True, "duplicate": False})
