"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from amanat.platform.db.migrate import current_revision, head_revision
from amanat.platform.http.responses import JsonResponse

router = APIRouter(tags=["health"])

# A load balancer's probe must get an answer, not hang behind a busy connection pool.
READY_TIMEOUT_SECONDS = 3.0


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: this process's counters, and the gauges each capability keeps
    from the database (unresolved payments, the outbox backlog), read at scrape time so
    any API replica can report them."""
    await request.app.state.container.scrape()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Liveness: answers `{"status": "ok"}` while the process can serve HTTP; it checks
    nothing else, so an orchestrator restarts the process only when it is stuck."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready to serve: database reachable and migrated to head",
    responses={503: {"description": "Not ready; `checks` says why."}},
)
async def readyz(request: Request) -> JsonResponse:
    """Readiness: 200 when the database answers and is migrated to the head revision,
    otherwise 503 with `checks` saying which check failed. Route traffic only when ready."""
    container = request.app.state.container
    checks: dict[str, Any] = {}
    ready = True
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await container.db.ping()
            checks["database"] = "ok"
            async with container.db.about_to_connect():
                current = await current_revision(container.db.engine)
        head = head_revision()
        checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
        ready = current == head
    except TimeoutError:
        checks["database"] = f"no answer within {READY_TIMEOUT_SECONDS:g} s"
        ready = False
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unreachable: {type(exc).__name__}"
        ready = False
    return JsonResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )
