"""Merging the capabilities' timeline entries: oldest first; at one instant, the sources in
their fixed order (an API request before the state it created, before its ledger
journal…), then each source's own order; the same result whatever order the sources
answered in."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from amanat.kernel.timeline import SOURCE_ORDER, SOURCES, TimelineEntry, merge

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def entry(
    seconds: float,
    source: str,
    title: str = "x",
    sequence: int = 0,
    actor: str = "amanat",
    facts: dict[str, str] | None = None,
) -> TimelineEntry:
    return TimelineEntry(
        at=T0 + timedelta(seconds=seconds),
        source=source,
        title=title,
        actor=actor,
        subject_id="pay_1",
        facts=facts or {},
        sequence=sequence,
    )


def test_oldest_first_across_sources() -> None:
    merged = merge(
        [
            [entry(3, "ledger", "journal"), entry(1, "ledger", "hold")],
            [entry(2, "state", "processing"), entry(0, "state", "created")],
        ]
    )
    assert [e.title for e in merged] == ["created", "hold", "processing", "journal"]


def test_one_instant_follows_the_source_order_then_each_sources_sequence() -> None:
    merged = merge(
        [
            [entry(0, "webhook", "event")],
            [entry(0, "ledger", "hold")],
            [entry(0, "state", "b", sequence=2), entry(0, "state", "a", sequence=1)],
            [entry(0, "api", "POST")],
            [entry(0, "somewhere-new", "unknown source last")],
        ]
    )
    assert [e.title for e in merged] == ["POST", "a", "b", "hold", "event", "unknown source last"]


def test_nothing_merges_to_nothing() -> None:
    assert merge([]) == [] and merge([[], []]) == []


_entries = st.lists(
    st.builds(
        entry,
        seconds=st.integers(min_value=0, max_value=5),
        source=st.sampled_from([*SOURCES, "other"]),
        title=st.sampled_from(["a", "b", "c"]),
        sequence=st.integers(min_value=0, max_value=3),
        actor=st.sampled_from(["amanat", "rail", "client cli_1"]),
        facts=st.dictionaries(st.sampled_from(["amount", "code"]), st.sampled_from(["1", "2"])),
    ),
    max_size=30,
)


@given(parts=st.lists(_entries, max_size=6), seed=st.integers())
def test_merge_is_sorted_complete_and_independent_of_the_answer_order(
    parts: list[list[TimelineEntry]], seed: int
) -> None:
    merged = merge(parts)
    assert sorted(map(id, merged)) == sorted(id(e) for part in parts for e in part)

    def key(e: TimelineEntry) -> tuple[datetime, int, int, str]:
        return (e.at, SOURCE_ORDER.get(e.source, len(SOURCES)), e.sequence, e.title)

    assert all(key(a) <= key(b) for a, b in itertools.pairwise(merged))
    shuffled = [list(part) for part in parts]
    rng = random.Random(seed)
    rng.shuffle(shuffled)
    for part in shuffled:
        rng.shuffle(part)
    assert merge(shuffled) == merged, "entries that tie on their order still come out alike"
