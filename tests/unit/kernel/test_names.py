"""The narrow rule for "the same name": case, width and spacing only."""

from __future__ import annotations

import pytest

from amanat.kernel.names import normalize_person_name, same_person_name


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Ayesha Khan", "ayesha khan"),
        ("Ayesha Khan", "  AYESHA \t KHAN "),
        ("Ａｙｅｓｈａ Khan", "Ayesha Khan"),  # full-width letters (NFKC)
        (None, None),
        (None, "   "),
    ],
)
def test_same(first: str | None, second: str | None) -> None:
    assert same_person_name(first, second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Ayesha Khan", "Aisha Khan"),
        ("Ayesha Khan", "Ayesha"),
        ("Ayesha Khan", None),
        ("Ayesha Khan", "Khan Ayesha"),
    ],
)
def test_different(first: str | None, second: str | None) -> None:
    assert not same_person_name(first, second)


def test_normalized_form() -> None:
    assert normalize_person_name(" Bilal   AHMED ") == "bilal ahmed"
    assert normalize_person_name("") is None
