"""The strict body reader: one meaning per body, storable text only."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.platform.http.input_guard import (
    InputRefused,
    check_body_text,
    check_form_text,
    check_json_body,
    check_query_text,
    parse_json_body,
    path_has_forbidden,
)

# Characters a body string may not hold besides C0 (but tab, LF, CR): DEL and C1, the
# bidirectional embeddings, overrides and isolates, the line and paragraph separators, and
# the zero-width no-break space.
REFUSED_BEYOND_C0 = [
    "\x7f",
    "\x80",
    "\x85",
    "\x9f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u2028",
    "\u2029",
    "\ufeff",
]
CLEAN_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",), blacklist_characters=["\x00", *REFUSED_BEYOND_C0]
    ),
    max_size=8,
).filter(lambda s: all(c in "\t\n\r" or 0x20 <= ord(c) < 0x7F or ord(c) > 0x9F for c in s))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | CLEAN_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(CLEAN_TEXT, inner, max_size=3),
    max_leaves=12,
)


@given(JSON_VALUES)
def test_clean_json_reads_exactly_as_the_standard_reader(value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False).encode()
    parsed = parse_json_body(body)
    assert parsed == json.loads(body)
    check_body_text(parsed)


@given(st.dictionaries(CLEAN_TEXT, st.integers(), min_size=1, max_size=4), st.data())
def test_any_repeated_key_is_refused_with_its_pointer(obj: dict[str, int], data: Any) -> None:
    key = data.draw(st.sampled_from(sorted(obj)))
    members = [f"{json.dumps(k)}: {v}" for k, v in obj.items()] + [f"{json.dumps(key)}: 0"]
    body = ('{"outer": [{' + ", ".join(members) + "}]}").encode()
    with pytest.raises(InputRefused) as caught:
        parse_json_body(body)
    assert caught.value.code == "duplicate_key"
    escaped = key.replace("~", "~0").replace("/", "~1")
    assert caught.value.pointer == f"/outer/0/{escaped}"


@pytest.mark.parametrize(
    "body",
    [
        '{"a": 1}'.encode("utf-16"),
        '{"a": 1}'.encode("utf-16-be"),
        '{"a": 1}'.encode("utf-32-le"),
        b"\xef\xbb\xbf{}",
        b'{"a": "\xe9"}',
    ],
)
def test_bodies_that_are_not_utf8_are_refused(body: bytes) -> None:
    with pytest.raises(InputRefused) as caught:
        parse_json_body(body)
    assert (caught.value.code, caught.value.pointer) == ("not_utf8", "")


@pytest.mark.parametrize(
    ("value", "pointer"),
    [
        ({"a": "x\x00"}, "/a"),
        ({"a": ["ok", "\x1f"]}, "/a/1"),
        ({"k\x00": 1}, "/k\x00"),
        ({"a": {"b": "\ud800"}}, "/a/b"),
    ],
)
def test_control_characters_are_refused_with_a_pointer(value: Any, pointer: str) -> None:
    with pytest.raises(InputRefused) as caught:
        check_body_text(value)
    assert (caught.value.code, caught.value.pointer) == ("forbidden_character", pointer)


ANY_TEXT = st.text(
    alphabet=st.sampled_from(["a", "7", " ", "\\", '"', "\t", "\n", "\x01", *REFUSED_BEYOND_C0])
    | st.characters(),
    max_size=6,
)
ANY_JSON_VALUES = st.recursive(
    st.none() | st.integers() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


def _walk_verdict(value: Any) -> tuple[str, str] | None:
    try:
        check_body_text(value)
    except InputRefused as refusal:
        return refusal.code, refusal.pointer
    return None


@given(ANY_JSON_VALUES, st.booleans())
def test_the_body_check_refuses_exactly_what_the_walk_refuses(
    value: Any, ensure_ascii: bool
) -> None:
    # Raw (ensure_ascii=False) and escaped bodies: the check may skip the walk only when
    # the walk would find nothing.
    try:
        body = json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8")
    except UnicodeEncodeError:
        return  # a lone surrogate cannot be sent raw in UTF-8 at all
    try:
        check_json_body(body)
        verdict = None
    except InputRefused as refusal:
        verdict = (refusal.code, refusal.pointer)
    assert verdict == _walk_verdict(value)


def test_tab_newline_and_carriage_return_are_text() -> None:
    check_body_text({"description": "a\tb\nc\r\n"})


@pytest.mark.parametrize("char", REFUSED_BEYOND_C0, ids=lambda c: f"U+{ord(c):04X}")
def test_del_c1_bidi_controls_separators_and_bom_are_refused_in_keys_and_values(
    char: str,
) -> None:
    for value, pointer in [({"a": f"x{char}y"}, "/a"), ({f"k{char}": "v"}, f"/k{char}")]:
        with pytest.raises(InputRefused) as caught:
            check_body_text(value)
        assert (caught.value.code, caught.value.pointer) == ("forbidden_character", pointer)
        assert f"U+{ord(char):04X}" in caught.value.message


@pytest.mark.parametrize("char", REFUSED_BEYOND_C0, ids=lambda c: f"U+{ord(c):04X}")
def test_the_same_characters_are_refused_in_paths_queries_and_forms(char: str) -> None:
    encoded = quote(f"x{char}y").encode()
    assert path_has_forbidden(f"/v1/payments/pay_{char}") is not None
    with pytest.raises(InputRefused) as in_query:
        check_query_text(b"status=" + encoded)
    assert (in_query.value.code, in_query.value.where) == ("forbidden_character", "query")
    with pytest.raises(InputRefused) as in_form:
        check_form_text(b"name=" + encoded)
    assert (in_form.value.code, in_form.value.form) == ("forbidden_character", True)


def test_urdu_marks_joiners_and_no_break_space_stay_text() -> None:
    # ZWNJ and ZWJ shape Urdu words; LRM, RLM and ALM mark direction without overriding it.
    text = "\u0639\u0627\u0626\u0634\u06c1\u200c\u200d \u200e\u200f\u061c\xa0caf\xe9"
    check_body_text({"name": text})
    check_query_text(b"q=" + quote(text).encode())
    check_form_text(b"name=" + quote(text).encode())
    assert path_has_forbidden("/v1/customers/" + text) is None


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("éی\n")),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@given(_JSON_VALUES, st.booleans())
def test_a_body_that_passes_reads_as_json_loads_reads_it(value: Any, ascii_only: bool) -> None:
    """The value the check answers is the body the route is given (lean_routes.py), so
    it must be what json.loads makes of the same bytes."""
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    try:
        checked = check_json_body(body)
    except InputRefused:
        return
    assert checked == json.loads(body)
    assert json.dumps(checked) == json.dumps(json.loads(body))  # key order too
