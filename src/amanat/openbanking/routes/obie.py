"""The OBIE surface's edge: ``x-fapi-interaction-id`` on every answer, OBErrorResponse1
for every refusal, OBIE's amounts, timestamps, links and paging.

A route class (not a middleware) does it, so only the open-banking routers answer this
way and the partner API keeps its RFC 9457 problems: every exception raised while a
request is handled (validation, the token check, the rate limit, a refused consent, an
unexpected failure) is turned into the status and body the OBIE specification lists.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from amanat.auth.service import AccessContext
from amanat.auth.verification import require_scope
from amanat.kernel.clock import format_timestamp, parse_timestamp
from amanat.kernel.errors import DomainError, Unavailable
from amanat.kernel.money import currency_exponent
from amanat.openbanking.errors import FieldInvalid, OpenBankingError
from amanat.openbanking.ports import MessageSigner
from amanat.openbanking.services.consents import Tpp
from amanat.platform.http.context import current_request_id
from amanat.platform.http.errors import ApiProblem
from amanat.platform.http.responses import JsonResponse
from amanat.platform.http.schemas import RequestModel
from amanat.platform.http.services import find_service
from amanat.platform.settings import Settings

log = structlog.get_logger("amanat.openbanking")

BASE_PATH = "/open-banking/v3.1"
SIGNED_PREFIX = f"{BASE_PATH}/pisp/"
# Dates amanat stores and compares; others are refused, not clamped.
MIN_YEAR, MAX_YEAR = 1900, 9000
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# RFC 7231 IMF-fixdate as the OBIE document spells it (GMT or UTC).
_AUTH_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} (GMT|UTC)"
)
_STATUS_TEXT = {
    400: "400 BadRequest",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 NotFound",
    405: "405 MethodNotAllowed",
    406: "406 NotAcceptable",
    415: "415 UnsupportedMediaType",
    429: "429 TooManyRequests",
    500: "500 InternalServerError",
    503: "503 ServiceUnavailable",
}
# Statuses whose OBIE answer has a body (OBErrorResponse1); the others are headers only.
_WITH_BODY = frozenset({400, 403, 500, 503})


class ObieJson(JsonResponse):
    media_type = "application/json; charset=utf-8"


def error_response(
    status: int,
    errors: list[dict[str, str]],
    *,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if status not in _WITH_BODY:
        return Response(status_code=status, headers=headers)
    body = {
        "Code": _STATUS_TEXT.get(status, str(status)),
        "Id": (current_request_id() or str(uuid.uuid4()))[:40],
        "Message": (message or errors[0]["Message"])[:500],
        "Errors": [{k: v[:500] for k, v in error.items() if v} for error in errors],
    }
    return ObieJson(body, status_code=status, headers=headers)


def _obie_error(code: str, message: str, path: str | None = None) -> dict[str, str]:
    error = {"ErrorCode": code, "Message": message or code}
    if path:
        error["Path"] = path
    return error


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for raw in exc.errors():
        location = [str(part) for part in raw.get("loc", ()) if part != "body"]
        if raw.get("type") == "json_invalid":
            return [_obie_error("UK.OBIE.Field.Invalid", "The request body is not valid JSON.")]
        where = location[0] if location else ""
        if where in ("header", "query", "path"):
            kind = "Header" if where == "header" else "Field"
            missing = raw.get("type") == "missing"
            code = f"UK.OBIE.{kind}.{'Missing' if missing else 'Invalid'}"
            errors.append(_obie_error(code, str(raw.get("msg", "")), ".".join(location[1:])))
            continue
        missing = raw.get("type") == "missing"
        unexpected = raw.get("type") == "extra_forbidden"
        code = (
            "UK.OBIE.Field.Missing"
            if missing
            else "UK.OBIE.Field.Unexpected"
            if unexpected
            else "UK.OBIE.Field.Invalid"
        )
        errors.append(_obie_error(code, str(raw.get("msg", "")), ".".join(location)))
    return errors or [_obie_error("UK.OBIE.Field.Invalid", "The request is not valid.")]


def response_for(exc: Exception) -> Response:
    """The OBIE answer to anything raised while handling a request."""
    if isinstance(exc, OpenBankingError):
        return error_response(exc.status, [_obie_error(exc.obie_code, exc.message, exc.path)])
    if isinstance(exc, RequestValidationError):
        return error_response(400, _validation_errors(exc), message="The request is not valid.")
    if isinstance(exc, ApiProblem):
        headers = dict(exc.headers)
        if exc.status == 403:
            return error_response(
                403,
                [_obie_error("UK.OBIE.Resource.ConsentMismatch", exc.detail)],
                headers=headers,
            )
        if exc.status in _WITH_BODY:
            return error_response(
                exc.status, [_obie_error("UK.OBIE.Field.Invalid", exc.detail)], headers=headers
            )
        return Response(status_code=exc.status, headers=headers)
    if isinstance(exc, Unavailable):
        return error_response(
            503,
            [_obie_error("UK.OBIE.UnexpectedError", exc.message)],
            headers={"Retry-After": str(exc.retry_after_seconds)},
        )
    if isinstance(exc, DomainError):
        return error_response(400, [_obie_error("UK.OBIE.Field.Invalid", exc.message)])
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code in _WITH_BODY:  # e.g. JSON nested too deep for the reader
            return error_response(
                exc.status_code,
                [_obie_error("UK.OBIE.Field.Invalid", str(exc.detail) or "Bad request.")],
                headers=dict(exc.headers or {}),
            )
        return Response(status_code=exc.status_code, headers=dict(exc.headers or {}))
    log.exception("open_banking_unexpected_error", error_type=type(exc).__name__)
    return error_response(
        500,
        [
            _obie_error(
                "UK.OBIE.UnexpectedError",
                "An unexpected error occurred; quote the Id to the bank's support.",
            )
        ],
    )


def _interaction_id(given: str | None) -> str:
    return given if given is not None and _UUID.fullmatch(given) else str(uuid.uuid4())


# What the OBIE document allows for the refusals the HTTP edge makes before a route runs.
_EDGE_REFUSALS = {
    413: (400, "UK.OBIE.Field.Invalid"),
    422: (400, "UK.OBIE.Field.Invalid"),
    431: (400, "UK.OBIE.Header.Invalid"),
    400: (400, "UK.OBIE.Field.Invalid"),
    404: (404, ""),
    405: (405, ""),
    406: (406, ""),
    415: (415, ""),
    429: (429, ""),
    500: (500, "UK.OBIE.UnexpectedError"),
}


def edge_refusal(scope: Scope, status: int, code: str, detail: str) -> ASGIApp:
    """The OBIE answer to a refusal of the HTTP edge (registered for the open-banking
    paths with ``Registry.add_refusal_renderer``): a body too large, a forbidden character,
    malformed JSON, an unexpected failure."""
    obie_status, obie_code = _EDGE_REFUSALS.get(status, (400, "UK.OBIE.Field.Invalid"))
    given = None
    for name, value in scope.get("headers", ()):
        if name == b"x-fapi-interaction-id":
            given = value.decode("latin-1")
    response = error_response(
        obie_status,
        [_obie_error(obie_code or "UK.OBIE.Field.Invalid", detail or code)],
        headers={"x-fapi-interaction-id": _interaction_id(given)},
    )
    if not scope.get("path", "").startswith(SIGNED_PREFIX) or not response.body:
        return response

    async def signed(scope: Scope, receive: Receive, send: Send) -> None:
        # Payment initiation signs every answer with a body, refusals of the edge too.
        signer = scope["app"].state.container.get(MessageSigner)
        response.headers["x-jws-signature"] = await signer.sign(bytes(response.body))
        await response(scope, receive, send)

    return signed


class ObieRoute(APIRoute):
    signs_answers = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            # FAPI: echo the TPP's UUID, else answer with a fresh one.
            interaction = _interaction_id(request.headers.get("x-fapi-interaction-id"))
            try:
                response = await handle(request)
            except Exception as exc:  # noqa: BLE001 (every failure gets an OBIE answer)
                response = response_for(exc)
            response.headers["x-fapi-interaction-id"] = interaction
            if self.signs_answers and response.body:
                signer = find_service(request, MessageSigner)
                try:
                    response.headers["x-jws-signature"] = await signer.sign(bytes(response.body))
                except Exception:
                    # What happened (a payment made, perhaps) is true whether or not it can
                    # be signed: answer it unsigned rather than hide it behind a 500.
                    log.exception("open_banking_answer_not_signed")
            return response

        return handler


# The consent id in a path, as the OBIE document bounds it.
ConsentIdPath = Annotated[str, Path(alias="ConsentId", min_length=1, max_length=128)]


def tpp_of(context: AccessContext) -> Tpp:
    """The calling TPP: its OAuth client and the partner that owns it."""
    return Tpp(partner_id=context.partner_id, client_id=context.client_id)


def tpp_access(scope: str, *, policy: str = "read") -> Any:
    """A dependency: the TPP's verified token with ``scope`` (as every route of the
    partner API checks it), then the FAPI headers OBIE defines, checked only once the
    caller is known, so a request without a token always hears 401 first."""

    async def dependency(
        request: Request, context: AccessContext = Depends(require_scope(scope, policy=policy))
    ) -> AccessContext:
        auth_date = request.headers.get("x-fapi-auth-date")
        if auth_date is not None and not _AUTH_DATE.fullmatch(auth_date):
            raise FieldInvalid(
                "x-fapi-auth-date must be an RFC 7231 date, e.g. Sun, 10 Sep 2017 19:43:31 UTC.",
                path="x-fapi-auth-date",
                obie_code="UK.OBIE.Header.Invalid",
            )
        return context

    return dependency


class ObieModel(RequestModel):
    """A request body in OBIE's shape: strict like every request model, and with no
    ``null`` anywhere: OBIE's schemas have none, an absent field is left out."""

    @model_validator(mode="before")
    @classmethod
    def _no_null(cls, value: object) -> object:
        if isinstance(value, dict):
            nulls = [key for key, item in value.items() if item is None]
            if nulls:
                raise ValueError(
                    f"{', '.join(map(str, nulls))} must not be null; leave the field out instead"
                )
        return value


class SignedObieRoute(ObieRoute):
    """Payment initiation: every answer with a body carries the bank's ``x-jws-signature``."""

    signs_answers = True


# -- OBIE's shapes ---------------------------------------------------------------------------


def amount(minor: int, currency: str) -> dict[str, str]:
    """``{"Amount": "1234.50", "Currency": "PKR"}``: a decimal string, never a float."""
    exponent = currency_exponent(currency)
    whole, fraction = divmod(abs(minor), 10**exponent)
    text = f"{whole}.{fraction:0{exponent}d}" if exponent else str(whole)
    return {"Amount": text, "Currency": currency}


def timestamp(moment: datetime) -> str:
    return format_timestamp(moment)


def parse_datetime(text: str | None, path: str) -> datetime | None:
    """An ISO 8601 date-time with its offset, as OBIE requires, or a refusal naming
    ``path``."""
    if text is None:
        return None
    try:
        moment = parse_timestamp(text)
        if not MIN_YEAR <= moment.year <= MAX_YEAR:
            raise ValueError(text)
        return moment
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved to UTC
        raise FieldInvalid(
            f"{path} must be an ISO 8601 date-time with a timezone offset, "
            f"in the years {MIN_YEAR} to {MAX_YEAR}.",
            path=path,
            obie_code="UK.OBIE.Field.InvalidDate",
        ) from None


def self_link(request: Request) -> str:
    public = find_service(request, Settings).http.public_url.rstrip("/")
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{public}{request.url.path}{query}"


def envelope(request: Request, data: Any, **links: str) -> dict[str, Any]:
    return {
        "Data": data,
        "Links": {"Self": self_link(request), **links},
        "Meta": {"TotalPages": 1},
    }
