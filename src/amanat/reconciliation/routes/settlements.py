"""What a merchant reads of its settlements: ``/v1/settlements``, each one's lines, and
the lines as a CSV whose totals equal the ledger."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from amanat.auth.service import AccessContext
from amanat.auth.verification import require_scope
from amanat.kernel.clock import format_timestamp
from amanat.platform.http.csv_cells import csv_text
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.pagination import (
    CursorParam,
    LimitParam,
    decode_cursor,
    encode_cursor,
    next_cursor,
    page_position,
)
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.schemas import ListResponse, ResponseModel
from amanat.platform.http.services import find_service
from amanat.reconciliation.domain.settlement import SettlementLine
from amanat.reconciliation.ports import SettlementRow
from amanat.reconciliation.services.settlements import SettlementService, settlement_view

router = APIRouter(tags=["settlements"])
SettlementsRead = Annotated[AccessContext, Depends(require_scope("settlements:read"))]

CSV_COLUMNS = (
    "line",
    "kind",
    "reference",
    "journal_id",
    "posted_at",
    "currency",
    "amount",
    "fee",
    "net",
)


class SettlementOut(ResponseModel):
    id: str
    object: Literal["settlement"]
    status: Literal["paid"]
    rail: str
    business_date: str
    currency: str
    period_start: str
    period_end: str
    opening_balance: int
    closing_balance: int
    gross_collections: int
    refunds: int
    payouts: int
    fees: int
    fees_charged: int
    fees_carried_forward: int
    dispute_holds: int
    dispute_reversals: int
    adjustments: int
    other: int
    net: int
    line_count: int
    fee_journal_id: str | None
    created_at: str


class SettlementLineOut(ResponseModel):
    object: Literal["settlement_line"]
    line: int
    kind: str
    reference: str
    journal_id: str | None
    posted_at: str
    currency: str
    amount: int
    fee: int
    net: int


def line_view(line: SettlementLine) -> dict[str, Any]:
    return {
        "object": "settlement_line",
        "line": line.seq,
        "kind": line.kind.value,
        "reference": line.reference,
        "journal_id": line.journal_id,
        "posted_at": format_timestamp(line.at),
        "currency": line.currency,
        "amount": line.amount,
        "fee": line.fee,
        "net": line.net,
    }


def settlement_csv(row: SettlementRow, lines: list[SettlementLine]) -> str:
    """One row per line, then a total row: the amount, fee and net columns sum to the
    settlement's, and the net to ``closing_balance - opening_balance``."""
    total = [
        "total",
        "",
        row.id,
        "",
        format_timestamp(row.window_end),
        row.currency,
        sum(line.amount for line in lines),
        sum(line.fee for line in lines),
        row.net,
    ]
    body = ([line_view(line)[c] for c in CSV_COLUMNS] for line in lines)
    return csv_text(CSV_COLUMNS, [*body, total])


def parse_business_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        parsed = date.fromisoformat(value)
        if not 2000 <= parsed.year <= 2200:
            raise ValueError(value)
        return parsed
    except ValueError:
        raise ApiProblem(
            "validation_error",
            "business_date is a date: YYYY-MM-DD.",
            status=422,
            errors=[
                {
                    "pointer": "/business_date",
                    "in": "query",
                    "code": "bad_format",
                    "message": "YYYY-MM-DD",
                }
            ],
        ) from None


async def settlements_page(
    request: Request,
    partner_id: str | None,
    limit: int,
    cursor: str | None,
    business_date: str | None,
) -> Response:
    """A page of settlements, newest first: one partner's, or (operators) everyone's."""
    rows, has_more = await find_service(request, SettlementService).page(
        partner_id,
        limit=limit,
        before=page_position(cursor),
        business_date=parse_business_date(business_date),
    )
    last = rows[-1] if rows else None
    return JsonResponse(
        {
            "object": "list",
            "data": [settlement_view(r) for r in rows],
            "has_more": has_more,
            "next_cursor": next_cursor(
                has_more, last.created_at if last else None, last.id if last else None
            ),
        }
    )


@router.get(
    "/v1/settlements",
    response_model=ListResponse[SettlementOut],
    summary="List your settlements, newest first",
)
async def list_settlements(
    request: Request,
    context: SettlementsRead,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
    business_date: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """One settlement per closed cycle in which your balance moved (Pakistan business
    days; the cycle closes at the cut-off, `Asia/Karachi`). Filter by `business_date`.

    Scope `settlements:read`. Errors: `invalid_cursor` (400), `validation_error` (422).
    """
    return await settlements_page(request, context.partner_id, limit, cursor, business_date)


@router.get(
    "/v1/settlements/{settlement_id}", response_model=SettlementOut, summary="Retrieve a settlement"
)
async def get_settlement(
    settlement_id: str, request: Request, context: SettlementsRead
) -> Response:
    """Scope `settlements:read`. Errors: `not_found` (404)."""
    row = await find_service(request, SettlementService).get(context.partner_id, settlement_id)
    return JsonResponse(settlement_view(row))


@router.get(
    "/v1/settlements/{settlement_id}/lines",
    response_model=ListResponse[SettlementLineOut],
    summary="A settlement's lines, in order",
)
async def list_settlement_lines(
    settlement_id: str,
    request: Request,
    context: SettlementsRead,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorParam = None,
) -> Response:
    """Every journal that moved your balance in the cycle, with its fee: collections,
    refunds, payouts, dispute holds and reversals, adjustments, and fees carried between
    cycles. `limit` 1-1000.

    Scope `settlements:read`. Errors: `invalid_cursor` (400), `not_found` (404).
    """
    position = decode_cursor(cursor, required_keys=frozenset({"seq"}))
    after = position["seq"] if position else 0
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**31:
        raise ApiProblem("invalid_cursor")
    _, lines = await find_service(request, SettlementService).lines(
        context.partner_id, settlement_id, after_seq=after, limit=limit + 1
    )
    has_more = len(lines) > limit
    lines = lines[:limit]
    return JsonResponse(
        {
            "object": "list",
            "data": [line_view(line) for line in lines],
            "has_more": has_more,
            "next_cursor": encode_cursor({"seq": lines[-1].seq}) if has_more else None,
        }
    )


@router.get(
    "/v1/settlements/{settlement_id}/lines.csv",
    summary="A settlement's lines as CSV, with a total row",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The lines as CSV."}},
)
async def settlement_lines_csv(
    settlement_id: str, request: Request, context: SettlementsRead
) -> Response:
    """Columns: `line, kind, reference, journal_id, posted_at, currency, amount, fee,
    net` (amounts in paisa); the last row, `total`, sums them, and its net equals the
    settlement's `net` (`closing_balance - opening_balance`).

    Scope `settlements:read`. Errors: `not_found` (404).
    """
    row, lines = await find_service(request, SettlementService).lines(
        context.partner_id, settlement_id, after_seq=0, limit=None
    )
    return Response(
        settlement_csv(row, lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{row.id}.csv"'},
    )
