"""Reference data: the SBP-licensed banks amanat can route to (public, no token needed)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from amanat.kernel.pakistan import BANK_KINDS, Bank, bank_by_code, banks
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.openapi import declared_enum
from amanat.platform.http.pagination import CursorParam, LimitParam, list_body, page_request
from amanat.platform.http.schemas import ListResponse, ResponseModel

router = APIRouter(prefix="/v1/banks", tags=["reference data"])


class BankOut(ResponseModel):
    object: Literal["bank"] = "bank"
    code: str
    name: str
    imd: str | None
    kind: str = Field(
        description="The SBP licence category.", json_schema_extra=declared_enum(sorted(BANK_KINDS))
    )


def _out(bank: Bank) -> BankOut:
    return BankOut(code=bank.code, name=bank.name, imd=bank.imd, kind=bank.kind)


@router.get("", response_model=ListResponse[BankOut], summary="List banks")
async def list_banks(limit: LimitParam = 20, cursor: CursorParam = None) -> dict[str, object]:
    """The SBP-licensed banks amanat routes to, ordered by `code` (the four letters in an
    IBAN after the check digits). Public: no token needed.

    Pages with `limit` and `cursor`. Errors: `invalid_cursor` (400).
    """
    page = page_request(limit, cursor, keys=frozenset({"code"}))
    after = str(page.after["code"]) if page.after else ""
    items = [_out(b) for b in sorted(banks(), key=lambda b: b.code) if b.code > after]
    return list_body(items[: limit + 1], limit=limit, cursor_of=lambda b: {"code": b.code})


@router.get("/{code}", response_model=BankOut, summary="Retrieve a bank by its IBAN code")
async def get_bank(code: str) -> BankOut:
    """One bank by its IBAN bank code (case-insensitive, e.g. `SCBL`). Public: no token
    needed. Errors: `not_found` (404).
    """
    bank = bank_by_code(code.upper())
    if bank is None:
        raise ApiProblem("not_found", f"No bank with code '{code[:8]}'.")
    return _out(bank)
