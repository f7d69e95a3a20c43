"""Contract middleware: request ids, header and body limits, content types, strict input
(amanat.platform.http.input_guard), and the last-resort 500.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so it can wrap the body stream to
enforce the size limit while it is read, and so an unexpected exception still becomes a
problem document carrying ``X-Request-Id``.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amanat.kernel.ids import MintedId
from amanat.platform.http.context import accept_or_generate_request_id, request_id_var
from amanat.platform.http.errors import internal_error_response, problem_response
from amanat.platform.http.input_guard import (
    CHECKED_JSON_BODY,
    InputRefused,
    capitalised,
    check_form_text,
    check_json_body,
    check_query_text,
    is_forbidden_in_path,
    json_pointer,
    path_has_forbidden,
)
from amanat.platform.observability.logging import log_request

log = structlog.get_logger("amanat.http")

# (scope, status, code, detail) -> the ASGI answer, for a surface with its own error shape.
RefusalRenderer = Callable[[Scope, int, str, str], ASGIApp]

_JSON_BODY_METHODS = {"POST", "PUT", "PATCH"}
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_OAUTH_PREFIX = "/oauth/"


class _BodyTooLarge(Exception):
    pass


class _RequestHeaders:
    """What the contract reads of a request's headers, in one pass over them: the first
    value of each header it needs, their count and their total size."""

    __slots__ = ("chunked", "content_length", "content_type", "count", "request_id", "size")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self.request_id: str | None = None
        self.content_length: str | None = None
        self.content_type: str | None = None
        self.chunked = False
        count = size = 0
        for key, value in raw:
            count += 1
            size += len(key) + len(value)
            if key == b"content-type":
                if self.content_type is None:
                    self.content_type = value.decode("latin-1")
            elif key == b"content-length":
                if self.content_length is None:
                    self.content_length = value.decode("latin-1")
            elif key == b"x-request-id":
                if self.request_id is None:
                    self.request_id = value.decode("latin-1")
            elif key == b"transfer-encoding":
                self.chunked = True
        self.count = count
        self.size = size


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _is_form_type(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def _path_refusal(scope: Scope, char: str) -> InputRefused:
    """Names the path parameter that holds the character, from the OpenAPI document's path
    templates (a refusal is rare, and FastAPI caches the document)."""
    openapi = getattr(scope.get("app"), "openapi", None)
    templates = openapi().get("paths", {}) if callable(openapi) else {}
    path = scope.get("path", "")
    for template in templates:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        match = re.fullmatch(pattern, path)
        if match is None:
            continue
        for name, value in match.groupdict().items():
            if is_forbidden_in_path(value):
                return InputRefused(
                    "forbidden_character",
                    json_pointer([name]),
                    "path",
                    f"{capitalised(char)} is not allowed in path parameters.",
                )
    return InputRefused(
        "forbidden_character",
        "",
        "path",
        f"{capitalised(char)} is not allowed in the path.",
    )


class ContractMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int = 16_384,
        max_header_count: int = 100,
        json_only_prefixes: Iterable[str] = ("/v1/",),
        refusal_renderers: Iterable[tuple[str, RefusalRenderer]] = (),
        upload_paths: Iterable[str] = (),
        max_upload_bytes: int = 0,
    ) -> None:
        self.app = app
        # Paths that take a whole file (a bank statement, a dispute's evidence) as the
        # body, and their own cap; a ``{name}`` segment of a path matches any one segment.
        paths = frozenset(upload_paths)
        self.upload_paths = frozenset(p for p in paths if "{" not in p)
        self.upload_templates = tuple(
            re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(p))) for p in paths if "{" in p
        )
        self.max_upload_bytes = max_upload_bytes
        self.refusal_renderers = tuple(refusal_renderers)
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count
        self.json_only_prefixes = tuple(json_only_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _RequestHeaders(scope.get("headers", ()))
        sent_id = headers.request_id
        request_id = accept_or_generate_request_id(sent_id)
        token = request_id_var.set(request_id)
        # An id minted here is logged as it is; one the client sent is masked like any text.
        structlog.contextvars.bind_contextvars(
            request_id=request_id if request_id == sent_id else MintedId(request_id)
        )
        started = time.perf_counter()
        status: int | None = None
        overflow = replaced = False
        path = scope.get("path", "")
        upload = self._is_upload(path)
        body_limit = self._limit(upload=upload)

        async def send_with_id(message: Message) -> None:
            nonlocal replaced
            if overflow:
                # FastAPI turns a failed body read into its own 400; answer 413 instead.
                if not replaced:
                    replaced = True
                    await self._too_large(scope)(scope, receive, send_with_id_raw)
                return
            await send_with_id_raw(message)

        async def send_with_id_raw(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                answer_headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                answer_headers.append((b"x-request-id", request_id.encode("latin-1")))
                limits = scope.get("state", {}).get("ratelimit_headers")
                if limits:
                    present = {k.lower() for k, _ in answer_headers}
                    for name, value in limits.items():
                        raw_name = name.lower().encode("latin-1")
                        if raw_name not in present:
                            answer_headers.append((raw_name, value.encode("latin-1")))
                message = {**message, "headers": answer_headers}
            await send(message)

        try:
            early = self._early_rejection(scope, headers, upload, body_limit)
            if early is not None:
                await early(scope, receive, send_with_id)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received, overflow
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > body_limit:
                        overflow = True
                        raise _BodyTooLarge
                return message

            inspected = await self._inspect_body(scope, headers, upload, limited_receive)
            if isinstance(inspected, Exception):
                await self._body_refusal(scope, inspected)(scope, receive, send_with_id)
                return
            await self.app(scope, inspected or limited_receive, send_with_id)
        except _BodyTooLarge:
            if status is None and not replaced:
                replaced = True
                await self._too_large(scope)(scope, receive, send_with_id_raw)
        except Exception:
            log.exception("unhandled_exception", method=scope.get("method"), path=path)
            if status is None:
                renderer = self._renderer(path)
                answer = (
                    renderer(
                        scope,
                        500,
                        "internal_error",
                        "An unexpected error occurred; quote the request id to support.",
                    )
                    if renderer is not None
                    else internal_error_response(path)
                )
                await answer(scope, receive, send_with_id)
            else:
                raise
        finally:
            try:
                log_request(
                    scope.get("method"),
                    path,
                    status,
                    round((time.perf_counter() - started) * 1000, 2),
                )
            finally:
                structlog.contextvars.unbind_contextvars("request_id")
                request_id_var.reset(token)

    def _renderer(self, path: str) -> RefusalRenderer | None:
        for prefix, renderer in self.refusal_renderers:
            if path.startswith(prefix):
                return renderer
        return None

    def _answer(
        self,
        scope: Scope,
        code: str,
        status: int,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
    ) -> Any:
        path = scope.get("path", "")
        renderer = self._renderer(path)
        if renderer is not None:
            # The renderer's shape has room for one message: the most precise one.
            message = str(errors[0].get("message") or detail) if errors else detail
            return renderer(scope, status, code, message)
        return problem_response(code, status=status, detail=detail, instance=path, errors=errors)

    def _is_upload(self, path: str) -> bool:
        return path in self.upload_paths or any(t.fullmatch(path) for t in self.upload_templates)

    def _body_limit(self, path: str) -> int:
        return self._limit(upload=self._is_upload(path))

    def _limit(self, *, upload: bool) -> int:
        return max(self.max_upload_bytes, self.max_body_bytes) if upload else self.max_body_bytes

    def _too_large(self, scope: Scope) -> Any:
        return self._answer(
            scope,
            "payload_too_large",
            413,
            f"The body exceeds the limit of {self._body_limit(scope.get('path', ''))} bytes.",
        )

    def _early_rejection(
        self, scope: Scope, headers: _RequestHeaders, upload: bool, body_limit: int
    ) -> Any:
        path = scope.get("path", "")
        if headers.count > self.max_header_count or headers.size > self.max_header_bytes:
            return self._answer(
                scope,
                "request_header_fields_too_large",
                431,
                f"At most {self.max_header_count} headers of "
                f"{self.max_header_bytes} bytes in total are accepted.",
            )
        char = path_has_forbidden(path)
        if char is not None:
            return self._validation_refusal(scope, _path_refusal(scope, char))
        query = scope.get("query_string", b"")
        if query:
            try:
                check_query_text(query)
            except InputRefused as refusal:
                return self._validation_refusal(scope, refusal)
        length = headers.content_length
        if length is not None and length.isdigit() and int(length) > body_limit:
            return self._too_large(scope)
        method = scope.get("method", "GET")
        if (
            method in _JSON_BODY_METHODS
            and path.startswith(self.json_only_prefixes)
            and not upload  # a file, sent as it is
        ):
            has_body = (length is not None and length != "0") or headers.chunked
            content_type = headers.content_type
            if has_body and (content_type is None or not _is_json_type(content_type)):
                return self._answer(
                    scope,
                    "unsupported_media_type",
                    415,
                    "Send the body as JSON with Content-Type: application/json.",
                )
        return None

    def _validation_refusal(self, scope: Scope, refusal: InputRefused) -> Any:
        return self._answer(
            scope, "validation_error", 422, "1 field failed validation.", [refusal.as_error()]
        )

    def _body_refusal(self, scope: Scope, refusal: Exception) -> Any:
        assert isinstance(refusal, InputRefused)
        if refusal.code == "forbidden_character" and refusal.form:
            # Form bodies come from console pages; answer as a form reader would.
            return self._answer(
                scope, "invalid_request", 400, refusal.message, [refusal.as_error()]
            )
        if refusal.code == "forbidden_character":
            return self._validation_refusal(scope, refusal)
        return self._answer(
            scope,
            "malformed_json",
            400,
            "The request body could not be read unambiguously.",
            [refusal.as_error()],
        )

    async def _inspect_body(
        self, scope: Scope, headers: _RequestHeaders, upload: bool, receive: Receive
    ) -> Receive | Exception | None:
        """Reads a JSON or form body whole (it is capped at max_body_bytes) and checks it;
        answers a receive that replays it, the refusal, or None when there is nothing to
        check. The route parses the same bytes again with FastAPI's reader; what the two
        readers could read differently (encodings, duplicate keys) is refused here."""
        if scope.get("method") not in _BODY_METHODS:
            return None
        if upload:
            # A file, read by its route only once the caller is known to be allowed:
            # reading (and scanning) up to the upload limit here, before authentication,
            # would let anyone make the server hold and parse tens of megabytes.
            return None
        content_type = headers.content_type
        is_form = content_type is not None and _is_form_type(content_type)
        if content_type is not None and not is_form and not _is_json_type(content_type):
            return None
        if is_form and scope.get("path", "").startswith(_OAUTH_PREFIX):
            # OAuth reads its own forms strictly and answers in RFC 6749's terms.
            return None
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None if not chunks else _replay(b"".join(chunks), message, receive)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                if is_form:
                    check_form_text(body)
                else:
                    # A syntax error (or absurd nesting) is left to the route, which
                    # answers malformed_json as it always has.
                    with contextlib.suppress(ValueError, RecursionError):
                        scope[CHECKED_JSON_BODY] = (body, check_json_body(body))
            except InputRefused as refusal:
                return refusal
        return _replay(body, None, receive)


def _replay(body: bytes, pending: Message | None, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then defers to the server."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if pending is not None:
            return pending
        return await receive()

    return replay
