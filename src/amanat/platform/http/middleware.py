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
    InputRefused,
    capitalised,
    check_form_text,
    check_json_body,
    check_query_text,
    is_forbidden_in_path,
    json_pointer,
    path_has_forbidden,
)
from amanat.platform.observability.logging import BoundOnce

log = structlog.get_logger("amanat.http")
request_log = BoundOnce("amanat.http")

# (scope, status, code, detail) -> the ASGI answer, for a surface with its own error shape.
RefusalRenderer = Callable[[Scope, int, str, str], ASGIApp]

_JSON_BODY_METHODS = {"POST", "PUT", "PATCH"}
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_OAUTH_PREFIX = "/oauth/"


class _BodyTooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


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
        sent_id = _header(scope, b"x-request-id")
        request_id = accept_or_generate_request_id(sent_id)
        token = request_id_var.set(request_id)
        # An id minted here is logged as it is; one the client sent is masked like any text.
        structlog.contextvars.bind_contextvars(
            request_id=request_id if request_id == sent_id else MintedId(request_id)
        )
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": None, "overflow": False, "replaced": False}
        path = scope.get("path", "")

        async def send_with_id(message: Message) -> None:
            if status_holder["overflow"]:
                # FastAPI turns a failed body read into its own 400; answer 413 instead.
                if not status_holder["replaced"]:
                    status_holder["replaced"] = True
                    await self._too_large(scope)(scope, receive, send_with_id_raw)
                return
            await send_with_id_raw(message)

        async def send_with_id_raw(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                present = {k.lower() for k, _ in headers}
                for name, value in scope.get("state", {}).get("ratelimit_headers", {}).items():
                    raw_name = name.lower().encode("latin-1")
                    if raw_name not in present:
                        headers.append((raw_name, value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            early = self._early_rejection(scope)
            if early is not None:
                await early(scope, receive, send_with_id)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self._body_limit(path):
                        status_holder["overflow"] = True
                        raise _BodyTooLarge
                return message

            inspected = await self._inspect_body(scope, limited_receive)
            if isinstance(inspected, Exception):
                await self._body_refusal(scope, inspected)(scope, receive, send_with_id)
                return
            await self.app(scope, inspected or limited_receive, send_with_id)
        except _BodyTooLarge:
            if status_holder["status"] is None and not status_holder["replaced"]:
                status_holder["replaced"] = True
                await self._too_large(scope)(scope, receive, send_with_id_raw)
        except Exception:
            log.exception("unhandled_exception", method=scope.get("method"), path=path)
            if status_holder["status"] is None:
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
            request_log.get().info(
                "http_request",
                method=scope.get("method"),
                path=path,
                status=status_holder["status"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
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
        if self._is_upload(path):
            return max(self.max_upload_bytes, self.max_body_bytes)
        return self.max_body_bytes

    def _too_large(self, scope: Scope) -> Any:
        return self._answer(
            scope,
            "payload_too_large",
            413,
            f"The body exceeds the limit of {self._body_limit(scope.get('path', ''))} bytes.",
        )

    def _early_rejection(self, scope: Scope) -> Any:
        path = scope.get("path", "")
        headers = scope.get("headers", ())
        header_bytes = sum(len(k) + len(v) for k, v in headers)
        if len(headers) > self.max_header_count or header_bytes > self.max_header_bytes:
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
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self._body_limit(path):
            return self._too_large(scope)
        method = scope.get("method", "GET")
        if (
            method in _JSON_BODY_METHODS
            and path.startswith(self.json_only_prefixes)
            and not self._is_upload(path)  # a file, sent as it is
        ):
            has_body = (length is not None and length != "0") or (
                _header(scope, b"transfer-encoding") is not None
            )
            content_type = _header(scope, b"content-type")
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

    async def _inspect_body(self, scope: Scope, receive: Receive) -> Receive | Exception | None:
        """Reads a JSON or form body whole (it is capped at max_body_bytes) and checks it;
        answers a receive that replays it, the refusal, or None when there is nothing to
        check. The route parses the same bytes again with FastAPI's reader; what the two
        readers could read differently (encodings, duplicate keys) is refused here."""
        if scope.get("method") not in _BODY_METHODS:
            return None
        if self._is_upload(scope.get("path", "")):
            # A file, read by its route only once the caller is known to be allowed:
            # reading (and scanning) up to the upload limit here, before authentication,
            # would let anyone make the server hold and parse tens of megabytes.
            return None
        content_type = _header(scope, b"content-type")
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
                        check_json_body(body)
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
