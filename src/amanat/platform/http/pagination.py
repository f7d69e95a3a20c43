"""Cursor pagination: ``limit`` 1-100 (default 20) and an opaque ``cursor``.

A cursor is base64url JSON naming the last row's sort key. It is opaque to clients and
validated on the way in, so a mangled cursor is a clear ``invalid_cursor`` problem rather
than a 500 or a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Query
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from amanat.kernel.clock import parse_timestamp
from amanat.platform.http.errors import ApiProblem


def _digits_only(value: object) -> object:
    """As strict as the body's integers: "1.0", " 5" or "1e1" are refused, not rounded."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise PydanticCustomError("int_parsing", "Input should be a whole number, e.g. 20")
    return value


LimitParam = Annotated[
    int,
    BeforeValidator(_digits_only),
    Query(ge=1, le=100, description="Page size, 1 to 100."),
]
CursorParam = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` from the previous page."),
]


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    after: dict[str, Any] | None


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, *, required_keys: frozenset[str]) -> dict[str, Any] | None:
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ApiProblem("invalid_cursor") from None
    if (
        not isinstance(position, dict)
        or set(position) != required_keys
        or not all(isinstance(v, str | int) for v in position.values())
    ):
        raise ApiProblem("invalid_cursor")
    return position


def page_request(limit: int, cursor: str | None, *, keys: frozenset[str]) -> PageRequest:
    return PageRequest(limit=limit, after=decode_cursor(cursor, required_keys=keys))


def list_body(items: list[Any], *, limit: int, cursor_of: Any) -> dict[str, Any]:
    """Build the list shape from up to ``limit + 1`` fetched items."""
    has_more = len(items) > limit
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "has_more": has_more,
        "next_cursor": encode_cursor(cursor_of(page[-1])) if has_more and page else None,
    }


def parse_time(value: str | None, name: str, *, where: str = "query") -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError):  # OverflowError: e.g. year 1 with a +01:00 offset
        raise ApiProblem(
            "validation_error",
            "Timestamps must be RFC 3339 with a zone.",
            status=422,
            errors=[
                {
                    "pointer": f"/{name}",
                    "in": where,
                    "code": "bad_format",
                    "message": "RFC 3339 timestamp, e.g. 2026-11-24T10:00:00Z",
                }
            ],
        ) from None


def page_position(cursor: str | None) -> tuple[datetime, str] | None:
    after = decode_cursor(cursor, required_keys=frozenset({"t", "id"}))
    if not after:
        return None
    row_id = str(after["id"])
    # The edge's guard never sees inside the base64: refuse here what no id holds (a NUL
    # would reach PostgreSQL and fail there).
    if not 0 < len(row_id) <= 64 or not row_id.isprintable():
        raise ApiProblem("invalid_cursor")
    try:
        return parse_timestamp(str(after["t"])), str(after["id"])
    except (ValueError, OverflowError):
        raise ApiProblem("invalid_cursor") from None


def next_cursor(has_more: bool, created_at: datetime | None, row_id: str | None) -> str | None:
    if not has_more or created_at is None or row_id is None:
        return None
    return encode_cursor({"t": created_at.isoformat(), "id": row_id})
