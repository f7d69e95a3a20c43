"""Contract middleware: request ids, body limits, content types, and the last-resort 500.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so it can wrap the body stream to
enforce the size limit while it is read, and so an unexpected exception still becomes a
problem document carrying ``X-Request-Id``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amanat.api.context import accept_or_generate_request_id, request_id_var
from amanat.api.errors import internal_error_response, problem_response

log = structlog.get_logger("amanat.http")

_JSON_BODY_METHODS = {"POST", "PUT", "PATCH"}


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


class ContractMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, json_only_prefixes: Iterable[str] = ("/v1/",)
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.json_only_prefixes = tuple(json_only_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_or_generate_request_id(_header(scope, b"x-request-id"))
        token = request_id_var.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": None, "overflow": False, "replaced": False}
        path = scope.get("path", "")

        async def send_with_id(message: Message) -> None:
            if status_holder["overflow"]:
                # FastAPI turns a failed body read into its own 400; answer 413 instead.
                if not status_holder["replaced"]:
                    status_holder["replaced"] = True
                    await self._too_large(path)(scope, receive, send_with_id_raw)
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
                    if received > self.max_body_bytes:
                        status_holder["overflow"] = True
                        raise _BodyTooLarge
                return message

            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            if status_holder["status"] is None and not status_holder["replaced"]:
                status_holder["replaced"] = True
                await self._too_large(path)(scope, receive, send_with_id_raw)
        except Exception:
            log.exception("unhandled_exception", method=scope.get("method"), path=path)
            if status_holder["status"] is None:
                await internal_error_response(path)(scope, receive, send_with_id)
            else:
                raise
        finally:
            log.info(
                "http_request",
                method=scope.get("method"),
                path=path,
                status=status_holder["status"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")
            request_id_var.reset(token)

    def _too_large(self, path: str) -> Any:
        return problem_response(
            "payload_too_large",
            status=413,
            detail=f"The body exceeds the limit of {self.max_body_bytes} bytes.",
            instance=path,
        )

    def _early_rejection(self, scope: Scope) -> Any:
        path = scope.get("path", "")
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large(path)
        method = scope.get("method", "GET")
        if method in _JSON_BODY_METHODS and path.startswith(self.json_only_prefixes):
            has_body = (length is not None and length != "0") or (
                _header(scope, b"transfer-encoding") is not None
            )
            content_type = _header(scope, b"content-type")
            if has_body and (content_type is None or not _is_json_type(content_type)):
                return problem_response(
                    "unsupported_media_type",
                    status=415,
                    detail="Send the body as JSON with Content-Type: application/json.",
                    instance=path,
                )
        return None
