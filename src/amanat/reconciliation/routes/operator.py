"""Operations' side of settlement and reconciliation, under ``/operator/v1``: import the
bank's or the rail's report, read the matches and the exceptions queue, resolve a break
with a reason, close a settlement cycle. Every change is audited."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Security
from pydantic import Field
from starlette.responses import Response

from amanat.identity.access import Permission
from amanat.identity.services.operators import OperatorSession
from amanat.identity.sessions import operator_actor, require_permission, session_cookie
from amanat.kernel.clock import format_timestamp
from amanat.platform.http.csv_cells import csv_text
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.pagination import CursorParam, LimitParam, next_cursor, page_position
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.schemas import ListResponse, RequestModel, ResponseModel
from amanat.platform.http.services import find_service
from amanat.reconciliation.domain.errors import StatementRejected
from amanat.reconciliation.domain.records import Outcome
from amanat.reconciliation.routes.settlements import (
    SettlementOut,
    parse_business_date,
    settlements_page,
)
from amanat.reconciliation.services.reconciliation import (
    ImportResult,
    ReconciliationService,
    break_view,
    import_view,
)
from amanat.reconciliation.services.settlements import SettlementService, settlement_view

IMPORT_PATH = "/operator/v1/reconciliation/imports"
RAIL_REPORT_EXAMPLE = (
    "transfer_id,end_to_end_id,direction,amount,currency,settled_at,settlement_date,"
    "batch_id,fee\r\n"
    "RRN261124000042,pay_01JD5Z8K3N4Q6R7S8T9V0W1X2Y,credit,1500.00,PKR,"
    "2026-11-24T08:15:30.123Z,2026-11-24,,\r\n"
)

router = APIRouter(
    prefix="/operator/v1", tags=["operator"], dependencies=[Security(session_cookie)]
)
Reader = Annotated[OperatorSession, Depends(require_permission(Permission.RECONCILIATION_READ))]
Writer = Annotated[OperatorSession, Depends(require_permission(Permission.RECONCILIATION_WRITE))]
SourceName = Literal["sandbox_rail", "bank_statement", "bank_csv"]
BreakKind = Literal["unmatched_internal", "unmatched_external", "amount_mismatch", "duplicate"]


class ImportOut(ResponseModel):
    id: str
    object: Literal["reconciliation_import"]
    source: str
    format: str
    file_name: str
    sha256: str
    size: int
    records: int
    new_records: int
    matched: int
    breaks_opened: int
    breaks_cleared: int
    as_of: str | None
    imported_by: str
    created_at: str
    already_imported: bool = False
    open_breaks: dict[str, int] = Field(default_factory=dict)


class DifferenceOut(ResponseModel):
    field: str
    ours: str | None
    theirs: str | None


class BreakOut(ResponseModel):
    id: str
    object: Literal["reconciliation_break"]
    source: str
    kind: str
    status: Literal["open", "resolved"]
    amount: int
    currency: str
    payment_id: str | None
    external_id: str | None
    partner_id: str | None
    differences: list[DifferenceOut]
    suggested_cause: str
    age_seconds: int
    opened_at: str
    import_id: str | None
    resolution: str | None
    reason: str | None
    resolved_by: str | None
    resolved_at: str | None
    journal_id: str | None
    match_id: str | None


class MatchOut(ResponseModel):
    id: str
    object: Literal["reconciliation_match"]
    source: str
    import_id: str | None
    rule: str
    outcome: str
    external_ids: list[str]
    allocations: list[dict[str, Any]]
    amount: int
    fees: int
    created_by: str
    created_at: str


class ResolveBody(RequestModel):
    resolution: Literal["write_off", "adjustment", "manual_match", "dismiss"]
    reason: str = Field(min_length=3, max_length=500)
    partner_id: str | None = Field(
        default=None,
        max_length=40,
        description="adjustment of a record no payment explains: whose balance takes it.",
    )
    counterpart: str | None = Field(
        default=None,
        max_length=100,
        description="manual_match: the payment id (for a record) or the record's "
        "external id (for a payment) this break pairs with.",
    )


def _import_out(result: ImportResult) -> dict[str, Any]:
    open_breaks = {k: v for k, v in result.outcomes.items() if k != Outcome.MATCHED.value}
    return import_view(result.row) | {
        "already_imported": result.already_imported,
        "open_breaks": open_breaks,
    }


def _rejected(exc: StatementRejected) -> ApiProblem:
    return ApiProblem(
        "statement_rejected",
        exc.message,
        status=422,
        errors=[
            {"pointer": e.location, "in": "body", "code": "invalid_value", "message": e.message}
            for e in exc.errors
        ],
        extra={"truncated": exc.truncated},
    )


@router.post(
    "/reconciliation/imports",
    status_code=201,
    response_model=ImportOut,
    summary="Import a bank statement or rail report and match it",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "examples": {
                        "rail_report": {
                            "summary": "A one-row sandbox rail settlement report",
                            "value": RAIL_REPORT_EXAMPLE,
                        }
                    },
                },
            },
        }
    },
)
async def import_statement(
    request: Request,
    session: Writer,
    source: Annotated[
        SourceName,
        Query(
            description="Which report this file is.",
            openapi_examples={"rail": {"value": "sandbox_rail"}},
        ),
    ],
    file_name: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            openapi_examples={"report": {"value": "settlement-2026-11-24.csv"}},
        ),
    ] = "statement",
) -> Response:
    """The body is the file itself, sent as it is (any content type, e.g.
    `application/octet-stream`): camt.053/054 XML for `bank_statement`, CSV for
    `sandbox_rail` and `bank_csv`, up to `AMANAT_HTTP__MAX_UPLOAD_BYTES`. A file with any
    fault is refused whole (`statement_rejected`, every fault located in `errors[]`);
    the same file twice changes nothing (200, `already_imported: true`); an overlapping
    file adds only what is new. Matching runs at once; the answer counts matches and the
    breaks opened and cleared.

    Session cookie, `X-CSRF-Token` and permission `reconciliation.write`.
    """
    data = await request.body()
    service = find_service(request, ReconciliationService)
    try:
        result = await service.import_file(
            operator_actor(request, session), source, data, file_name
        )
    except StatementRejected as exc:
        raise _rejected(exc) from None
    return JsonResponse(_import_out(result), status_code=200 if result.already_imported else 201)


@router.get(
    "/reconciliation/imports",
    response_model=ListResponse[ImportOut],
    summary="Imported statements, newest first",
)
async def list_imports(
    request: Request, _session: Reader, limit: LimitParam = 20, cursor: CursorParam = None
) -> Response:
    """Session cookie and permission `reconciliation.read`."""
    service = find_service(request, ReconciliationService)
    rows = await service.imports(limit=limit + 1, before=page_position(cursor))
    has_more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return JsonResponse(
        {
            "object": "list",
            "data": [import_view(r) for r in rows],
            "has_more": has_more,
            "next_cursor": next_cursor(
                has_more, last.created_at if last else None, last.id if last else None
            ),
        }
    )


@router.get("/reconciliation/imports/{import_id}", response_model=ImportOut, summary="One import")
async def get_import(import_id: str, request: Request, _session: Reader) -> Response:
    """Session cookie and permission `reconciliation.read`. Errors: `not_found` (404)."""
    result = await find_service(request, ReconciliationService).get_import(import_id)
    return JsonResponse(_import_out(result))


@router.get(
    "/reconciliation/matches",
    response_model=ListResponse[MatchOut],
    summary="Matches, oldest first, by import or source",
)
async def list_matches(
    request: Request,
    _session: Reader,
    import_id: Annotated[str | None, Query(max_length=40)] = None,
    source: SourceName | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Every match with its rule (`end_to_end_id`, `reference`, `batch`,
    `value_date_group`, `manual`), the records it used and how much of each payment it
    covers. Pages with `limit` (1-1000) and `offset`.

    Session cookie and permission `reconciliation.read`.
    """
    rows = await find_service(request, ReconciliationService).matches(
        import_id=import_id, source=source, limit=limit + 1, offset=offset
    )
    has_more = len(rows) > limit
    return JsonResponse(
        {
            "object": "list",
            "data": [_match_view(r) for r in rows[:limit]],
            "has_more": has_more,
            "next_cursor": None,
        }
    )


def _match_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "reconciliation_match",
        "source": row["source"],
        "import_id": row["import_id"],
        "rule": row["rule"],
        "outcome": row["outcome"],
        "external_ids": list(row["external_ids"]),
        "allocations": [{"payment_id": p, "amount": a} for p, a in row["allocations"]],
        "amount": row["amount"],
        "fees": row["fees"],
        "created_by": row["created_by"],
        "created_at": format_timestamp(row["created_at"]),
    }


async def _breaks(
    request: Request,
    *,
    status: str | None,
    kind: str | None,
    source: str | None,
    payment_id: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], bool, str | None]:
    service = find_service(request, ReconciliationService)
    rows, has_more = await service.breaks(
        status=status,
        kind=kind,
        source=source,
        payment_id=payment_id,
        limit=limit,
        before=page_position(cursor),
    )
    now = service.now()
    last = rows[-1] if rows else None
    return (
        [break_view(r, now) for r in rows],
        has_more,
        next_cursor(has_more, last.opened_at if last else None, last.id if last else None),
    )


@router.get(
    "/reconciliation/breaks",
    response_model=ListResponse[BreakOut],
    summary="The exceptions queue: breaks, newest first",
)
async def list_breaks(
    request: Request,
    _session: Reader,
    status: Literal["open", "resolved"] | None = "open",
    kind: BreakKind | None = None,
    source: SourceName | None = None,
    payment_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
) -> Response:
    """Each break with its age, amount, the fields that differ (both values) and a
    suggested cause. Open ones by default.

    Session cookie and permission `reconciliation.read`.
    """
    data, has_more, cursor_out = await _breaks(
        request,
        status=status,
        kind=kind,
        source=source,
        payment_id=payment_id,
        limit=limit,
        cursor=cursor,
    )
    return JsonResponse(
        {"object": "list", "data": data, "has_more": has_more, "next_cursor": cursor_out}
    )


@router.get(
    "/reconciliation/breaks.csv",
    summary="The exceptions queue as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "Breaks as CSV."}},
)
async def breaks_csv(
    request: Request,
    _session: Reader,
    status: Literal["open", "resolved"] | None = "open",
    source: SourceName | None = None,
) -> Response:
    """Up to 10,000 breaks, newest first. Session cookie and `reconciliation.read`."""
    data, _, _ = await _breaks(
        request,
        status=status,
        kind=None,
        source=source,
        payment_id=None,
        limit=10_000,
        cursor=None,
    )
    columns = (
        "id",
        "source",
        "kind",
        "status",
        "amount",
        "currency",
        "payment_id",
        "external_id",
        "partner_id",
        "age_seconds",
        "opened_at",
        "suggested_cause",
        "resolution",
        "reason",
    )
    rows = [
        [
            *(item[c] for c in columns),
            "; ".join(
                f"{d['field']}: ours {d['ours']}, theirs {d['theirs']}" for d in item["differences"]
            ),
        ]
        for item in data
    ]
    return Response(
        csv_text([*columns, "differences"], rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="breaks.csv"'},
    )


@router.get("/reconciliation/breaks/{break_id}", response_model=BreakOut, summary="One break")
async def get_break(break_id: str, request: Request, _session: Reader) -> Response:
    """Session cookie and permission `reconciliation.read`. Errors: `not_found` (404)."""
    service = find_service(request, ReconciliationService)
    return JsonResponse(break_view(await service.get_break(break_id), service.now()))


@router.post(
    "/reconciliation/breaks/{break_id}/resolve",
    response_model=BreakOut,
    summary="Resolve a break with a reason",
)
async def resolve_break(
    break_id: str,
    body: Annotated[
        ResolveBody,
        Body(
            openapi_examples={
                "write_off": {
                    "summary": "The platform absorbs the difference",
                    "value": {"resolution": "write_off", "reason": "Bank fee on batch 42"},
                }
            }
        ),
    ],
    request: Request,
    session: Writer,
) -> Response:
    """`write_off` posts the difference between the two sides against the platform,
    `adjustment` against a merchant's balance, `manual_match` pairs the break with its
    `counterpart` (no posting), `dismiss` closes a `duplicate` that is only a reporting
    artefact (no posting). Each is audited with its reason; a break resolves once.

    Session cookie, `X-CSRF-Token` and permission `reconciliation.write`. Errors:
    `break_already_resolved`, `resolution_refused` (409), `insufficient_funds` (422: the
    merchant's balance cannot take a debit adjustment), `not_found` (404).
    """
    service = find_service(request, ReconciliationService)
    row = await service.resolve(
        operator_actor(request, session),
        break_id,
        body.resolution,
        body.reason,
        partner_id=body.partner_id,
        counterpart=body.counterpart,
    )
    return JsonResponse(break_view(row, service.now()))


@router.get(
    "/settlements",
    response_model=ListResponse[SettlementOut],
    summary="Every merchant's settlements, newest first",
)
async def list_all_settlements(
    request: Request,
    _session: Reader,
    partner_id: Annotated[str | None, Query(max_length=40)] = None,
    business_date: Annotated[str | None, Query(max_length=10)] = None,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
) -> Response:
    """Session cookie and permission `reconciliation.read`."""
    return await settlements_page(request, partner_id, limit, cursor, business_date)


class CycleOut(ResponseModel):
    object: Literal["settlement_cycle"]
    rail: str
    business_date: str
    period_start: str
    period_end: str
    settlements: list[SettlementOut]


@router.post(
    "/settlements/cycles/{business_date}/close",
    response_model=CycleOut,
    summary="Close a business day's settlement cycle now",
)
async def close_cycle(business_date: str, request: Request, session: Writer) -> Response:
    """Closes the cycle of `business_date` (YYYY-MM-DD, a Pakistan business day whose
    cut-off has passed) at once, instead of waiting for the worker: one settlement per
    merchant whose balance moved, fees charged, `settlement.paid` sent.

    Session cookie, `X-CSRF-Token` and permission `reconciliation.write`. Errors:
    `cycle_not_over`, `cycle_already_closed`, `cycle_out_of_order`, `not_a_business_day`
    (409).
    """
    day = parse_business_date(business_date)
    assert day is not None
    closed = await find_service(request, SettlementService).close(
        operator_actor(request, session), day
    )
    return JsonResponse(
        {
            "object": "settlement_cycle",
            "rail": closed.rail,
            "business_date": closed.business_date.isoformat(),
            "period_start": format_timestamp(closed.window_start),
            "period_end": format_timestamp(closed.window_end),
            "settlements": [settlement_view(r) for r in closed.settlements],
        }
    )
