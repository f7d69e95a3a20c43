"""OpenAPI post-processing: every operation documents its problem responses.

FastAPI documents only the happy path and its own 422 shape; our error handlers answer
every failure as problem+json, so the published contract says so (schemathesis holds the
implementation to it).

The ``Idempotency-Key`` header is declared optional in the route signatures so that a
request without it reaches :mod:`amanat.platform.idempotency.protocol` and gets the documented
``idempotency_key_missing`` problem rather than a generic validation error; the published
contract marks it required on every POST under ``/v1``, which is what the server enforces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import JsonValue

IDEMPOTENCY_HEADER = "Idempotency-Key"


def declared_enum(values: Iterable[str], *, key: str = "enum") -> dict[str, JsonValue]:
    """``json_schema_extra`` publishing ``values`` as the field's ``enum`` (or ``examples``
    with ``key``) where the model keeps a plain ``str`` (the set is defined in one
    catalogue elsewhere, and the endpoint answers its own problem for an unknown value)."""
    return {key: list(values)}


def late_enum(*sources: Iterable[str]) -> Callable[[dict[str, JsonValue]], None]:
    """As :func:`declared_enum`, read when the schema is generated rather than when the
    model is defined: for a catalogue the capabilities fill in at start-up."""

    def publish(schema: dict[str, JsonValue]) -> None:
        schema["enum"] = [value for source in sources for value in source]

    return publish


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": ["string", "null"]},
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "code", "message"],
                "properties": {
                    "pointer": {"type": ["string", "null"]},
                    "in": {"type": "string"},
                    "code": {"type": "string"},
                    "reason": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

_COMMON = {
    "400": "Malformed request (bad JSON, bad cursor, missing Idempotency-Key).",
    "404": "Not found.",
    "413": "Body too large.",
    "415": "Body is not JSON.",
    "422": "Validation failed; `errors` points at each bad field.",
    "429": "Rate limited; see `Retry-After`.",
    "500": "Unexpected error; quote `request_id` to support.",
}
_WITH_AUTH = {
    "401": "Missing, expired or revoked access token.",
    "403": "The token lacks the required scope (`insufficient_scope`), or the operator's "
    "roles lack the permission.",
    "409": "Conflicts with the resource's current state.",
}


def _require_idempotency_key(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header" and parameter.get("name") == IDEMPOTENCY_HEADER:
            parameter["required"] = True
            parameter["example"] = "3f0e8c52-6a1d-4e0b-9d7a-1b2c3d4e5f60"
            schema = parameter.get("schema", {})
            # Optional in the signature (see the module docstring); never null on the wire.
            options = [s for s in schema.pop("anyOf", []) if s.get("type") != "null"]
            if options:
                schema.update(options[0])
            schema["minLength"] = 1
            schema.pop("default", None)
            return
    raise AssertionError(f"POST {operation.get('operationId')} lacks {IDEMPOTENCY_HEADER}")


def install_openapi(app: FastAPI, *, version: str) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title="amanat API",
            version=version,
            summary="Payments and open-banking APIs for Pakistan.",
            description=(
                "Partner API under `/v1`: payouts and Raast collections, refunds, balance, "
                "customers. OAuth2 server under `/oauth`, operator API under `/operator/v1`. "
                "Every error is an RFC 9457 problem document; see `/problems`. The "
                "open-banking surface (`/open-banking/v3.1`, OBIE v3.1.11 shapes) is not "
                "published yet."
            ),
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = PROBLEM_SCHEMA
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, path_item in schema.get("paths", {}).items():
            for method, operation in path_item.items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                if method == "post" and path.startswith("/v1/"):
                    _require_idempotency_key(operation)
                responses = operation["responses"]
                wanted = dict(_COMMON)
                if operation.get("security"):
                    wanted.update(_WITH_AUTH)
                for status, text in wanted.items():
                    existing = responses.get(status)
                    if existing is None or "HTTPValidationError" in str(existing):
                        responses[status] = {"description": text, "content": ref}
                    elif "content" not in existing:
                        existing["content"] = ref
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
