"""The sandbox rail as a standalone FastAPI app (protocol: docs/sandbox-rail.md).

``create_rail_app(RailSettings(callback_secret=..., admin_token=...))`` gives an ASGI app
that can be served on its own port or mounted under a path of another app. Its engine is
``app.state.rail_engine``; the app's lifespan cancels its timers on shutdown.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from amanat.sandbox_rail.disputes import (
    DecisionRequest,
    DisputeRefused,
    DisputeRequest,
    RailDisputes,
)
from amanat.sandbox_rail.engine import (
    RailEngine,
    RailProtocolError,
    RailSettings,
    TransferRequest,
)
from amanat.sandbox_rail.reports import settlement_report
from amanat.sandbox_rail.titles import title_of

__all__ = ["ADMIN_TOKEN_HEADER", "create_rail_app"]

ADMIN_TOKEN_HEADER = "Rail-Admin-Token"


class FaultsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    downtime_seconds: Annotated[StrictInt, Field(ge=0, le=86_400)] | None = None
    latency_ms: Annotated[StrictInt, Field(ge=0, le=600_000)] | None = None
    error_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    reset: StrictBool = False


class _FaultGate:
    """Latency and downtime for ``/v1/*``, before anything else looks at the request."""

    def __init__(self, app: ASGIApp, engine: RailEngine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _route_path(scope).startswith("/v1/"):
            await self.engine.apply_latency()
            retry_after = self.engine.unavailable_for()
            if retry_after is not None:
                response = JSONResponse(
                    {"error": "rail_unavailable"},
                    status_code=503,
                    headers={"Retry-After": str(retry_after)},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path inside this app, also when it is mounted under a prefix of another."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _validation_detail(exc: RequestValidationError) -> tuple[str, Any]:
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return "malformed_json", "The body is not valid JSON."
    detail = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ())[1:]) or "body",
            "type": error.get("type"),
            "message": error.get("msg"),
        }
        for error in errors
    ]
    return "invalid_request", detail


def create_rail_app(settings: RailSettings) -> FastAPI:
    engine = RailEngine(settings)
    disputes = RailDisputes(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.aclose()

    app = FastAPI(
        title="amanat sandbox rail",
        description="A Raast-like rail and sandbox bank for testing amanat. The last two "
        "digits of an amount choose the outcome: 00 settles; 01-04 are refused with AC01, "
        "AC06, AB08, AM02; 21 and 22 make a request to pay declined or expired. amanat's "
        "`/problems/rail_<reason>` pages say what each refusal means for a payment.",
        version="1",
        lifespan=lifespan,
        # As amanat's own app (platform/http/app.py): FastAPI's OpenTelemetry would record
        # URLs and refused values unmasked under any provider installed in the process.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.rail_engine = engine
    app.state.rail_disputes = disputes

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        error, detail = _validation_detail(exc)
        return JSONResponse({"error": error, "detail": detail}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": error}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RailProtocolError)
    async def _refused(_: Request, exc: RailProtocolError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(DisputeRefused)
    async def _dispute_refused(_: Request, exc: DisputeRefused) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    async def require_admin(
        token: Annotated[str | None, Header(alias=ADMIN_TOKEN_HEADER)] = None,
    ) -> None:
        expected = settings.admin_token.encode("utf-8")
        if token is None or not hmac.compare_digest(token.encode("utf-8"), expected):
            raise RailProtocolError("unauthorized", status=401)

    v1 = APIRouter(prefix="/v1", tags=["rail"])

    @v1.post("/transfers", status_code=202)
    async def submit_transfer(body: TransferRequest) -> JSONResponse:
        submitted = await engine.submit(body)
        if submitted.hold_seconds:
            await settings.sleep(submitted.hold_seconds)
        return JSONResponse(submitted.response, status_code=202)

    @v1.get("/transfers/{end_to_end_id}")
    async def transfer_status(end_to_end_id: str) -> JSONResponse:
        view = await engine.status(end_to_end_id)
        if view is None:
            return JSONResponse({"error": "unknown_transfer"}, status_code=404)
        return JSONResponse(view)

    @v1.get("/titles")
    async def account_title(iban: str | None = None, raast_id: str | None = None) -> JSONResponse:
        """Raast's title fetch: the holder's name behind an IBAN or a Raast ID."""
        identifier = (iban or raast_id or "").strip()
        if not identifier or len(identifier) > 40:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        title = title_of(identifier)
        if title is None:
            return JSONResponse({"error": "unknown_account"}, status_code=404)
        return JSONResponse({"title": title})

    @v1.get("/reports/settlement")
    async def settlement_report_csv(day: Annotated[str, Query(alias="date")]) -> Response:
        """The day's settlement report (Asia/Karachi date): one CSV row per transfer that
        settled or was approved that day."""
        try:
            wanted = date.fromisoformat(day)
        except ValueError:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        report = settlement_report(engine.store.with_statuses("settled", "approved"), wanted)
        return Response(
            report,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="settlement-{wanted}.csv"'},
        )

    @v1.post("/disputes", status_code=201)
    async def raise_dispute(body: DisputeRequest) -> JSONResponse:
        """A payer's bank disputes a settled transfer; amanat is told at once."""
        status, view = await disputes.raise_dispute(body)
        return JSONResponse(view, status_code=status)

    @v1.get("/disputes/{rail_dispute_id}")
    async def dispute_status(rail_dispute_id: str) -> JSONResponse:
        view = disputes.get(rail_dispute_id)
        if view is None:
            return JSONResponse({"error": "unknown_dispute"}, status_code=404)
        return JSONResponse(view)

    @v1.post("/disputes/{rail_dispute_id}/decision")
    async def decide_dispute(rail_dispute_id: str, body: DecisionRequest) -> JSONResponse:
        """The rail decides a dispute it raised (``won`` for the merchant, ``lost`` for
        the payer, ``withdrawn``); amanat is told at once."""
        return JSONResponse(await disputes.decide(rail_dispute_id, body))

    admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

    @admin.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return engine.fault_view()

    @admin.post("/faults")
    async def set_faults(body: FaultsRequest) -> dict[str, Any]:
        return engine.set_faults(
            downtime_seconds=body.downtime_seconds,
            latency_ms=body.latency_ms,
            error_rate=body.error_rate,
            reset=body.reset,
        )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(v1)
    app.include_router(admin)
    app.add_middleware(_FaultGate, engine=engine)
    return app
