"""``amanat webhooks listen``: a local receiver for developing against webhooks.

It prints every delivery as it arrives (id, type, object, version) and checks its
signature with the secret(s) you give, exactly as a receiver should. With
``--forward-to`` it passes the delivery, unchanged, to your own application and answers
amanat with your application's status, so retries behave as they will in production.
Without it, it answers ``--status`` (200 by default; try 500 or 410 to see retries and
disabling).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from amanat.webhooks.signatures import SignatureError, verify

FORWARDED = ("content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature")


def describe(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
        obj = event.get("data", {}).get("object", {})
        return {
            "type": event.get("type"),
            "object_id": obj.get("id"),
            "status": obj.get("status"),
            "version": obj.get("version"),
        }
    except (ValueError, AttributeError):
        return {"type": None, "object_id": None, "status": None, "version": None}


def check(secrets: list[str], headers: dict[str, str], body: bytes, tolerance: timedelta) -> str:
    """'ok' (naming which secret matched when there are several) or why it failed."""
    if not secrets:
        return "not checked (no --secret)"
    now = datetime.now(UTC)
    failure = "no secret"
    for number, secret in enumerate(secrets, start=1):
        try:
            verify(secret, headers, body, now=now, tolerance=tolerance)
        except SignatureError as exc:
            failure = str(exc)
            continue
        return "ok" if len(secrets) == 1 else f"ok (secret {number})"
    return f"FAILED: {failure}"


def build_listener(
    *,
    secrets: list[str],
    forward_to: str | None,
    status: int,
    tolerance: timedelta,
    report: Callable[[dict[str, Any]], None],
    client: httpx.AsyncClient | None = None,
) -> Starlette:
    http = client or httpx.AsyncClient(timeout=10.0, follow_redirects=False, trust_env=False)

    async def receive(request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        line: dict[str, Any] = {
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "webhook_id": headers.get("webhook-id"),
            **describe(body),
            "signature": check(secrets, headers, body, tolerance),
        }
        answer = status
        if forward_to:
            try:
                forwarded = await http.post(
                    forward_to,
                    content=body,
                    headers={k: v for k, v in headers.items() if k in FORWARDED},
                )
                answer = forwarded.status_code
                line["forwarded"] = forwarded.status_code
            except httpx.HTTPError as exc:
                answer = 502
                line["forwarded"] = f"error: {type(exc).__name__}"
        line["answered"] = answer
        report(line)
        return JSONResponse({"received": True}, status_code=answer)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        if client is None:
            await http.aclose()

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])], lifespan=lifespan)
