"""The catalogue of problem codes: one entry per stable ``code`` a client may see.

Each code has a page at ``/problems/<code>`` (the problem document's ``type``), so a
developer who meets an error can read what it means and what to do about it. The same
pages explain the ``rail_*`` codes a payment's ``failure.code`` can carry: those are not
HTTP errors but outcomes reported by the rail, so their entries have ``status`` 0 and
their example is a payment, not a problem document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RAIL_FAILURE = 0
"""The ``status`` of an entry that is a payment's failure code, not an HTTP problem."""


@dataclass(frozen=True, slots=True)
class ProblemType:
    code: str
    status: int
    title: str
    description: str
    remedy: str
    example: dict[str, Any] | None = None
    """What a client receives; ``None`` derives a problem document from the entry."""

    @property
    def is_rail_failure(self) -> bool:
        return self.status == RAIL_FAILURE

    def example_document(self, base_url: str = "https://api.amanat.example") -> dict[str, Any]:
        """An example of what a client receives with this code (shown on its page)."""
        if self.example is not None:
            return self.example
        return {
            "type": f"{base_url}/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.title + ".",
            "instance": "/v1/payments",
            "code": self.code,
            "request_id": "req_01JDX3M9Q5W8C2V7T4K6B0N1ZP",
        }


_ENTRIES = [
    ProblemType(
        "validation_error",
        422,
        "The request is not valid",
        "One or more fields failed validation. `errors` lists each with a JSON "
        "pointer to the field, a code and a message.",
        "Fix each listed field and send the request again; nothing was changed.",
    ),
    ProblemType(
        "malformed_json",
        400,
        "The body is not valid JSON",
        "The request body could not be parsed as JSON.",
        "Send a UTF-8 JSON document with `Content-Type: application/json`.",
    ),
    ProblemType(
        "unsupported_media_type",
        415,
        "Unsupported content type",
        "This endpoint accepts `application/json` bodies only.",
        "Set `Content-Type: application/json`.",
    ),
    ProblemType(
        "payload_too_large",
        413,
        "The body is too large",
        "The request body exceeds the configured maximum size.",
        "Send a smaller body; large files go through the dedicated upload endpoints.",
    ),
    ProblemType(
        "not_found",
        404,
        "Not found",
        "No resource exists at this URL, or it is not visible to your credentials.",
        "Check the path and the id; ids carry a prefix naming their type.",
    ),
    ProblemType(
        "method_not_allowed",
        405,
        "Method not allowed",
        "The resource exists but does not support this HTTP method.",
        "See the `Allow` response header for the methods it supports.",
    ),
    ProblemType(
        "unauthorized",
        401,
        "Authentication required",
        "The request carries no valid access token, or the token has expired or been revoked.",
        "Obtain a fresh token from `POST /oauth/token` and send it as "
        "`Authorization: Bearer <token>`.",
    ),
    ProblemType(
        "insufficient_scope",
        403,
        "Insufficient scope",
        "The access token is valid but lacks the scope this endpoint requires.",
        "Request a token with the scope named in `WWW-Authenticate`; your partner's "
        "roles must allow it.",
    ),
    ProblemType(
        "forbidden",
        403,
        "Forbidden",
        "Your credentials may not perform this action.",
        "Ask an administrator for the role this action needs.",
    ),
    ProblemType(
        "rate_limited",
        429,
        "Too many requests",
        "You have sent more requests than your rate-limit policy allows.",
        "Wait for the number of seconds in `Retry-After`, then retry.",
    ),
    ProblemType(
        "idempotency_key_missing",
        400,
        "Idempotency-Key header required",
        "Every POST under /v1 must carry an `Idempotency-Key` header.",
        "Send a unique key (for example a UUID) per logical operation.",
    ),
    ProblemType(
        "idempotency_key_reused",
        422,
        "Idempotency key reused",
        "This key was already used for a different request.",
        "Use a new key for a new operation.",
    ),
    ProblemType(
        "idempotency_key_in_use",
        409,
        "Idempotency key in use",
        "A request with this key is still being processed.",
        "Retry after the number of seconds in `Retry-After`.",
    ),
    ProblemType(
        "invalid_iban",
        422,
        "Invalid IBAN",
        "The IBAN is not a valid Pakistani IBAN: `PK`, two check digits, a four-letter "
        "bank code and sixteen digits, with a valid mod-97 checksum.",
        "Check the IBAN with the account holder; `errors[].code` says what is wrong.",
    ),
    ProblemType(
        "invalid_raast_id",
        422,
        "Invalid Raast ID",
        "A Raast ID is a Pakistani mobile number, `+923XXXXXXXXX`.",
        "Send the mobile number in international or local (`03XX...`) form.",
    ),
    ProblemType(
        "invalid_cnic",
        422,
        "Invalid CNIC",
        "A CNIC has 13 digits, written `XXXXX-XXXXXXX-X`.",
        "Check the CNIC.",
    ),
    ProblemType(
        "invalid_amount",
        422,
        "Invalid amount",
        "Amounts are positive integers in minor units (paisa for PKR).",
        "Send `amount` as an integer, e.g. 150000 for PKR 1,500.00.",
    ),
    ProblemType(
        "invalid_currency",
        422,
        "Invalid currency",
        "The currency is not a supported ISO 4217 code.",
        "Use `PKR`.",
    ),
    ProblemType(
        "invalid_cursor",
        400,
        "Invalid cursor",
        "The pagination cursor is not one this API issued, or it has been altered.",
        "Pass `next_cursor` from the previous page unchanged.",
    ),
    ProblemType(
        "conflict",
        409,
        "Conflict",
        "The request conflicts with the current state of the resource.",
        "Fetch the resource, then decide whether to retry.",
    ),
    ProblemType(
        "service_unavailable",
        503,
        "Service unavailable",
        "A dependency this request needs is not available right now.",
        "Retry with backoff.",
    ),
    ProblemType(
        "internal_error",
        500,
        "Internal error",
        "Something failed on our side. The error has been logged with the request id.",
        "Retry with the same Idempotency-Key; quote `request_id` to support.",
    ),
]

_ENTRIES += []
_ENTRIES += []

_ENTRIES += [
    ProblemType(
        "bad_request",
        400,
        "Bad request",
        "The request could not be read (for example a body that is neither JSON nor a form "
        "where one is expected).",
        "Check the method, headers and body against the endpoint's description in /docs.",
    ),
    ProblemType(
        "request_header_fields_too_large",
        431,
        "Request headers too large",
        "The request's headers are too many or too large in total "
        "(`AMANAT_HTTP__MAX_HEADER_COUNT`, `AMANAT_HTTP__MAX_HEADER_BYTES`).",
        "Send fewer or smaller headers; large data belongs in the body.",
    ),
    ProblemType(
        "invalid_request",
        400,
        "Invalid request",
        "A parameter is missing, repeated or malformed (for example a PKCE code challenge "
        "that is not S256).",
        "Fix the parameter the detail names and send the request again.",
    ),
    ProblemType(
        "currency_mismatch",
        422,
        "Currencies differ",
        "The operation combines amounts in different currencies.",
        "Use the currency of the payment or balance it applies to (`PKR`).",
    ),
]


CATALOGUE: dict[str, ProblemType] = {entry.code: entry for entry in _ENTRIES}


def register(entry: ProblemType) -> None:
    """Each capability's codes arrive here when the composition root collects them
    (``registry.add_problems`` in its wiring)."""
    CATALOGUE[entry.code] = entry


def lookup(code: str) -> ProblemType | None:
    return CATALOGUE.get(code)
