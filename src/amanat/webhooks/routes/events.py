"""The event log (``/v1/events``): what a partner polls to catch up on missed deliveries,
and manual redelivery of one event."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import Field
from starlette.responses import Response

from amanat.auth.domain import Caller
from amanat.auth.service import AccessContext
from amanat.auth.verification import client_actor, require_scope
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.openapi import late_enum
from amanat.platform.http.pagination import (
    CursorParam,
    LimitParam,
    next_cursor,
    page_position,
    parse_time,
)
from amanat.platform.http.schemas import ListResponse, RequestModel, ResponseModel
from amanat.platform.http.services import find_service
from amanat.platform.idempotency.protocol import IdempotencyKeyHeader, run_idempotent
from amanat.webhooks.domain.events import CATALOGUE
from amanat.webhooks.events_service import EventService
from amanat.webhooks.ports import EventFilter
from amanat.webhooks.service import WebhookService

router = APIRouter(tags=["events"])

EVENT_TYPES: list[str] = CATALOGUE.names
"""Every event type, for the ``enum`` of the fields and parameters that carry one (filled
in when the capabilities declare theirs, so read when the schema is generated)."""
EventTypeName = Annotated[str, Field(json_schema_extra=late_enum(EVENT_TYPES))]

EventsRead = Annotated[AccessContext, Depends(require_scope("events:read"))]
WebhooksManage = Annotated[AccessContext, Depends(require_scope("webhooks:manage", policy="write"))]
# Same scope, but reads spend the read budget, not the (smaller) write budget.
WebhooksView = Annotated[AccessContext, Depends(require_scope("webhooks:manage"))]


class EventData(ResponseModel):
    object: dict[str, Any] = Field(description="The object as committed with this event.")


class EventOut(ResponseModel):
    id: str
    object: Literal["event"]
    type: str = Field(description="What happened.", json_schema_extra=late_enum(EVENT_TYPES))
    created_at: str
    data: EventData


class RedeliverIn(RequestModel):
    endpoint_id: str | None = Field(
        default=None,
        max_length=40,
        description="Send to this endpoint only; omit for every endpoint subscribed.",
    )


class DeliveryRef(ResponseModel):
    id: str
    object: Literal["webhook_delivery"]
    event_id: str
    endpoint_id: str
    status: Literal["pending", "succeeded", "failed"]
    trigger: Literal["event", "held", "redeliver", "replay"]


REDELIVER_EXAMPLES: dict[str, Any] = {
    "every_endpoint": {
        "summary": "To every endpoint subscribed to the event's type",
        "value": {},
    }
}


@router.get(
    "/v1/events",
    response_model=ListResponse[EventOut],
    summary="List events, newest first (poll this to catch up on missed deliveries)",
)
async def list_events(
    request: Request,
    context: EventsRead,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
    type: Annotated[
        list[EventTypeName] | None,
        Query(max_length=20, description="Event type(s); repeat to widen."),
    ] = None,
    object_id: Annotated[str | None, Query(max_length=40)] = None,
    created_gte: Annotated[str | None, Query(max_length=40)] = None,
    created_lt: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """Your events, newest first: each is the object as committed at that moment. Poll
    this to catch up on deliveries your endpoint missed; filter by `type` (repeatable),
    `object_id` (e.g. a payment id) and creation time (RFC 3339).

    Scope `events:read`. Pages with `limit` and `cursor`. Errors: `validation_error` (422)
    for an unknown event type or a bad timestamp, `invalid_cursor` (400).
    """
    unknown = [t for t in type or [] if t not in CATALOGUE]
    if unknown:
        raise ApiProblem(
            "validation_error",
            "Unknown event type.",
            status=422,
            errors=[
                {
                    "pointer": "/type",
                    "in": "query",
                    "code": "unknown_event_type",
                    "message": f"not an event type: {unknown[0][:64]}",
                }
            ],
        )
    where = EventFilter(
        types=type or None,
        object_id=object_id or None,
        created_gte=parse_time(created_gte, "created_gte"),
        created_lt=parse_time(created_lt, "created_lt"),
    )
    page = await find_service(request, EventService).list(
        context.partner_id, limit=limit, before=page_position(cursor), where=where
    )
    last = page.items[-1] if page.items else None
    return {
        "object": "list",
        "data": [event.envelope() for event in page.items],
        "has_more": page.has_more,
        "next_cursor": next_cursor(
            page.has_more, last.created_at if last else None, last.id if last else None
        ),
    }


@router.get("/v1/events/{event_id}", response_model=EventOut, summary="Retrieve an event")
async def get_event(event_id: str, request: Request, context: EventsRead) -> dict[str, Any]:
    """One event, exactly as it was (and is) delivered to webhook endpoints.

    Scope `events:read`. Errors: `not_found` (404).
    """
    event = await find_service(request, EventService).get(context.partner_id, event_id)
    return event.envelope()


@router.post(
    "/v1/events/{event_id}/redeliver",
    status_code=202,
    response_model=ListResponse[DeliveryRef],
    summary="Send an event again, with its original webhook-id",
)
async def redeliver_event(
    event_id: str,
    request: Request,
    context: WebhooksManage,
    body: Annotated[RedeliverIn | None, Body(openapi_examples=REDELIVER_EXAMPLES)] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Queues the event for delivery again, with its original `webhook-id` so your
    receiver can de-duplicate it: to one endpoint (`endpoint_id`) or, with an empty body,
    to every endpoint subscribed to its type. Answers the deliveries queued.

    Scope `webhooks:manage`. Requires an `Idempotency-Key`. Errors: `not_found` (404) for an
    unknown event or endpoint.
    """
    service = find_service(request, WebhookService)
    caller = Caller(
        partner_id=context.partner_id,
        client_id=context.client_id,
        actor=client_actor(request, context),
    )

    async def operation() -> tuple[int, dict[str, Any]]:
        created = await service.redeliver(
            caller, event_id, endpoint_id=body.endpoint_id if body else None
        )
        return 202, {
            "object": "list",
            "data": [
                {
                    "id": d.id,
                    "object": "webhook_delivery",
                    "event_id": d.event_id,
                    "endpoint_id": d.endpoint_id,
                    "status": d.status.value,
                    "trigger": d.trigger,
                }
                for d in created
            ],
            "has_more": False,
            "next_cursor": None,
        }

    return await run_idempotent(
        request, context, idempotency_key, operation, resource_id=event_id[:64]
    )
