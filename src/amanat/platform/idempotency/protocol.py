"""The Idempotency-Key header on every POST under ``/v1`` (see docs/api-contract.md): the
HTTP side of :class:`~amanat.platform.idempotency.service.IdempotencyService`.

It reads the key, fingerprints the request, and turns the service's outcomes into
responses: the operation's answer, a replay (``Idempotent-Replayed: true``), or a problem
(key reused, key in use). A request refused before it started (validation, auth, rate
limit) never gets here and stores nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol, TypeVar

import orjson
import structlog
from fastapi import Header, Request
from starlette.responses import Response

from amanat.kernel.errors import DomainError, InvalidInput
from amanat.platform.http.errors import ApiProblem, domain_error_status, problem_body
from amanat.platform.http.paths import request_path
from amanat.platform.http.responses import JsonResponse, ProblemResponse
from amanat.platform.http.services import find_service
from amanat.platform.idempotency.ports import IdempotencyRecord
from amanat.platform.idempotency.service import (
    IdempotencyService,
    KeyInUse,
    KeyReused,
    Operation,
    Replay,
    StoredAnswer,
)

log = structlog.get_logger("amanat.idempotency")

_PRINTABLE = re.compile(r"^[\x20-\x7e]{1,255}$")
HEADER_MAX_LENGTH = 300  # the header as sent: a quoted key's escapes may take it past 255

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=HEADER_MAX_LENGTH,
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


def fingerprint(method: str, path: str, body: bytes, content_type: str = "") -> str:
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        # A file: the same bytes declared as another type are another request.
        canonical = content_type.split(";")[0].strip().lower().encode() + b"\n" + body
    return hashlib.sha256(method.encode() + b"\n" + path.encode() + b"\n" + canonical).hexdigest()


_FINGERPRINT = "amanat.idempotency_fingerprint"  # in the ASGI scope: computed once a request
# In the ASGI scope: (client, key, fingerprint) of a request whose key was read, before its
# validation, and found neither completed nor reused; the route's own read is then skipped.
_READ_FREE = "amanat.idempotency_read_free"
ANSWER_FIRST = "amanat_answer_first"
"""The mark :func:`replays_before_validation` puts on an endpoint: the lean way in
(platform/http/lean_routes.py) asks the marked function for an answer once the caller
is known, before it validates the headers and the body."""

EndpointT = TypeVar("EndpointT", bound=Callable[..., Awaitable[Response]])


def replays_before_validation(endpoint: EndpointT) -> EndpointT:
    """Mark an idempotent POST endpoint whose retries of a remembered key are answered
    before its parameters are validated (:func:`replay_if_remembered`)."""
    setattr(endpoint, ANSWER_FIRST, replay_if_remembered)
    return endpoint


async def replay_if_remembered(request: Request, context: Caller) -> Response | None:
    """The stored answer of a retry this process remembers completed (replay_memo.py), or
    None: then the route runs as always, validation first.

    Only the exact retry is answered here: the same client, key, method, path and body (by
    fingerprint) as a request that passed validation, ran and completed, so validating
    it again could only come to the same result, and the answer would be this replay
    anyway (about a tenth of a replay's CPU, measured on payouts: the body's model and its
    IBAN checksum). A key that is malformed, not remembered, or remembered for another
    body goes the usual way, where validation speaks first, as it always did.

    A key the memo does not know is read from the database here while the service
    ``expects_retries`` (the last such key it read was completed): in a storm of retries
    each process meets each key once, and the usual way (validation, the route, a payout
    batch) cost such a retry about 1.1 ms of the API's CPU, against about 0.33 ms for a
    remembered one (the bench's replay of 5,000 keys, counted per second in each process).
    The reads of requests asking at the same moment go as one statement (store.py). A key
    read and found free skips the route's own read (``_READ_FREE``)."""
    raw_key = request.headers.get("idempotency-key")
    if raw_key is None or len(raw_key) > HEADER_MAX_LENGTH:  # the header's own refusal
        return None
    try:
        key = parse_key(raw_key)
    except ApiProblem:
        return None
    service = find_service(request, IdempotencyService)
    body = await request.body()
    path = request_path(request)
    found = fingerprint(request.method, path, body, request.headers.get("content-type", ""))
    request.scope[_FINGERPRINT] = (request.method, path, found)
    record = service.new_record(context.client_id, key, found, request.method, path)
    try:
        answer = await service.remembered(record)
        if answer is None and service.expects_retries:
            answer = await service.stored(record)
            if answer is None:
                request.scope[_READ_FREE] = (context.client_id, key, found)
    except KeyReused:
        return None
    if answer is None:
        return None
    return await _replay(service, record, answer)


async def _replay(
    service: IdempotencyService, record: IdempotencyRecord, answer: StoredAnswer
) -> Response:
    await service.count_replay(record)  # best effort: never fails, never waits for a lock
    media = "application/problem+json" if answer.status >= 400 else "application/json"
    headers = {**answer.headers, "Idempotent-Replayed": "true"}
    return Response(
        content=answer.body, status_code=answer.status, media_type=media, headers=headers
    )


def _reused(exc: KeyReused) -> ApiProblem:
    return ApiProblem(
        "idempotency_key_reused",
        f"This Idempotency-Key was used for a different request ({exc.method} {exc.path}).",
    )


def _in_use(exc: KeyInUse) -> ApiProblem:
    return ApiProblem("idempotency_key_in_use", headers={"Retry-After": str(exc.retry_after)})


def _refusal(request: Request, exc: DomainError | ApiProblem) -> tuple[int, dict[str, Any]]:
    """The problem document a business refusal answers (and is kept as the key's result)."""
    if isinstance(exc, ApiProblem):
        return exc.status, problem_body(
            exc.code,
            status=exc.status,
            detail=exc.detail,
            instance=request_path(request),
            errors=exc.errors,
            extra=exc.extra,
        )
    status = domain_error_status(exc)
    errors = (
        [{"pointer": None, "in": "body", "code": exc.reason, "message": exc.message}]
        if isinstance(exc, InvalidInput)
        else None
    )
    return status, problem_body(
        exc.code, status=status, detail=exc.message, instance=request_path(request), errors=errors
    )


Refusal = Callable[[DomainError], tuple[int, dict[str, Any]]]
"""The problem document (and status) a business refusal answers."""
Batched = Callable[[IdempotencyRecord, Refusal], Awaitable[tuple[int, dict[str, Any]] | None]]
"""A route's batched way to run its operation: the claim of the record's key, the change
(or the refusal, rendered with the given :data:`Refusal`) and the stored answer commit in
a batch with other requests' (payouts' group commit). It returns that answer; or None:
the key was taken, or the batch could not run, and the request takes the per-request
path, which waits for the key and replays or refuses it."""


async def run_idempotent(
    request: Request,
    context: Caller,
    raw_key: str | None,
    operation: Operation,
    *,
    batched: Batched | None = None,
    resource_id: str | None = None,
) -> Response:
    """Answer an idempotent POST: the stored answer of its key, or ``operation``'s, kept
    under the key. ``resource_id``: the object the request acts on when the caller knows
    it before the answer (a redelivered event); by default the answer's top-level ``id``
    (platform/idempotency/service.py, ``resource_of``) is kept as what it created."""
    service = find_service(request, IdempotencyService)
    key = parse_key(raw_key)
    path = request_path(request)
    method, fingerprinted, found = request.scope.get(_FINGERPRINT) or ("", "", "")
    if (method, fingerprinted) != (request.method, path):
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        found = fingerprint(request.method, path, body, content_type)
    record = service.new_record(context.client_id, key, found, request.method, path)
    try:
        # A retry of a key this process has seen completed needs no database at all.
        answer = await service.remembered(record)
        if answer is not None:
            return await _replay(service, record, answer)
        # A batched write claims its key in the batch, and the batch answers a key that
        # a completed request took (Replay, KeyReused, raised by ``batched``): on
        # PostgreSQL a new request pays no lookup of its own. On SQLite a batch takes the
        # one write lock, while a read takes none, so the key is read first there.
        read_free = request.scope.get(_READ_FREE) == (context.client_id, key, found)
        if (batched is None or service.read_before_claim) and not read_free:
            answer = await service.stored(record)
            if answer is not None:
                return await _replay(service, record, answer)
        if batched is not None:
            # The batch's claim still finds a key taken since the read above; one still
            # in progress goes the per-request path below, which waits for it.
            done = await batched(record, lambda exc: _refusal(request, exc))
            if done is not None:
                status, payload = done
                if status >= 400:
                    return ProblemResponse(payload, status_code=status)
                return JsonResponse(payload, status_code=status)
        status, payload = await service.run(record, operation, resource_id=resource_id)
        return JsonResponse(payload, status_code=status)
    except Replay as replay:
        return await _replay(service, record, replay.answer)
    except KeyReused as exc:
        raise _reused(exc) from None
    except KeyInUse as exc:
        raise _in_use(exc) from None
    except (DomainError, ApiProblem) as exc:
        status, problem = _refusal(request, exc)
        await service.keep_refusal(record, status, problem)
        return ProblemResponse(problem, status_code=status)
