"""The sandbox rail's memory: its transfers in a small SQLite file of its own.

A real rail does not forget a transfer it accepted because it restarted, and amanat's
recovery relies on that (an enquiry answering "unknown" means "never received"). The rail
plays an outside system, so it keeps its state in its own file (``var/sandbox-rail.db`` by
default), never in amanat's database; with no file it keeps an in-memory SQLite database,
which a restart loses (tests use that).

Every write commits before the rail answers, so a transfer the rail said 202 to survives
a SIGKILL of the process. Calls are synchronous and short (one indexed statement); the
engine makes them under its lock.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from amanat.kernel.clock import format_timestamp, parse_timestamp

__all__ = ["RailStore"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS transfers (
        end_to_end_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        record TEXT NOT NULL,
        replays INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS transfers_status ON transfers (status)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS disputes (
        rail_dispute_id TEXT PRIMARY KEY,
        end_to_end_id TEXT NOT NULL,
        status TEXT NOT NULL,
        record TEXT NOT NULL
    )""",
)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$t": format_timestamp(value)}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$t"}:
            return parse_timestamp(value["$t"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


class RailStore:
    """Transfers as JSON records keyed by end-to-end id, with their status beside them."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(
            str(path) if path is not None else ":memory:",
            isolation_level=None,  # autocommit: every statement is durable when it returns
            check_same_thread=False,
            timeout=10.0,
        )
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed process
        for statement in _SCHEMA:
            self._db.execute(statement)

    def add(self, record: dict[str, Any]) -> bool:
        """Record a new transfer; False if its end-to-end id is already taken."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO transfers (end_to_end_id, status, record) VALUES (?, ?, ?)",
            (record["end_to_end_id"], record["status"], json.dumps(_encode(record))),
        )
        return cursor.rowcount == 1

    def save(self, record: dict[str, Any], *, was: str) -> bool:
        """Store a changed transfer if its stored status is still ``was`` (so two rail
        processes sharing the file never both move one transfer on)."""
        cursor = self._db.execute(
            "UPDATE transfers SET status = ?, record = ? WHERE end_to_end_id = ? AND status = ?",
            (record["status"], json.dumps(_encode(record)), record["end_to_end_id"], was),
        )
        return cursor.rowcount == 1

    def get(self, end_to_end_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT record FROM transfers WHERE end_to_end_id = ?", (end_to_end_id,)
        ).fetchone()
        return _decode(json.loads(row[0])) if row else None

    def replayed(self, end_to_end_id: str) -> None:
        """Count a resubmission answered with the first acceptance (moved no money)."""
        self._db.execute(
            "UPDATE transfers SET replays = replays + 1 WHERE end_to_end_id = ?", (end_to_end_id,)
        )

    def with_status(self, status: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT record FROM transfers WHERE status = ? ORDER BY rowid", (status,)
        ).fetchall()
        return [_decode(json.loads(row[0])) for row in rows]

    def with_statuses(self, *statuses: str) -> list[dict[str, Any]]:
        return [record for status in statuses for record in self.with_status(status)]

    def next_number(self, name: str) -> int:
        """1, 2, 3 ... for ``name``, never repeated, across restarts."""
        with self._db:  # one transaction: read and bump together
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
            value = (row[0] if row else 0) + 1
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
        return int(value)

    # -- disputes (sandbox_rail/disputes.py) ---------------------------------------------

    def add_dispute(self, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO disputes (rail_dispute_id, end_to_end_id, status, record) "
            "VALUES (?, ?, ?, ?)",
            (
                record["rail_dispute_id"],
                record["end_to_end_id"],
                record["status"],
                json.dumps(_encode(record)),
            ),
        )

    def save_dispute(self, record: dict[str, Any], *, was: str) -> bool:
        """Store a changed dispute if its stored status is still ``was``."""
        cursor = self._db.execute(
            "UPDATE disputes SET status = ?, record = ? WHERE rail_dispute_id = ? AND status = ?",
            (record["status"], json.dumps(_encode(record)), record["rail_dispute_id"], was),
        )
        return cursor.rowcount == 1

    def get_dispute(self, rail_dispute_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT record FROM disputes WHERE rail_dispute_id = ?", (rail_dispute_id,)
        ).fetchone()
        return _decode(json.loads(row[0])) if row else None

    def close(self) -> None:
        self._db.close()
