"""Idempotency keys for every POST under ``/v1`` (see docs/api-contract.md).

The key record, the business change and the completed record are written in one
transaction, so a crash can never leave one without the others, and the request costs one
commit. The key's primary key lets exactly one request win: a concurrent request with the
same key waits on that row until the first commits, then gets its stored result. A
business refusal rolls the change back and is then stored as the key's result. A request
refused before it started (validation, auth, rate limit) never gets here and stores
nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, Protocol

import orjson
import structlog
from fastapi import Header, Request
from starlette.responses import Response

from amanat.kernel.clock import Clock
from amanat.kernel.errors import Contention, DomainError, InvalidInput
from amanat.platform.db.ports import TransactionFactory
from amanat.platform.http.errors import ApiProblem, domain_error_status, problem_body
from amanat.platform.http.responses import JsonResponse, ProblemResponse
from amanat.platform.http.services import find_service
from amanat.platform.idempotency.ports import IdempotencyRecord, IdempotencyTx
from amanat.platform.protection.service import DataProtectionService
from amanat.platform.settings import Settings
from amanat.platform.unit_of_work.sql import SqlTransactions

log = structlog.get_logger("amanat.idempotency")

KEY_LIFETIME = timedelta(hours=24)
LOCK = timedelta(seconds=30)
_PRINTABLE = re.compile(r"^[\x20-\x7e]{1,255}$")

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=300,
        description="Required on every POST: 1-255 printable ASCII characters, unique per "
        'operation. Bare (`abc`) or as a structured-field string (`"abc"`).',
    ),
]


class Caller(Protocol):
    """Who sent the request: its stored responses are kept per client."""

    @property
    def client_id(self) -> str: ...


def parse_key(raw: str | None) -> str:
    if raw is None or raw.strip() == "":
        raise ApiProblem("idempotency_key_missing")
    value = raw.strip()
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = re.sub(r'\\(["\\])', r"\1", value[1:-1])
    if not _PRINTABLE.match(value):
        raise ApiProblem(
            "validation_error",
            "Idempotency-Key must be 1-255 printable ASCII characters.",
            status=400,
            errors=[
                {
                    "pointer": "Idempotency-Key",
                    "in": "header",
                    "code": "bad_format",
                    "message": "1-255 printable ASCII characters",
                }
            ],
        )
    return value


def fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(method.encode() + b"\n" + path.encode() + b"\n" + canonical).hexdigest()


def _where(record_key: str) -> dict[str, str]:
    return {"table": "idempotency_keys", "column": "response_body", "row_id": record_key}


async def _replay(request: Request, record: IdempotencyRecord) -> Response:
    status = record.response_status or 200
    media = "application/problem+json" if status >= 400 else "application/json"
    headers = dict(record.response_headers or {})
    headers["Idempotent-Replayed"] = "true"
    body = await find_service(request, DataProtectionService).unseal(
        record.response_body or "", **_where(f"{record.client_id}:{record.key}")
    )
    return Response(content=body, status_code=status, media_type=media, headers=headers)


Operation = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


class _KeyState(Exception):
    """The key is not free to run under (replay, reuse, in use): never stored as a result."""

    def __init__(self, response: Response | None = None, problem: ApiProblem | None = None):
        super().__init__()
        self.response = response
        self.problem = problem


async def _claim(
    request: Request,
    tx: IdempotencyTx,
    record: IdempotencyRecord,
) -> None:
    """Insert the key as in progress, in the business transaction. A concurrent request
    with the same key waits on the key's row until this one commits or rolls back, then
    finds the stored result (replayed) or a free key."""
    now = record.created_at
    if await tx.idempotency.try_insert(record):
        return
    # The key is taken. A record past its lifetime no longer counts: remove it, claim afresh.
    if await tx.idempotency.delete_expired(
        record.client_id, record.key, now
    ) and await tx.idempotency.try_insert(record):
        return
    existing = await tx.idempotency.get(record.client_id, record.key, for_update=True)
    if existing is None:  # expired and removed by a concurrent request: rare
        raise _KeyState(problem=ApiProblem("idempotency_key_in_use", headers={"Retry-After": "1"}))
    if existing.request_hash != record.request_hash:
        raise _KeyState(problem=_reused(existing))
    if existing.status == "completed":
        raise _KeyState(response=await _replay(request, existing))
    # An in-progress record that was committed: left by an older version of amanat that
    # claimed keys in a transaction of their own. Taken over once its lock has expired.
    lock = existing.locked_until
    if lock is not None and lock > now:
        wait = max(1, math.ceil((lock - now).total_seconds()))
        raise _KeyState(
            problem=ApiProblem("idempotency_key_in_use", headers={"Retry-After": str(min(wait, 5))})
        )
    if not await tx.idempotency.take_over(record.client_id, record.key, lock, now + LOCK):
        raise _KeyState(problem=ApiProblem("idempotency_key_in_use", headers={"Retry-After": "1"}))
    log.warning("idempotency_takeover", key_age_s=(now - existing.created_at).seconds)


async def _replay_if_completed(
    request: Request, transactions: TransactionFactory[IdempotencyTx], record: IdempotencyRecord
) -> Response | None:
    """The stored answer of a completed, unexpired key, read without taking a write lock;
    ``None`` sends the request down the claiming path (new, in progress or expired key).

    Retries are the common case after a timeout, and on SQLite the claiming path queues
    them behind every payout for the one write lock."""
    async with transactions.lookup() as tx:
        existing = await tx.idempotency.get(record.client_id, record.key, for_update=False)
    if (
        existing is None
        or existing.status != "completed"
        or existing.expires_at <= record.created_at
    ):
        return None
    if existing.request_hash != record.request_hash:
        raise _reused(existing)
    return await _replay(request, existing)


def _reused(existing: IdempotencyRecord) -> ApiProblem:
    return ApiProblem(
        "idempotency_key_reused",
        "This Idempotency-Key was used for a different request "
        f"({existing.method} {existing.path}).",
    )


async def run_idempotent(
    request: Request, context: Caller, raw_key: str | None, operation: Operation
) -> Response:
    transactions = find_service(request, SqlTransactions)
    key = parse_key(raw_key)
    body = await request.body()
    now = find_service(request, Clock).now()
    record = IdempotencyRecord(
        client_id=context.client_id,
        key=key,
        request_hash=fingerprint(request.method, request.url.path, body),
        method=request.method,
        path=request.url.path,
        status="in_progress",
        response_status=None,
        response_body=None,
        response_headers=None,
        created_at=now,
        locked_until=now + LOCK,
        expires_at=now + KEY_LIFETIME,
    )
    replayed = await _replay_if_completed(request, transactions, record)
    if replayed is not None:
        return replayed
    retries = find_service(request, Settings).database.contention_retries
    for attempt in range(retries + 1):
        try:
            return await _execute(request, context, record, operation)
        except Contention:
            # The database rolled the whole unit of work back (deadlock, serialization
            # failure, lock timeout): nothing of it stands, so it runs again from the top.
            # After the last try the client gets 503 with Retry-After and a free key.
            if attempt == retries:
                raise
            log.info("unit_of_work_retried", attempt=attempt + 1)
            await asyncio.sleep(random.uniform(0.01, 0.05) * 2**attempt)
    raise AssertionError("unreachable")


async def _execute(
    request: Request, context: Caller, record: IdempotencyRecord, operation: Operation
) -> Response:
    """One run of the operation under its key, in one transaction."""
    transactions = find_service(request, SqlTransactions)
    key = record.key
    now = record.created_at
    # Stored responses echo personal data (names, IBANs), so they are kept encrypted.
    where = _where(f"{context.client_id}:{key}")
    try:
        # One transaction: the key, the business change and the stored response commit
        # together or not at all.
        async with transactions.atomic() as tx:
            await _claim(request, tx, record)
            status, payload = await operation()
            sealed = await find_service(request, DataProtectionService).seal(
                orjson.dumps(payload).decode(), **where
            )
            await tx.idempotency.complete(context.client_id, key, status, sealed, {})
        return JsonResponse(payload, status_code=status)
    except _KeyState as state:
        if state.response is not None:
            return state.response
        raise (state.problem or ApiProblem("idempotency_key_in_use")) from None
    except (DomainError, ApiProblem) as exc:
        # The request executed and was refused by a business rule: that outcome is the
        # result for this key, as Stripe does; nothing else was committed.
        if isinstance(exc, ApiProblem):
            status, problem = (
                exc.status,
                problem_body(
                    exc.code,
                    status=exc.status,
                    detail=exc.detail,
                    instance=request.url.path,
                    errors=exc.errors,
                    extra=exc.extra,
                ),
            )
        else:
            status = domain_error_status(exc)
            errors = (
                [{"pointer": None, "in": "body", "code": exc.reason, "message": exc.message}]
                if isinstance(exc, InvalidInput)
                else None
            )
            problem = problem_body(
                exc.code,
                status=status,
                detail=exc.message,
                instance=request.url.path,
                errors=errors,
            )
        sealed_problem = await find_service(request, DataProtectionService).seal(
            orjson.dumps(problem).decode(), **where
        )
        async with transactions.write() as tx:
            await tx.idempotency.delete_expired(context.client_id, key, now)
            if await tx.idempotency.try_insert(record):
                await tx.idempotency.complete(context.client_id, key, status, sealed_problem, {})
            # else: a concurrent request with this key ran meanwhile; its result stands.
        return ProblemResponse(problem, status_code=status)
