"""The sandbox rail's daily settlement report: every transfer that reached its final,
money-moving status on one date (Asia/Karachi), as the CSV a participant downloads and
reconciles against (amanat's ``sandbox_rail`` source reads exactly these columns)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from typing import Any

from amanat.kernel.clock import KARACHI, format_timestamp

COLUMNS = (
    "transfer_id",
    "end_to_end_id",
    "direction",
    "amount",
    "currency",
    "settled_at",
    "settlement_date",
    "batch_id",
    "fee",
)
# A credit transfer takes money out of the participant's account; an approved request to
# pay brings it in.
_DIRECTION = {"settled": "debit", "approved": "credit"}


def _decimal(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def settlement_report(records: Iterable[dict[str, Any]], day: date) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    rows = []
    for record in records:
        direction = _DIRECTION.get(record["status"])
        finished = record.get("updated_at")
        if direction is None or finished is None:
            continue
        if finished.astimezone(KARACHI).date() != day:
            continue
        rows.append(
            (
                finished,
                [
                    record["rail_reference"],
                    record["end_to_end_id"],
                    direction,
                    _decimal(int(record["amount"])),
                    record["currency"],
                    format_timestamp(finished),
                    day.isoformat(),
                    "",
                    "",
                ],
            )
        )
    for _, row in sorted(rows, key=lambda pair: (pair[0], pair[1][0])):
        writer.writerow(row)
    return out.getvalue()
