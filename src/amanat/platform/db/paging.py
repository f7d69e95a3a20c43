"""Newest-first keyset pages: the one way every list of the partner and operator APIs
(and the console) reads "the next page", by the last row's (time, id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa


def newest_first(
    stmt: Any,
    at: sa.ColumnElement[Any],
    row_id: sa.ColumnElement[Any],
    before: tuple[datetime, str] | None,
) -> Any:
    """``stmt`` ordered newest first by ``(at, row_id)``, starting after ``before`` (the
    previous page's last row) when given. Ties on the time are broken by the id, so no row
    is skipped or repeated across pages."""
    if before is not None:
        last_at, last_id = before
        stmt = stmt.where(sa.or_(at < last_at, sa.and_(at == last_at, row_id < last_id)))
    return stmt.order_by(at.desc(), row_id.desc())
