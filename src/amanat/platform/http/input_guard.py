"""Strict reading of what a request carries, before any route (or database) sees it.

A request must mean one thing and hold only text the database can store:

- a JSON body is UTF-8 without a byte-order mark, and no object names a key twice (a
  lenient parser keeps the last value, so ``{"amount": 1000, "amount": 99999999}`` would
  pay the second amount while a reviewer reads the first);
- no string in the body, the path or the query holds NUL (PostgreSQL cannot store it and
  answered 500) or another control character: C0, DEL and C1 (U+0080 to U+009F; U+0085 is
  a line break to some readers). Body text may hold tab, line feed and carriage return
  (descriptions are free text); paths and query strings may not. Unpaired surrogates
  (``"\\ud800"``) are refused as well: they are not text in any encoding;
- nor characters that make text show other than it reads, once it is echoed in the
  console, the audit log or a partner's own screens: the bidirectional embeddings,
  overrides and isolates (U+202A to U+202E, U+2066 to U+2069; "Trojan source"), the line
  and paragraph separators U+2028 and U+2029 (invisible line breaks; body text has line
  feed for that), and U+FEFF (an invisible byte-order mark that makes two equal-looking
  names differ). The marks U+200E, U+200F and U+061C, and the joiners U+200C and U+200D,
  stay allowed: Urdu text needs them, and they reorder nothing on their own.

Each refusal names the place with a JSON pointer, as validation errors do.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_LINE_BREAKS = "\t\n\r"
_DECEPTIVE = "\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff"
_SURROGATES = "\ud800-\udfff"
_BODY_FORBIDDEN = re.compile(f"[{_CONTROLS}{_DECEPTIVE}{_SURROGATES}]")
_URL_FORBIDDEN = re.compile(f"[{_CONTROLS}{_LINE_BREAKS}{_DECEPTIVE}{_SURROGATES}]")


CHECKED_JSON_BODY = "amanat.checked_json_body"
"""In the ASGI scope: ``(body, parsed)`` of a JSON body that passed
:func:`check_json_body`, so the route reads the parsed value instead of parsing the same
bytes a second time (platform/http/lean_routes.py)."""


class InputRefused(Exception):
    """One refused place: ``code`` is a documented field code, ``pointer`` a JSON pointer."""

    def __init__(
        self, code: str, pointer: str, where: str, message: str, *, form: bool = False
    ) -> None:
        super().__init__(message)
        self.form = form
        self.code = code
        self.pointer = pointer
        self.where = where
        self.message = message

    def as_error(self) -> dict[str, str]:
        return {
            "pointer": self.pointer,
            "in": self.where,
            "code": self.code,
            "message": self.message,
        }


def json_pointer(parts: Any) -> str:
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "".join("/" + p for p in escaped)


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def _kind(char: str) -> str:
    """What the refused character is, in the words of the documentation."""
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return f"an unpaired surrogate ({_describe(char)})"
    if 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
        return f"a bidirectional override or isolate ({_describe(char)})"
    if code in (0x2028, 0x2029):
        return f"a line or paragraph separator ({_describe(char)})"
    if code == 0xFEFF:
        return f"a zero-width no-break space ({_describe(char)})"
    return f"a control character ({_describe(char)})"


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


class _Pairs(list[tuple[str, Any]]):
    """An object kept as its key-value pairs, to find where a duplicate is."""


def _first_duplicate(value: Any, path: list[str]) -> tuple[list[str], str] | None:
    if isinstance(value, _Pairs):
        seen: set[str] = set()
        for key, _item in value:
            if key in seen:
                return path, key
            seen.add(key)
        for key, item in value:
            found = _first_duplicate(item, [*path, key])
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_duplicate(item, [*path, str(index)])
            if found:
                return found
    return None


def parse_json_body(body: bytes) -> Any:
    """The body as JSON, refusing what a lenient parser would quietly accept.

    Raises :class:`InputRefused` (``not_utf8``, ``duplicate_key``) for a body that could
    mean two things; lets :class:`json.JSONDecodeError` through for a plain syntax error.
    """
    return _parse_text(_body_text(body))


def check_json_body(body: bytes) -> Any:
    """:func:`parse_json_body`, then :func:`check_body_text` on what it read; answers the
    parsed value, which equals ``json.loads(body)``: a body that passed is UTF-8 without a
    byte-order mark or NUL (so ``json.loads`` decodes its bytes as this does) and names no
    key twice (so the last value of a key is its only one).

    Every character of a decoded JSON string is either in the text as it is or written as
    a backslash escape, so text with no backslash and no forbidden character anywhere
    holds no forbidden string, and the walk through the parsed value is skipped.
    """
    text = _body_text(body)
    parsed = _parse_text(text)
    if "\\" in text or _BODY_FORBIDDEN.search(text) is not None:
        check_body_text(parsed)
    return parsed


def _body_text(body: bytes) -> str:
    if body.startswith(codecs.BOM_UTF8):
        raise InputRefused(
            "not_utf8",
            "",
            "body",
            "The body starts with a byte-order mark; send UTF-8 without one.",
        )
    if b"\x00" in body:
        # JSON text never holds a raw NUL byte (text escapes it), but UTF-16 and UTF-32
        # bodies are full of them, and a lenient reader would decode them as such.
        raise InputRefused(
            "not_utf8", "", "body", "The body holds NUL bytes: send UTF-8, not UTF-16 or UTF-32."
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputRefused(
            "not_utf8", "", "body", f"The body is not UTF-8 (invalid byte at offset {exc.start})."
        ) from None


def _parse_text(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey:
        found = _first_duplicate(json.loads(text, object_pairs_hook=_Pairs), [])
        assert found is not None
        path, key = found
        raise InputRefused(
            "duplicate_key",
            json_pointer([*path, key]),
            "body",
            f"The key {json.dumps(key)} appears more than once in one object.",
        ) from None


def _strings(value: Any, path: list[str]) -> Iterator[tuple[list[str], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield [*path, key], key
            yield from _strings(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, [*path, str(index)])


def check_body_text(value: Any) -> None:
    """Every key and string in a parsed body is storable text."""
    for path, text in _strings(value, []):
        bad = _BODY_FORBIDDEN.search(text)
        if bad:
            raise InputRefused(
                "forbidden_character",
                json_pointer(path),
                "body",
                f"The text holds {_kind(bad.group())}; body text may hold tab, line feed and "
                "carriage return, but no other control or bidirectional formatting character.",
            )


def check_form_text(body: bytes) -> None:
    """Every name and value of a form body is storable text."""
    _check_pairs(body, _BODY_FORBIDDEN, "body", "form fields", form=True)


def check_query_text(query_string: bytes) -> None:
    _check_pairs(query_string, _URL_FORBIDDEN, "query", "the query string")


def _check_pairs(
    encoded: bytes, forbidden: re.Pattern[str], where: str, place: str, *, form: bool = False
) -> None:
    """Every name and value of URL-encoded ``encoded`` is free of ``forbidden``."""
    for name, value in parse_qsl(encoded.decode("latin-1"), keep_blank_values=True):
        for text in (name, value):
            bad = forbidden.search(text)
            if bad:
                raise InputRefused(
                    "forbidden_character",
                    json_pointer([name]),
                    where,
                    f"{capitalised(_kind(bad.group()))} is not allowed in {place}.",
                    form=form,
                )


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def path_has_forbidden(path: str) -> str | None:
    """What the first forbidden character of a decoded URL path is, if there is one."""
    bad = _URL_FORBIDDEN.search(path)
    return _kind(bad.group()) if bad else None


def is_forbidden_in_path(value: str) -> bool:
    return _URL_FORBIDDEN.search(value) is not None
