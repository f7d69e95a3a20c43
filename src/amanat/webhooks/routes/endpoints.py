"""Webhook endpoints (``/v1/webhook_endpoints``): register, change, rotate the secret,
inspect deliveries, replay a time window."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError
from starlette.responses import Response

from amanat.auth.domain import Caller
from amanat.auth.service import AccessContext
from amanat.auth.verification import client_actor
from amanat.kernel.clock import format_timestamp
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
from amanat.platform.settings import Settings
from amanat.webhooks import views
from amanat.webhooks.domain.endpoints import (
    MAX_URL_LENGTH,
    Attempt,
    Delivery,
    UrlRefused,
    check_url,
)
from amanat.webhooks.domain.events import ALL_EVENTS, CATALOGUE
from amanat.webhooks.errors import InvalidWebhookUrl
from amanat.webhooks.ports import DeliveryFilter
from amanat.webhooks.routes.events import EVENT_TYPES, WebhooksManage, WebhooksView
from amanat.webhooks.service import WebhookService

router = APIRouter(tags=["webhooks"])


def _known_event_type(value: str) -> str:
    """Refused during request validation, so the error points at the item and an
    Idempotency-Key used with it stays free (nothing executed)."""
    if value != ALL_EVENTS and value not in CATALOGUE:
        raise PydanticCustomError(
            "unknown_event_type",
            "not an event type: {value} (the enum of enabled_events in /openapi.json lists "
            "them; '*' means all)",
            {"value": value},
        )
    return value


EventTypes = Annotated[
    list[
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=64,
                json_schema_extra=late_enum([ALL_EVENTS], EVENT_TYPES),
            ),
            AfterValidator(_known_event_type),
        ]
    ],
    Field(
        min_length=1,
        max_length=50,
        description='Event types to receive, or `["*"]` for all.',
    ),
]
SubscribedTypes = Annotated[
    list[Annotated[str, Field(json_schema_extra=late_enum([ALL_EVENTS], EVENT_TYPES))]],
    Field(description='The event types delivered; `["*"]` means all.'),
]


class EndpointIn(RequestModel):
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    enabled_events: EventTypes
    description: str | None = Field(default=None, max_length=500)


class EndpointPatch(RequestModel):
    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_LENGTH)
    enabled_events: EventTypes | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(
        default=None, description="false pauses deliveries; true resumes them."
    )


class RotateIn(RequestModel):
    expire_previous_in_seconds: int | None = Field(
        default=None,
        ge=0,
        le=7 * 86_400,
        description="How long the old secret keeps signing too (default 24 h; 0: at once).",
    )


class ReplayIn(RequestModel):
    since: str = Field(
        min_length=1, max_length=40, description="RFC 3339; events at or after this time."
    )
    until: str | None = Field(default=None, max_length=40, description="RFC 3339, exclusive.")


class RotationOut(ResponseModel):
    previous_secret_expires_at: str


class EndpointOut(ResponseModel):
    id: str
    object: Literal["webhook_endpoint"]
    url: str
    description: str | None
    enabled_events: SubscribedTypes
    enabled: bool
    disabled_reason: str | None
    secret_rotation: RotationOut | None
    version: int
    created_at: str
    updated_at: str


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="Shown once. Keep it to verify signatures.")


class AttemptOut(ResponseModel):
    attempt: int
    started_at: str
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None


class DeliveryOut(ResponseModel):
    id: str
    object: Literal["webhook_delivery"]
    event_id: str = Field(description="Also the `webhook-id` header of every attempt.")
    event_type: str = Field(json_schema_extra=late_enum(EVENT_TYPES))
    endpoint_id: str
    trigger: Literal["event", "held", "redeliver", "replay"]
    status: Literal["pending", "succeeded", "failed"]
    attempts: list[AttemptOut]
    next_attempt_at: str | None
    created_at: str


class DeletedOut(ResponseModel):
    id: str
    object: Literal["webhook_endpoint"]
    deleted: bool


class ReplayOut(ResponseModel):
    object: Literal["replay"]
    endpoint_id: str
    queued: int
    truncated: bool = Field(description="More than 10,000 events: replay again from resume_from.")
    resume_from: str | None


ENDPOINT_EXAMPLES: dict[str, Any] = {
    "payments": {
        "summary": "Receive payment and refund outcomes",
        "value": {
            "url": "https://merchant.example.pk/webhooks/amanat",
            "enabled_events": ["payment.succeeded", "payment.failed", "refund.succeeded"],
            "description": "Order service",
        },
    }
}
PATCH_EXAMPLES: dict[str, Any] = {
    "resume": {
        "summary": "Resume deliveries to a paused or disabled endpoint",
        "value": {"enabled": True},
    },
    "subscribe_all": {
        "summary": "Receive every event type",
        "value": {"enabled_events": ["*"]},
    },
}
ROTATE_EXAMPLES: dict[str, Any] = {
    "one_hour_overlap": {
        "summary": "The old secret keeps signing for one more hour",
        "value": {"expire_previous_in_seconds": 3600},
    }
}
REPLAY_EXAMPLES: dict[str, Any] = {
    "since": {
        "summary": "Every subscribed event since a time",
        "value": {"since": "2026-11-24T10:00:00Z"},
    }
}


def _caller(request: Request, context: AccessContext) -> Caller:
    return Caller(
        partner_id=context.partner_id,
        client_id=context.client_id,
        actor=client_actor(request, context),
    )


def _url_problem(message: str, reason: str) -> ApiProblem:
    return ApiProblem(
        "invalid_webhook_url",
        message,
        status=422,
        errors=[
            {
                "pointer": "/url",
                "in": "body",
                "code": "invalid_webhook_url",
                "message": message,
                "reason": reason,
            }
        ],
    )


def _check_url(request: Request, url: str) -> None:
    """The URL's static rules, before anything executes (the service checks them again
    and, in production, resolves the host)."""
    try:
        check_url(url, production=find_service(request, Settings).is_production)
    except UrlRefused as exc:
        raise _url_problem(str(exc), exc.reason) from None


def _delivery_view(delivery: Delivery, attempts: list[Attempt]) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "object": "webhook_delivery",
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "endpoint_id": delivery.endpoint_id,
        "trigger": delivery.trigger,
        "status": delivery.status.value,
        "attempts": [
            {
                "attempt": a.attempt,
                "started_at": format_timestamp(a.started_at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error_class,
                "response_excerpt": a.response_excerpt,
            }
            for a in attempts
        ],
        "next_attempt_at": format_timestamp(delivery.next_attempt_at)
        if delivery.next_attempt_at
        else None,
        "created_at": format_timestamp(delivery.created_at),
    }


@router.post(
    "/v1/webhook_endpoints",
    status_code=201,
    response_model=EndpointWithSecret,
    summary="Register a webhook endpoint (the response alone carries its secret)",
)
async def create_endpoint(
    body: Annotated[EndpointIn, Body(openapi_examples=ENDPOINT_EXAMPLES)],
    request: Request,
    context: WebhooksManage,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Registers a URL to receive the event types in `enabled_events` (Standard Webhooks:
    `webhook-id`, `webhook-timestamp`, `webhook-signature` headers). The response is the
    only place the signing `secret` (`whsec_...`) is ever shown: store it.

    Scope `webhooks:manage`. Requires an `Idempotency-Key`. Errors: `invalid_webhook_url`
    (422; in production only public https URLs), `validation_error` (422) for an unknown
    event type.
    """
    service = find_service(request, WebhookService)
    _check_url(request, body.url)

    async def operation() -> tuple[int, dict[str, Any]]:
        try:
            endpoint, secret = await service.create_endpoint(
                _caller(request, context),
                url=body.url,
                enabled_events=list(body.enabled_events),
                description=body.description,
            )
        except InvalidWebhookUrl as exc:
            raise _url_problem(exc.message, exc.reason) from None
        return 201, {**views.endpoint_view(endpoint), "secret": secret}

    return await run_idempotent(request, context, idempotency_key, operation)


@router.get(
    "/v1/webhook_endpoints",
    response_model=ListResponse[EndpointOut],
    summary="List webhook endpoints, newest first",
)
async def list_endpoints(
    request: Request, context: WebhooksView, limit: LimitParam = 20, cursor: CursorParam = None
) -> dict[str, Any]:
    """Your webhook endpoints, newest first (never their secrets).

    Scope `webhooks:manage`. Pages with `limit` and `cursor`. Errors: `invalid_cursor` (400).
    """
    page = await find_service(request, WebhookService).list_endpoints(
        context.partner_id, limit=limit, before=page_position(cursor)
    )
    last = page.items[-1] if page.items else None
    return {
        "object": "list",
        "data": [views.endpoint_view(e) for e in page.items],
        "has_more": page.has_more,
        "next_cursor": next_cursor(
            page.has_more, last.created_at if last else None, last.id if last else None
        ),
    }


@router.get(
    "/v1/webhook_endpoints/{endpoint_id}",
    response_model=EndpointOut,
    summary="Retrieve a webhook endpoint",
)
async def get_endpoint(endpoint_id: str, request: Request, context: WebhooksView) -> dict[str, Any]:
    """One webhook endpoint; `disabled_reason` says why deliveries stopped, if they did.

    Scope `webhooks:manage`. Errors: `not_found` (404).
    """
    endpoint = await find_service(request, WebhookService).get_endpoint(
        context.partner_id, endpoint_id
    )
    return views.endpoint_view(endpoint)


@router.patch(
    "/v1/webhook_endpoints/{endpoint_id}",
    response_model=EndpointOut,
    summary="Change a webhook endpoint; enabled=true re-enables a disabled one",
)
async def update_endpoint(
    endpoint_id: str,
    body: Annotated[EndpointPatch, Body(openapi_examples=PATCH_EXAMPLES)],
    request: Request,
    context: WebhooksManage,
) -> dict[str, Any]:
    """Changes the fields given and leaves the others: `url`, `enabled_events`,
    `description` (null clears it), `enabled` (false pauses deliveries, true resumes them,
    also after amanat disabled a failing endpoint).

    Scope `webhooks:manage`. No Idempotency-Key (PATCH is idempotent). Errors:
    `invalid_webhook_url` (422), `not_found` (404).
    """
    if body.url is not None:
        _check_url(request, body.url)
    try:
        endpoint = await find_service(request, WebhookService).update_endpoint(
            _caller(request, context),
            endpoint_id,
            url=body.url,
            enabled_events=list(body.enabled_events) if body.enabled_events is not None else None,
            description=body.description or None,
            # null or "" clears it (a blank string is stripped to "").
            clear_description="description" in body.model_fields_set and not body.description,
            enabled=body.enabled,
        )
    except InvalidWebhookUrl as exc:
        raise _url_problem(exc.message, exc.reason) from None
    return views.endpoint_view(endpoint)


@router.delete(
    "/v1/webhook_endpoints/{endpoint_id}",
    response_model=DeletedOut,
    summary="Delete a webhook endpoint; its pending deliveries stop",
)
async def delete_endpoint(
    endpoint_id: str, request: Request, context: WebhooksManage
) -> dict[str, Any]:
    """Deletes the endpoint; its pending deliveries are not attempted any more.

    Scope `webhooks:manage`. Errors: `not_found` (404).
    """
    await find_service(request, WebhookService).delete_endpoint(
        _caller(request, context), endpoint_id
    )
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


@router.post(
    "/v1/webhook_endpoints/{endpoint_id}/rotate_secret",
    response_model=EndpointWithSecret,
    summary="Rotate the signing secret; both sign during the overlap",
)
async def rotate_secret(
    endpoint_id: str,
    request: Request,
    context: WebhooksManage,
    body: Annotated[RotateIn | None, Body(openapi_examples=ROTATE_EXAMPLES)] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Issues a new signing secret, shown once in the response. Until
    `expire_previous_in_seconds` have passed (default 24 h; 0: at once) every delivery is
    signed with both secrets, so you can deploy the new one without missing a delivery.

    Scope `webhooks:manage`. Requires an `Idempotency-Key`. Errors: `not_found` (404).
    """
    service = find_service(request, WebhookService)
    seconds = body.expire_previous_in_seconds if body else None

    async def operation() -> tuple[int, dict[str, Any]]:
        endpoint, secret = await service.rotate_secret(
            _caller(request, context),
            endpoint_id,
            overlap=timedelta(seconds=seconds) if seconds is not None else None,
        )
        return 200, {**views.endpoint_view(endpoint), "secret": secret}

    return await run_idempotent(request, context, idempotency_key, operation)


@router.get(
    "/v1/webhook_endpoints/{endpoint_id}/deliveries",
    response_model=ListResponse[DeliveryOut],
    summary="Deliveries to an endpoint, newest first, with every attempt",
)
async def list_deliveries(
    endpoint_id: str,
    request: Request,
    context: WebhooksView,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
    event_type: Annotated[
        str | None, Query(max_length=64, json_schema_extra=late_enum(EVENT_TYPES))
    ] = None,
    created_gte: Annotated[str | None, Query(max_length=40)] = None,
    created_lt: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """Deliveries to one endpoint, newest first, each with its attempts (status code,
    latency, error, the start of your response), filtered by `status`, `event_type` and
    creation time.

    Scope `webhooks:manage`. Pages with `limit` and `cursor`. Errors: `not_found` (404),
    `invalid_cursor` (400), `validation_error` (422).
    """
    page, attempts = await find_service(request, WebhookService).deliveries(
        context.partner_id,
        endpoint_id,
        limit=limit,
        before=page_position(cursor),
        where=DeliveryFilter(
            status=status,
            event_type=event_type or None,
            created_gte=parse_time(created_gte, "created_gte"),
            created_lt=parse_time(created_lt, "created_lt"),
        ),
    )
    last = page.items[-1] if page.items else None
    return {
        "object": "list",
        "data": [_delivery_view(d, attempts.get(d.id, [])) for d in page.items],
        "has_more": page.has_more,
        "next_cursor": next_cursor(
            page.has_more, last.created_at if last else None, last.id if last else None
        ),
    }


@router.post(
    "/v1/webhook_endpoints/{endpoint_id}/replay",
    status_code=202,
    response_model=ReplayOut,
    summary="Send again every subscribed event since a time (oldest first)",
)
async def replay(
    endpoint_id: str,
    body: Annotated[ReplayIn, Body(openapi_examples=REPLAY_EXAMPLES)],
    request: Request,
    context: WebhooksManage,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Queues every event the endpoint subscribes to from `since` (until `until`,
    exclusive), oldest first, e.g. after an outage on your side. At most 10,000 events per
    call: when `truncated` is true, call again with `since` set to `resume_from`.

    Scope `webhooks:manage`. Requires an `Idempotency-Key`. Errors: `validation_error`
    (422) for a timestamp that is not RFC 3339 with a zone, `not_found` (404).
    """
    service = find_service(request, WebhookService)
    since = parse_time(body.since, "since", where="body")
    until = parse_time(body.until, "until", where="body")
    if since is None:  # cannot happen (min_length=1), but never a 500 if it did
        raise ApiProblem("validation_error", "since is required.", status=422)

    async def operation() -> tuple[int, dict[str, Any]]:
        result = await service.replay(
            _caller(request, context), endpoint_id, since=since, until=until
        )
        return 202, {
            "object": "replay",
            "endpoint_id": result.endpoint_id,
            "queued": result.queued,
            "truncated": result.truncated,
            "resume_from": format_timestamp(result.resume_from) if result.resume_from else None,
        }

    return await run_idempotent(request, context, idempotency_key, operation)
