"""The rail's dispute messages: a payer's bank raised a dispute on a payment, or the rail
decided one it raised. Signed like the rail's callbacks (``Rail-Signature``, the shared
secret; amanat.kernel.rail_signatures), verified against the raw body before anything is
read. A message that fails verification gets 401 and is recorded beside the rejected
callbacks, never applied. Both messages are idempotent on the rail's dispute id: the rail
retries until it hears a 2xx.
"""

from __future__ import annotations

from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from starlette.responses import Response

from amanat.disputes.domain.disputes import Opener
from amanat.disputes.services.disputes import DisputeService
from amanat.kernel.clock import Clock
from amanat.kernel.rail_signatures import SIGNATURE_HEADER, InvalidCallbackSignature, verify
from amanat.payments.callbacks import RailCallbacks
from amanat.platform.audit.domain import Actor
from amanat.platform.http.client_address import client_ip
from amanat.platform.http.context import current_request_id
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.services import find_service
from amanat.platform.settings import Settings

log = structlog.get_logger("amanat.rails")
router = APIRouter(tags=["rails"], include_in_schema=False)
RAIL_DISPUTES_PATH = "/rails/raast/disputes"
RAIL = "raast"

_Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class RailDisputeMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: _Id
    type: Literal["dispute.raised", "dispute.decided"]
    rail_dispute_id: _Id
    end_to_end_id: _Id
    reason: Annotated[str, Field(max_length=32)] | None = None
    amount: Annotated[StrictInt, Field(gt=0)] | None = None
    currency: Literal["PKR"] | None = None
    outcome: Literal["won", "lost", "withdrawn"] | None = None
    occurred_at: Annotated[str, Field(max_length=40)]


def rail_actor(request: Request) -> Actor:
    return Actor(
        type="rail",
        id=RAIL,
        source_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        request_id=current_request_id(),
    )


async def _reject(request: Request, reason: str, body: bytes) -> None:
    await find_service(request, RailCallbacks).reject(RAIL, reason, client_ip(request), body)
    log.warning("rail_dispute_rejected", reason=reason)


@router.post(RAIL_DISPUTES_PATH)
async def rail_dispute(request: Request) -> Response:
    body = await request.body()
    secret = find_service(request, Settings).rail.secret.get_secret_value()
    now = find_service(request, Clock).now()
    try:
        verify(secret, request.headers.get(SIGNATURE_HEADER), body, now)
    except InvalidCallbackSignature as exc:
        await _reject(request, f"dispute: {exc.reason}", body)
        raise ApiProblem(
            "unauthorized", "The message's signature did not verify.", status=401
        ) from None
    try:
        message = RailDisputeMessage.model_validate_json(body)
    except ValidationError:
        await _reject(request, "dispute: malformed", body)
        raise ApiProblem(
            "validation_error", "The dispute message is malformed.", status=400
        ) from None
    service = find_service(request, DisputeService)
    if message.type == "dispute.raised":
        detail = await service.open(
            rail_actor(request),
            payment_id=message.end_to_end_id,
            reason=message.reason or "other",
            amount=message.amount,
            opened_by=Opener.RAIL,
            rail_dispute_id=message.rail_dispute_id,
        )
    else:
        if message.outcome is None:
            raise ApiProblem("validation_error", "A decision names its outcome.", status=400)
        detail = await service.decide_from_rail(
            rail_actor(request), message.rail_dispute_id, message.outcome
        )
    dispute = detail.dispute
    log.info(
        "rail_dispute",
        message_type=message.type,
        rail_dispute_id=message.rail_dispute_id,
        dispute_id=dispute.id,
        status=dispute.status.value,
    )
    return JsonResponse(
        {"received": True, "dispute_id": dispute.id, "status": dispute.status.value}
    )
