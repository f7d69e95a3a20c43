"""Timestamps are RFC 3339 UTC with milliseconds; ids are prefixed ULIDs."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amanat.kernel.clock import FrozenClock, format_timestamp, karachi_date, parse_timestamp
from amanat.kernel.ids import is_id_of, new_id


def test_format_is_utc_z_with_milliseconds() -> None:
    pkt = timezone(timedelta(hours=5))
    moment = datetime(2026, 11, 24, 13, 15, 30, 123456, tzinfo=pkt)
    assert format_timestamp(moment) == "2026-11-24T08:15:30.123Z"


@given(st.datetimes(timezones=st.just(UTC)))
def test_round_trip_to_the_millisecond(moment: datetime) -> None:
    parsed = parse_timestamp(format_timestamp(moment))
    assert parsed == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_karachi_business_date_rolls_at_local_midnight() -> None:
    assert str(karachi_date(datetime(2026, 11, 24, 18, 59, tzinfo=UTC))) == "2026-11-24"
    assert str(karachi_date(datetime(2026, 11, 24, 19, 0, tzinfo=UTC))) == "2026-11-25"


def test_frozen_clock_travels() -> None:
    clock = FrozenClock()
    start = clock.now()
    clock.advance(seconds=301)
    assert (clock.now() - start).total_seconds() == 301


def test_prefixed_ids() -> None:
    payment_id = new_id("payment")
    assert payment_id.startswith("pay_")
    assert len(payment_id) == 30
    assert is_id_of("payment", payment_id)
    assert not is_id_of("refund", payment_id)
    assert not is_id_of("payment", "pay_not-a-ulid")


def test_minted_ids_are_ulids_of_now_that_strictly_increase() -> None:
    import time

    from ulid import ULID

    before = time.time_ns() // 1_000_000
    ids = [new_id("payment") for _ in range(5_000)]
    after = time.time_ns() // 1_000_000
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for payment_id in ids[::97]:
        parsed = ULID.from_str(payment_id.removeprefix("pay_"))
        assert str(parsed) == payment_id.removeprefix("pay_")  # canonical Crockford text
        assert before <= parsed.milliseconds <= after


def test_ids_minted_from_many_threads_never_collide() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: [new_id("event") for _ in range(2_000)], range(8)))
    every = [one for batch in batches for one in batch]
    assert len(set(every)) == len(every)
    assert all(batch == sorted(batch) for batch in batches)


def test_a_clock_set_back_still_gives_a_larger_id(monkeypatch: pytest.MonkeyPatch) -> None:

    from amanat.kernel import ids

    first = new_id("payment")
    monkeypatch.setattr(ids.time, "time_ns", lambda: 0)
    assert new_id("payment") > first


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_never_mints_its_parents_ids() -> None:
    new_id("payment")  # the parent holds a batch of random bytes
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(writing, new_id("payment").encode())
        os._exit(0)
    os.close(writing)
    parents = new_id("payment")
    os.waitpid(child, 0)
    childs = os.read(reading, 64).decode()
    os.close(reading)
    assert childs.startswith("pay_") and childs[-16:] != parents[-16:]
