"""Stored idempotency keys written straight into their table, for tests of the reads."""

from __future__ import annotations

from datetime import datetime, timedelta


def completed_key_row(client_id: str, n: int, at: datetime, **changes: object) -> dict[str, object]:
    """The row of ``client_id``'s n-th completed key (``key-<n>``, replayed n times), made
    at ``at``, with ``changes`` over it."""
    return {
        "id": f"{client_id}:key-{n}",
        "client_id": client_id,
        "key": f"key-{n}",
        "request_hash": "ab" * 32,
        "method": "POST",
        "path": "/v1/payments",
        "status": "completed",
        "response_status": 201,
        "response_body": "sealed",
        "response_headers": {"Location": "/v1/payments/pay_1", "n": [1, 2]},
        "created_at": at,
        "locked_until": None,
        "expires_at": at + timedelta(days=1),
        "resource_id": None,
        "replays": n,
        "last_replayed_at": at + timedelta(seconds=n),
    } | changes
