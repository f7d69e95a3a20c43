"""The strict body reader: one meaning per body, storable text only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.api.input_guard import InputRefused, check_body_text, parse_json_body

CLEAN_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=8,
).filter(lambda s: all(c in "\t\n\r" or ord(c) >= 0x20 for c in s))
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


def test_tab_newline_and_carriage_return_are_text() -> None:
    check_body_text({"description": "a\tb\nc\r\n"})
