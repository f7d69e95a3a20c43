"""Confirmation of payee's name rule: exact names match, near names are close (and
shown masked), anything else does not match."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.openbanking.domain.payee import Verdict, compare, mask


@pytest.mark.parametrize(
    ("expected", "title", "verdict"),
    [
        ("Ayesha Khan", "AYESHA KHAN", Verdict.MATCH),
        ("ayesha   khan.", "AYESHA KHAN", Verdict.MATCH),
        ("Mr. Bilal Ahmed", "BILAL AHMED", Verdict.MATCH),
        ("Bilal Ahmed", "MUHAMMAD BILAL AHMED", Verdict.CLOSE_MATCH),
        ("Khan Ayesha", "AYESHA KHAN", Verdict.CLOSE_MATCH),
        ("Ayesha Kahn", "AYESHA KHAN", Verdict.CLOSE_MATCH),
        ("Aysha Khan", "AYESHA KHAN", Verdict.CLOSE_MATCH),
        ("Ayesha", "AYESHA KHAN", Verdict.NO_MATCH),
        ("Zainab Ali", "AYESHA KHAN", Verdict.NO_MATCH),
        ("Ali Khan", "AYESHA KHAN", Verdict.NO_MATCH),
        ("", "AYESHA KHAN", Verdict.NO_MATCH),
    ],
)
def test_the_verdicts(expected: str, title: str, verdict: Verdict) -> None:
    answer = compare(expected, title)
    assert answer.verdict is verdict
    assert (answer.masked_title is not None) == (verdict is Verdict.CLOSE_MATCH)


def test_a_close_match_shows_the_title_masked() -> None:
    assert compare("Bilal Ahmed", "MUHAMMAD BILAL AHMED").masked_title == "MU****** BI*** AH***"
    assert mask("AL I") == "AL* I*"


names = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=10), min_size=1, max_size=4
).map(" ".join)


@given(names)
def test_a_name_always_matches_itself_in_capitals(name: str) -> None:
    assert compare(name, name.upper()).verdict is Verdict.MATCH


@given(names, names)
def test_only_the_same_words_in_the_same_order_match(a: str, b: str) -> None:
    if compare(a, b).verdict is Verdict.MATCH:
        assert a.split() == b.split()
