"""The one place where errors become HTTP answers.

Every error path of the partner surface answers with an RFC 9457 problem document:
``type`` (a page this server serves under ``/problems/<code>``), ``title``, ``status``,
``detail``, ``instance``, the stable ``code`` and the ``request_id``; validation errors add
``errors: [{pointer, in, code, message}]``. No stack trace ever leaves the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from amanat.kernel.errors import Conflict, DomainError, InvalidInput, NotFound, Unavailable
from amanat.platform.http.context import current_request_id
from amanat.platform.http.field_codes import FALLBACK_CODE, FIELD_CODES, field_code
from amanat.platform.http.paths import request_path
from amanat.platform.http.problems import lookup
from amanat.platform.http.responses import ProblemResponse
from amanat.platform.settings import HttpSettings

log = structlog.get_logger("amanat.api")

# Set by create_app from the settings' public URL; the default's until then.
_PUBLIC_BASE = {"url": HttpSettings().public_url}


class ApiProblem(Exception):
    """Raised by the edge to answer with a specific problem document."""

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        entry = lookup(code)
        self.code = code
        self.status = status or (entry.status if entry else 400)
        self.detail = detail or (entry.description if entry else code)
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None
        self.extra = dict(extra or {})
        super().__init__(self.detail)


def configure_problem_base_url(url: str) -> None:
    _PUBLIC_BASE["url"] = url.rstrip("/")


def problem_body(
    code: str,
    *,
    status: int,
    detail: str,
    instance: str | None,
    errors: Iterable[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    entry = lookup(code)
    body: dict[str, Any] = {
        "type": f"{_PUBLIC_BASE['url']}/problems/{code}",
        "title": entry.title if entry else code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "request_id": current_request_id(),
    }
    if errors is not None:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return body


def problem_response(
    code: str,
    *,
    status: int,
    detail: str,
    instance: str | None,
    headers: Mapping[str, str] | None = None,
    errors: Iterable[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProblemResponse:
    return ProblemResponse(
        problem_body(
            code, status=status, detail=detail, instance=instance, errors=errors, extra=extra
        ),
        status_code=status,
        headers=dict(headers or {}),
    )


def _json_pointer(parts: Iterable[Any]) -> str:
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "/" + "/".join(escaped)


def validation_errors(raw_errors: Sequence[Any]) -> list[dict[str, Any]]:
    """pydantic errors -> ``[{pointer, in, code, message}]``; never echoes the input."""
    result: list[dict[str, Any]] = []
    for err in raw_errors:
        loc = list(err.get("loc", ()))
        where = str(loc[0]) if loc else "body"
        path = loc[1:] if loc and where in {"body", "query", "path", "header", "cookie"} else loc
        # Union members and model wrappers add noise like 'function-after[...]'.
        path = [p for p in path if not (isinstance(p, str) and ("[" in p or p.endswith("]")))]
        code = field_code(str(err.get("type", FALLBACK_CODE)))
        message = str(err.get("msg", "Invalid value"))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        entry = {"pointer": _json_pointer(path), "in": where, "code": code, "message": message}
        ctx = err.get("ctx")
        if isinstance(ctx, dict) and isinstance(ctx.get("reason"), str):
            entry["reason"] = ctx["reason"]
        result.append(entry)
    return result


def _top_level_code(errors: list[dict[str, Any]]) -> str:
    codes: set[str] = {str(e["code"]) for e in errors}
    if len(codes) == 1:
        (only,) = codes
        if lookup(only) is not None and only.startswith("invalid_"):
            return only
    return "validation_error"


async def _on_request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        return problem_response(
            "malformed_json",
            status=400,
            detail="The request body is not valid JSON.",
            instance=request_path(request),
        )
    errors = validation_errors(raw)
    code = _top_level_code(errors)
    noun = "field" if len(errors) == 1 else "fields"
    return problem_response(
        code,
        status=422,
        detail=f"{len(errors)} {noun} failed validation.",
        instance=request_path(request),
        errors=errors,
    )


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        return problem_response(
            "not_found",
            status=404,
            detail=f"No resource at {request_path(request)}.",
            instance=request_path(request),
            headers=headers,
        )
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return problem_response(
            "method_not_allowed",
            status=405,
            detail=f"{request.method} is not supported on {request_path(request)}.",
            instance=request_path(request),
            headers=headers,
        )
    code = {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        409: "conflict",
        413: "payload_too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
        431: "request_header_fields_too_large",
    }.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal_error")
    detail: str = exc.detail if isinstance(exc.detail, str) else code
    return problem_response(
        code, status=exc.status_code, detail=detail, instance=request_path(request), headers=headers
    )


def _allowed_methods(request: Request) -> str:
    """Every method any route serves at this path (Starlette names only the first route's)."""
    methods: list[str] = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            methods.append(method)
    return ", ".join(methods)


async def _on_api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return problem_response(
        exc.code,
        status=exc.status,
        detail=exc.detail,
        instance=request_path(request),
        headers=exc.headers,
        errors=exc.errors,
        extra=exc.extra,
    )


def domain_error_status(exc: DomainError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    entry = lookup(exc.code)
    if entry is not None:
        return entry.status
    return 422


async def _on_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Unavailable)
    return problem_response(
        exc.code,
        status=503,
        detail=exc.message,
        instance=request_path(request),
        headers={"Retry-After": str(exc.retry_after_seconds)},
    )


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    errors = None
    if isinstance(exc, InvalidInput):
        # errors[].code is from the documented list; the precise cause goes in `reason`,
        # as it does when the same rule fails during request validation.
        code = exc.code if exc.code in FIELD_CODES else FALLBACK_CODE
        errors = [
            {
                "pointer": None,
                "in": "body",
                "code": code,
                "message": exc.message,
                "reason": exc.reason,
            }
        ]
    # A refusal that ends by itself (a sign-in lockout) says when to try again.
    retry_after = getattr(exc, "retry_after_seconds", None)
    return problem_response(
        exc.code,
        status=domain_error_status(exc),
        detail=exc.message,
        instance=request_path(request),
        errors=errors,
        headers={"Retry-After": str(retry_after)} if retry_after else None,
    )


def internal_error_response(path: str | None) -> ProblemResponse:
    return problem_response(
        "internal_error",
        status=500,
        detail="An unexpected error occurred. It has been logged; quote request_id to support.",
        instance=path,
    )


def install_error_handlers(app: FastAPI, refusal_renderers: Sequence[tuple[str, Any]] = ()) -> None:
    """``refusal_renderers``: (path prefix, renderer) of surfaces with an error shape of
    their own (see ContractMiddleware); a 404 or 405 under such a prefix answers in it."""
    renderers = tuple(refusal_renderers)

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        for prefix, renderer in renderers:
            if request_path(request).startswith(prefix):
                answer: Response = renderer(
                    request.scope, exc.status_code, "http_error", str(exc.detail)
                )
                if exc.status_code == 405:
                    answer.headers["Allow"] = _allowed_methods(request)
                return answer
        return await _on_http_exception(request, exc)

    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(ApiProblem, _on_api_problem)
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(Unavailable, _on_unavailable)
