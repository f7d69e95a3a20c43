"""The timeline of one transaction, gathered from every capability's timeline source.

The console's timeline page, ``amanat timeline ID`` and (later) the partner portal all
ask this service; each capability answers for its own part (see
:mod:`amanat.kernel.timeline`). Sources run one after the other on the same pool: each
is a handful of indexed reads, and running them concurrently would only take more
connections from a pool that payments need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amanat.kernel.timeline import TimelineEntry, TimelineSource, merge

MAX_ID = 64


@dataclass(frozen=True, slots=True)
class Timeline:
    subject_id: str
    entries: list[TimelineEntry]

    @property
    def found(self) -> bool:
        return bool(self.entries)


class TimelineService:
    def __init__(self, sources: Sequence[TimelineSource]) -> None:
        self._sources = tuple(sources)

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(source.name for source in self._sources)

    async def timeline(self, subject_id: str) -> Timeline:
        """Every source's entries about ``subject_id``, oldest first. An id no object of
        amanat could have (empty, longer than any id column, holding NUL) has none."""
        subject_id = subject_id.strip()
        if not subject_id or len(subject_id) > MAX_ID or "\x00" in subject_id:
            return Timeline(subject_id=subject_id, entries=[])
        parts = [await source.entries(subject_id) for source in self._sources]
        return Timeline(subject_id=subject_id, entries=merge(parts))
