"""A local webhook receiver (its own process, so the load client does not slow it down).

``POST /hooks/{n}`` records the Standard Webhooks headers, the raw body, when the
request began (``started_at``), when its body arrived (``received_at``) and when it was
answered (``answered_at``), and answers 204: at once, or after holding the request
``HOLD_MS`` ms (the scale-out scenario does, so that two workers sending one webhook at
the same time show as overlapping intervals). ``GET /_progress`` counts deliveries and,
per endpoint, the payments whose ``payment.succeeded`` arrived; ``GET /_deliveries``
returns everything recorded; ``POST /_reset`` forgets it. The bench verifies the
signatures afterwards with the endpoints' secrets (:func:`verify`).

Run as ``python -m bench.receiver PORT [HOLD_MS]``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_deliveries: list[dict[str, Any]] = []
_succeeded: dict[str, set[str]] = {}  # endpoint -> payments whose payment.succeeded arrived
_hold_seconds = 0.0


async def hook(request: Request) -> Response:
    started_at = time.time()
    body = await request.body()
    record = {
        "endpoint": request.path_params["n"],
        "started_at": started_at,
        "received_at": time.time(),
        "webhook_id": request.headers.get("webhook-id"),
        "webhook_timestamp": request.headers.get("webhook-timestamp"),
        "webhook_signature": request.headers.get("webhook-signature"),
        "body": body.decode("utf-8", "replace"),
    }
    _deliveries.append(record)
    _note(request.path_params["n"], body)
    if _hold_seconds:
        await asyncio.sleep(_hold_seconds)
    record["answered_at"] = time.time()
    return Response(status_code=204)


def _note(endpoint: str, body: bytes) -> None:
    try:
        event = json.loads(body)
        if event.get("type") == "payment.succeeded":
            _succeeded.setdefault(endpoint, set()).add(str(event["data"]["object"]["id"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        pass  # the bench inspects every body afterwards anyway


async def progress(_request: Request) -> JSONResponse:
    return JSONResponse(
        {"count": len(_deliveries), "succeeded": {e: len(p) for e, p in _succeeded.items()}}
    )


async def deliveries(_request: Request) -> JSONResponse:
    return JSONResponse(_deliveries)


async def reset(_request: Request) -> JSONResponse:
    """Forget what was recorded (each bench scenario counts its own deliveries)."""
    _deliveries.clear()
    _succeeded.clear()
    return JSONResponse({"count": 0})


async def count(_request: Request) -> JSONResponse:
    return JSONResponse({"count": len(_deliveries)})


app = Starlette(
    routes=[
        Route("/hooks/{n}", hook, methods=["POST"]),
        Route("/_deliveries", deliveries, methods=["GET"]),
        Route("/_count", count, methods=["GET"]),
        Route("/_reset", reset, methods=["POST"]),
        Route("/_progress", progress, methods=["GET"]),
        Route("/_health", count, methods=["GET"]),
    ]
)


def signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks: ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
    where the key is the base64 part of ``whsec_<base64>``."""
    raw = secret.removeprefix("whsec_")
    key = base64.b64decode(raw + "=" * (-len(raw) % 4))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(secret: str, webhook_id: str, timestamp: str, body: bytes, offered: str) -> bool:
    """True when one of the space-separated signatures in ``offered`` is right."""
    expected = signature(secret, webhook_id, timestamp, body)
    return any(hmac.compare_digest(candidate, expected) for candidate in offered.split())


def main() -> None:
    import uvicorn

    global _hold_seconds
    port = int(sys.argv[1])
    _hold_seconds = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.0
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
