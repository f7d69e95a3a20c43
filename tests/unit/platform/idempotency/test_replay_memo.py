"""The replay memo keeps only completed records, never answers an expired one, and never
holds more than its size, dropping the least recently used first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from amanat.platform.idempotency.ports import IdempotencyRecord
from amanat.platform.idempotency.replay_memo import ReplayMemo

T0 = datetime(2026, 12, 6, tzinfo=UTC)


def _record(key: str, *, status: str = "completed", expires_in: int = 3600) -> IdempotencyRecord:
    return IdempotencyRecord(
        client_id="cli_1",
        key=key,
        request_hash="h",
        method="POST",
        path="/v1/payments",
        status=status,
        response_status=201 if status == "completed" else None,
        response_body="sealed" if status == "completed" else None,
        response_headers={},
        created_at=T0,
        locked_until=None,
        expires_at=T0 + timedelta(seconds=expires_in),
    )


def test_only_completed_records_are_kept() -> None:
    memo = ReplayMemo(size=4)
    memo.keep(_record("a", status="in_progress"))
    assert memo.find("cli_1", "a", T0) is None
    memo.keep(_record("a"))
    assert memo.find("cli_1", "a", T0) == _record("a")
    assert memo.find("cli_2", "a", T0) is None  # keys belong to their client


def test_an_expired_record_is_dropped_not_answered() -> None:
    memo = ReplayMemo(size=4)
    memo.keep(_record("a", expires_in=10))
    assert memo.find("cli_1", "a", T0 + timedelta(seconds=9)) is not None
    assert memo.find("cli_1", "a", T0 + timedelta(seconds=10)) is None
    assert len(memo) == 0


def test_the_least_recently_used_goes_first() -> None:
    memo = ReplayMemo(size=2)
    memo.keep(_record("a"))
    memo.keep(_record("b"))
    assert memo.find("cli_1", "a", T0) is not None  # "b" is now the older one
    memo.keep(_record("c"))
    assert memo.find("cli_1", "b", T0) is None
    assert memo.find("cli_1", "a", T0) is not None
    assert memo.find("cli_1", "c", T0) is not None


def test_a_memo_of_size_zero_keeps_nothing() -> None:
    memo = ReplayMemo(size=0)
    memo.keep(_record("a"))
    assert len(memo) == 0


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=5),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["keep", "find", "forget"]),
            st.integers(min_value=0, max_value=8),
            st.integers(min_value=0, max_value=20),
        ),
        max_size=60,
    ),
)
def test_bounded_and_never_answers_an_expired_key(
    size: int, steps: list[tuple[str, int, int]]
) -> None:
    memo = ReplayMemo(size=size)
    for op, n, seconds in steps:
        key, now = f"k{n}", T0 + timedelta(seconds=seconds)
        if op == "keep":
            memo.keep(_record(key, expires_in=n * 3))
        elif op == "find":
            found = memo.find("cli_1", key, now)
            assert found is None or (found.key == key and found.expires_at > now)
        else:
            memo.forget("cli_1", key)
        assert len(memo) <= size
