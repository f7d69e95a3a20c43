"""A failed payment's `failure.code` comes from one closed list, whatever the rail sends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from amanat.payments.domain.payments import RAIL_FAILURE_CODES, rail_failure


def test_known_reason_codes_keep_their_own_code() -> None:
    assert rail_failure("AC01", "bad account").code == "rail_ac01"
    assert rail_failure("duplicate_end_to_end_id", "dup").code == "rail_duplicate_end_to_end_id"


def test_an_unknown_reason_code_is_rejected_naming_the_raw_code() -> None:
    failure = rail_failure("XY99", "The rail refused it.")
    assert failure.code == "rail_rejected"
    assert failure.message == "The rail refused it. (rail reason code XY99)"


@given(st.text(max_size=200))
def test_any_rail_answer_maps_into_the_closed_list(raw: str) -> None:
    failure = rail_failure(raw, "refused")
    assert failure.code in RAIL_FAILURE_CODES
    assert len(failure.message) <= len("refused") + 64
    assert "\x00" not in failure.message or "\x00" in "refused"
