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
        "insufficient_funds",
        422,
        "Insufficient funds",
        "The available balance does not cover this operation.",
        "Top up the balance or reduce the amount.",
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

_ENTRIES += [
    ProblemType(
        "login_failed",
        401,
        "Login failed",
        "The email, password or one-time code is wrong.",
        "Check all three; after five failures from one address, that address is locked out "
        "of the account for 15 minutes.",
    ),
    ProblemType(
        "account_locked",
        423,
        "Account locked",
        "Five failed sign-ins from this source IP at this email: this address is locked out "
        "of it for 15 minutes. Sign-in from other addresses is not affected.",
        "Wait the seconds given in Retry-After, or sign in from your usual address.",
    ),
    ProblemType(
        "weak_password",
        422,
        "Password too weak",
        "Operator passwords need at least 12 characters.",
        "Choose a longer one.",
    ),
    ProblemType(
        "invalid_role",
        422,
        "Invalid role",
        "A role is not one amanat knows.",
        "Use one of the documented roles.",
    ),
    ProblemType(
        "invalid_scope",
        422,
        "Invalid scope",
        "A scope is unknown or not allowed for the partner's roles.",
        "Request only scopes listed in the metadata and allowed for your roles.",
    ),
    ProblemType(
        "invalid_redirect_uri",
        422,
        "Invalid redirect URI",
        "Redirect URIs must be absolute https URLs without fragments "
        "(http only for loopback in the sandbox).",
        "Fix the URI.",
    ),
    ProblemType(
        "invalid_client_metadata",
        422,
        "Invalid client metadata",
        "The client registration is inconsistent (for example private_key_jwt without keys).",
        "Fix the named field.",
    ),
    ProblemType(
        "csrf_failed",
        403,
        "CSRF check failed",
        "The request lacks the anti-forgery token of your session.",
        "Reload the console page and try again.",
    ),
    ProblemType(
        "psu_authentication_not_configured",
        501,
        "PSU authentication not configured",
        "In production the customer must log in at the bank; amanat's sandbox page is disabled.",
        "Integrate the bank's login in front of /oauth/authorize.",
    ),
]
_ENTRIES += [
    ProblemType(
        "limit_exceeded",
        422,
        "Limit exceeded",
        "The amount is above your per-transaction limit.",
        "Split the payment or ask your bank to raise the limit.",
    ),
    ProblemType(
        "refund_exceeds_remaining",
        409,
        "Refund exceeds what remains",
        "Refunds of a collection can never add up to more than it collected.",
        "Refund at most the collection's amount minus its refunded_amount.",
    ),
    ProblemType(
        "refund_not_supported",
        409,
        "This payment cannot be refunded",
        "Refunds apply to succeeded collections only: the payment is a payout or a "
        "refund, or a collection whose money has not arrived (the detail says its status).",
        "Refund a collection once it has succeeded; to send money back after a payout, "
        "make a new payout.",
    ),
    ProblemType(
        "payment_not_cancelable",
        409,
        "This payment can no longer be canceled",
        "Only a payment not yet handed to the rail can be canceled. This one was already "
        "sent (it may still show `pending` until the rail answers) or has moved on; the "
        "detail says which.",
        "Wait for the payment's outcome event; if it succeeds and you need the money back, "
        "refund the collection or make a new payout.",
    ),
    ProblemType(
        "illegal_transition",
        409,
        "Not possible in this state",
        "The payment's current state does not allow this action.",
        "Fetch the payment to see its status.",
    ),
    ProblemType(
        "invalid_webhook_url",
        422,
        "Webhook URL refused",
        "The endpoint URL breaks a rule: absolute http(s), no credentials, and in "
        "production https to a public address (no loopback, private, link-local or cloud "
        "metadata address, checked again after every DNS lookup).",
        "Use a public https URL; in the sandbox any http(s) URL, localhost included, works.",
    ),
]

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
    ProblemType(
        "unbalanced",
        500,
        "Ledger journal does not balance",
        "An internal ledger journal did not sum to zero, so it was refused and nothing was "
        "written. This is a defect, never a result of your input.",
        "Retry with the same Idempotency-Key; quote `request_id` to support.",
    ),
]

for _error, _text in [
    ("invalid_request", "The request is missing a parameter, repeats one, or is malformed."),
    ("invalid_client", "Client authentication failed."),
    (
        "invalid_grant",
        "The code, refresh token or credentials are invalid, expired, revoked "
        "or were issued to another client.",
    ),
    ("unauthorized_client", "This client may not use this grant type."),
    ("unsupported_grant_type", "The grant type is not supported."),
    ("invalid_scope", "The requested scope is unknown or exceeds what the client may have."),
]:
    _ENTRIES.append(
        ProblemType(
            f"oauth_{_error}",
            401 if _error == "invalid_client" else 400,
            f"OAuth error: {_error}",
            _text,
            "See RFC 6749 §5.2; fix the request and retry.",
            example={
                "error": _error,
                "error_description": _text,
                "type": f"https://api.amanat.example/problems/oauth_{_error}",
                "title": _error.replace("_", " "),
                "status": 401 if _error == "invalid_client" else 400,
                "detail": _text,
                "instance": "/oauth/token",
                "code": _error,
                "request_id": "req_01JDX3M9Q5W8C2V7T4K6B0N1ZP",
            },
        )
    )


def _failed_payment(code: str, message: str, *, type_: str = "payout") -> dict[str, Any]:
    """The part of a failed payment that carries a rail failure code."""
    return {
        "id": "pay_01JDX3M9Q5W8C2V7T4K6B0N1ZP",
        "object": "payment",
        "type": type_,
        "status": "failed",
        "amount": 100_001,
        "currency": "PKR",
        "failure": {"code": code, "message": message},
    }


_RETRY_NEW = (
    "Do not resend the same request: the payment is final and its Idempotency-Key replays "
    "the failure. "
)
for _code, _title, _cause, _remedy, _kind in [
    (
        "rail_ac01",
        "Account number invalid (AC01)",
        "The beneficiary's bank says the account number is invalid or does not exist "
        "(ISO 20022 reason `AC01`). In the sandbox, amounts ending in `01` produce it.",
        _RETRY_NEW + "Do not retry with the same details. Tell the customer: *the account "
        "details are wrong; please check the IBAN or Raast ID with the account holder*, then "
        "create a new payment with the corrected details.",
        "payout",
    ),
    (
        "rail_ac06",
        "Account blocked (AC06)",
        "The beneficiary's bank says the account is blocked (ISO 20022 reason `AC06`). In "
        "the sandbox, amounts ending in `02` produce it.",
        _RETRY_NEW + "Do not retry to this account. Tell the customer: *your bank has "
        "blocked this account; please contact your bank or give another account*.",
        "payout",
    ),
    (
        "rail_ab08",
        "Beneficiary bank offline (AB08)",
        "The beneficiary's bank was offline and could not take the payment (ISO 20022 "
        "reason `AB08`). In the sandbox, amounts ending in `03` produce it.",
        _RETRY_NEW + "This is temporary: create a new payment later (for example after 15 "
        "minutes, with backoff). Tell the customer: *your bank is not reachable right now; "
        "we will try again*.",
        "payout",
    ),
    (
        "rail_am02",
        "Amount over the bank's limit (AM02)",
        "The beneficiary's bank refused the amount as above its limit (ISO 20022 reason "
        "`AM02`). In the sandbox, amounts ending in `04` produce it.",
        _RETRY_NEW + "Do not retry the same amount. Split it into smaller payments, or tell "
        "the customer: *the amount is above what your bank accepts in one payment*.",
        "payout",
    ),
    (
        "rail_noas",
        "No answer from the payer (NOAS)",
        "The rail failed the collection (request to pay) because nobody answered it in time "
        "(ISO 20022 reason `NOAS`): the payer never approved nor declined it. (A collection "
        "that simply reaches its `expires_at` ends `expired`, not `failed`: in the sandbox, "
        "amounts ending in `22`.)",
        "Safe to ask again: create a new collection (new Idempotency-Key) if the payer still "
        "means to pay. Tell the customer: *the payment request was not answered in time; we "
        "can send a new one*.",
        "collection",
    ),
    (
        "rail_cust",
        "Declined by the payer (CUST)",
        "The payer declined the collection (request to pay) in their banking app (ISO "
        "20022 reason `CUST`). In the sandbox, collection amounts ending in `21` produce it.",
        "Retrying would only ask again: create a new collection only if the payer agrees. "
        "Tell the customer: *you declined the payment request; we can send a new one*.",
        "collection",
    ),
    (
        "rail_declined",
        "Declined by the payer",
        "The payer declined the collection, and the rail gave no more specific reason code.",
        "As for `rail_cust`: create a new collection only if the payer agrees to pay.",
        "collection",
    ),
    (
        "rail_rejected",
        "Rejected by the rail",
        "The rail rejected the payment without a reason code amanat knows; the message "
        "names the rail's own code when it gave one.",
        _RETRY_NEW + "Check the beneficiary's details and the amount; create a new payment "
        "once they are confirmed. Quote the payment id to support if it happens again.",
        "payout",
    ),
    (
        "rail_unavailable",
        "Rail unavailable",
        "amanat retried the submission with backoff, but the rail stayed unavailable and "
        "never received the payment, so no money moved.",
        "Safe to retry: create a new payment (with a new Idempotency-Key) once the rail is "
        "back. Tell the customer: *the payment network is unavailable; we will try again*.",
        "payout",
    ),
    (
        "rail_invalid_request",
        "Refused by the rail as invalid",
        "The rail refused the submission as malformed (for example an account it could not "
        "parse). No money moved.",
        _RETRY_NEW + "Check the account details; quote the payment id to support if they "
        "are right.",
        "payout",
    ),
    (
        "rail_unknown_transfer",
        "Lost by the rail",
        "The rail had accepted the payment and later answered that it did not know it; "
        "amanat sent it again with the same end-to-end id three times and the rail still "
        "did not know it. The hold was released: no money left the balance.",
        "Safe to retry: create a new payment (new Idempotency-Key). Quote the payment id to "
        "support, who can ask the rail operator what happened to the original.",
        "payout",
    ),
    (
        "rail_duplicate_end_to_end_id",
        "Duplicate end-to-end id at the rail",
        "The rail already had a different payment with this payment's end-to-end id. No "
        "money moved for this payment.",
        "Create a new payment (it gets a new end-to-end id); quote both payment ids to support.",
        "payout",
    ),
]:
    _ENTRIES.append(
        ProblemType(
            _code,
            RAIL_FAILURE,
            _title,
            _cause + " The payment's `status` is `failed` and `failure.code` is this code.",
            _remedy,
            example=_failed_payment(_code, _title + ".", type_=_kind),
        )
    )

CATALOGUE: dict[str, ProblemType] = {entry.code: entry for entry in _ENTRIES}


def register(entry: ProblemType) -> None:
    """Later capabilities add their codes here at import time."""
    CATALOGUE[entry.code] = entry


def lookup(code: str) -> ProblemType | None:
    return CATALOGUE.get(code)
