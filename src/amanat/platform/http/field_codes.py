"""The documented list of ``errors[].code`` values, and the one mapping from pydantic's
error types onto it.

A partner branches on these codes, so the API never answers one that is not in this list
(docs/api-contract.md prints it): every pydantic error type maps to a listed code, and
anything new or unexpected falls back to ``invalid_value``.
"""

from __future__ import annotations

FIELD_CODES: dict[str, str] = {
    "required": "A required field or parameter is missing.",
    "unknown_field": "The body has a field this endpoint does not know.",
    "invalid_type": "The value has the wrong JSON type (a string, decimal or boolean "
    "where an integer is expected, ...).",
    "too_short": "The string or list is shorter than allowed.",
    "too_long": "The string, list or object is longer than allowed.",
    "out_of_range": "The number is outside the allowed range.",
    "bad_format": "The string does not have the required format (pattern, URL, time).",
    "not_allowed": "The value is not one of the allowed choices.",
    "invalid_value": "The value breaks a rule the message states (for example: give "
    "exactly one of iban or raast_id).",
    "forbidden_character": "A string holds a NUL or other control character (C0, DEL or "
    "C1; only tab, line feed and carriage return are allowed in body text), a bidirectional "
    "override or isolate (U+202A-U+202E, U+2066-U+2069), a line or paragraph separator "
    "(U+2028, U+2029), U+FEFF, or an unpaired surrogate.",
    "duplicate_key": "A JSON object names the same key twice (with `malformed_json`).",
    "not_utf8": "The body is not UTF-8 without a byte-order mark (with `malformed_json`).",
    "invalid_iban": "Not a valid Pakistani IBAN; `reason` says what is wrong.",
    "invalid_raast_id": "Not a valid Raast ID (mobile number); `reason` says why.",
    "invalid_cnic": "Not a valid CNIC; `reason` says why.",
    "unknown_event_type": "Not an event type (docs/webhooks.md lists them).",
}

FALLBACK_CODE = "invalid_value"

_BY_PYDANTIC_TYPE: dict[str, str] = {
    **dict.fromkeys(
        (
            "missing",
            "missing_argument",
            "missing_keyword_only_argument",
            "missing_positional_only_argument",
        ),
        "required",
    ),
    **dict.fromkeys(
        (
            "extra_forbidden",
            "unexpected_keyword_argument",
            "unexpected_positional_argument",
            "no_such_attribute",
        ),
        "unknown_field",
    ),
    **dict.fromkeys(("too_short", "string_too_short", "bytes_too_short"), "too_short"),
    **dict.fromkeys(("too_long", "string_too_long", "bytes_too_long", "url_too_long"), "too_long"),
    **dict.fromkeys(
        (
            "greater_than",
            "greater_than_equal",
            "less_than",
            "less_than_equal",
            "multiple_of",
            "finite_number",
            "int_parsing_size",
            "decimal_max_digits",
            "decimal_max_places",
            "decimal_whole_digits",
            "date_past",
            "date_future",
            "datetime_past",
            "datetime_future",
        ),
        "out_of_range",
    ),
    **dict.fromkeys(
        (
            "string_pattern_mismatch",
            "string_not_ascii",
            "url_parsing",
            "url_syntax_violation",
            "url_scheme",
            "uuid_parsing",
            "uuid_version",
            "date_parsing",
            "date_from_datetime_parsing",
            "date_from_datetime_inexact",
            "time_parsing",
            "datetime_parsing",
            "datetime_from_date_parsing",
            "datetime_object_invalid",
            "time_delta_parsing",
            "timezone_naive",
            "timezone_aware",
            "timezone_offset",
        ),
        "bad_format",
    ),
    **dict.fromkeys(("literal_error", "enum", "union_tag_invalid"), "not_allowed"),
    **dict.fromkeys(
        (
            "int_from_float",
            "none_required",
            "union_tag_not_found",
            "string_unicode",
            "bytes_invalid_encoding",
            "is_instance_of",
            "is_subclass_of",
        ),
        "invalid_type",
    ),
}
_TYPE_SUFFIXES = ("_type", "_parsing")


def field_code(error_type: str) -> str:
    """The documented code for a pydantic error type (or a custom one such as
    ``invalid_iban``); never a code outside :data:`FIELD_CODES`."""
    code = _BY_PYDANTIC_TYPE.get(error_type)
    if code is not None:
        return code
    if error_type in FIELD_CODES:
        return error_type
    if error_type.endswith(_TYPE_SUFFIXES):
        return "invalid_type"
    return FALLBACK_CODE
