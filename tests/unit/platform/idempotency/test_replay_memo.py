"""The replay memo keeps only completed, unexpired records, never answers an expired one,
never holds more bytes than its budget, and drops the least recently used first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from amanat.platform.idempotency.ports import IdempotencyRecord
from amanat.platform.idempotency.replay_memo import LARGEST_ANSWER, ReplayMemo, cost_of

T0 = datetime(2026, 12, 6, tzinfo=UTC)


def _record(
    key: str, *, status: str = "completed", expires_in: int = 3600, body: str = "sealed"
) -> IdempotencyRecord:
    return IdempotencyRecord(
        client_id="cli_1",
        key=key,
        request_hash="h",
        method="POST",
        path="/v1/payments",
        status=status,
        response_status=201 if status == "completed" else None,
        response_body=body if status == "completed" else None,
        response_headers={},
        created_at=T0,
        locked_until=None,
        expires_at=T0 + timedelta(seconds=expires_in),
    )


def test_only_completed_unexpired_records_are_kept() -> None:
    memo = ReplayMemo()
    memo.keep(_record("a", status="in_progress"), T0)
    memo.keep(_record("b", expires_in=0), T0)
    assert len(memo) == 0
    memo.keep(_record("a"), T0)
    assert memo.find("cli_1", "a", T0) == _record("a")
    assert memo.find("cli_2", "a", T0) is None  # keys belong to their client


def test_an_expired_record_is_dropped_not_answered() -> None:
    memo = ReplayMemo()
    memo.keep(_record("a", expires_in=10), T0)
    assert memo.find("cli_1", "a", T0 + timedelta(seconds=9)) is not None
    assert memo.find("cli_1", "a", T0 + timedelta(seconds=10)) is None
    assert len(memo) == 0 and memo.used_bytes == 0


def test_expired_records_go_as_others_come_even_if_never_asked_for_again() -> None:
    memo = ReplayMemo()
    memo.keep(_record("old", expires_in=10), T0)
    memo.keep(_record("new", expires_in=3600), T0 + timedelta(seconds=20))
    assert len(memo) == 1
    assert memo.find("cli_1", "new", T0 + timedelta(seconds=20)) is not None


def test_the_budget_is_bytes_and_the_least_recently_used_goes_first() -> None:
    one = cost_of(_record("a"))
    memo = ReplayMemo(max_bytes=2 * one)
    memo.keep(_record("a"), T0)
    memo.keep(_record("b"), T0)
    assert memo.find("cli_1", "a", T0) is not None  # "b" is now the older one
    memo.keep(_record("c"), T0)
    assert memo.find("cli_1", "b", T0) is None
    assert memo.find("cli_1", "a", T0) is not None
    assert memo.find("cli_1", "c", T0) is not None
    assert memo.used_bytes == 2 * one
    # One large answer pushes out as many small ones as it needs.
    memo.keep(_record("big", body="x" * (one + 10)), T0)  # larger than the whole budget
    assert memo.find("cli_1", "big", T0) is None
    assert len(memo) == 2 and memo.used_bytes == 2 * one
    memo.keep(_record("a", status="in_progress"), T0)  # the key taken afresh: forgotten
    assert memo.find("cli_1", "a", T0) is None
    memo = ReplayMemo(max_bytes=10 * one)
    for key in "abcde":
        memo.keep(_record(key), T0)
    memo.keep(_record("big", body="x" * (6 * one)), T0)
    assert memo.find("cli_1", "big", T0) is not None
    assert memo.used_bytes <= 10 * one
    assert memo.find("cli_1", "a", T0) is None  # the oldest went first


def test_an_answer_too_large_to_keep_is_left_to_the_database() -> None:
    memo = ReplayMemo()
    memo.keep(_record("a", body="x" * (LARGEST_ANSWER + 1)), T0)
    assert len(memo) == 0
    memo.keep(_record("a", body="x" * LARGEST_ANSWER), T0)
    assert len(memo) == 1


def test_a_memo_of_no_bytes_keeps_nothing() -> None:
    memo = ReplayMemo(max_bytes=0)
    memo.keep(_record("a"), T0)
    assert len(memo) == 0


@settings(max_examples=300, deadline=None)
@given(
    budget=st.integers(min_value=0, max_value=6),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["keep", "find", "forget"]),
            st.integers(min_value=0, max_value=8),
            st.integers(min_value=0, max_value=30),
            st.integers(min_value=0, max_value=3000),
        ),
        max_size=60,
    ),
)
def test_within_budget_least_recently_used_first_never_expired(
    budget: int, steps: list[tuple[str, int, int, int]]
) -> None:
    unit = cost_of(_record("k0"))
    memo = ReplayMemo(max_bytes=budget * unit)
    model: dict[str, IdempotencyRecord] = {}  # in least recently used order
    for op, n, seconds, size in steps:
        key, now = f"k{n}", T0 + timedelta(seconds=seconds)
        if op == "keep":
            record = _record(key, expires_in=n * 4, body="x" * size)
            memo.keep(record, now)
            model.pop(key, None)
            if record.expires_at > now and cost_of(record) <= memo._budget:
                model[key] = record
        elif op == "find":
            found = memo.find("cli_1", key, now)
            assert found is None or (found.expires_at > now and found is model.get(key))
            if found is not None:
                model[key] = model.pop(key)
            else:
                # Not kept, or kept and expired now (then dropped, wherever it stood).
                assert key not in model or model[key].expires_at <= now
                model.pop(key, None)
        else:
            memo.forget("cli_1", key)
            model.pop(key, None)
        kept = list(memo._records)
        assert memo.used_bytes == sum(cost for _r, cost in memo._records.values())
        assert memo.used_bytes <= budget * unit
        # What the memo holds is the most recently used end of the model, in its order:
        # dropping (over budget, or expired at the old end) only ever takes the oldest.
        order = [("cli_1", k) for k in model]
        assert kept == order[len(order) - len(kept) :]
        for k in list(model):
            if ("cli_1", k) not in kept:
                model.pop(k)
