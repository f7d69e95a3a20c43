"""Stable ids for external records, shared by every statement format.

Re-importing a file, or one that overlaps it, must find each record again by its id and
add nothing. When the source names its records (a bank's entry reference, a rail's
transfer id) that name is the id; when it does not, the id is a digest of what the record
says, so the same record in an overlapping file digests the same. Two identical records
in one file (two equal transfers on one day) are told apart by their order of occurrence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DIGEST_PREFIX = "d:"
# Separates the digested fields, so ("ab", "c") and ("a", "bc") differ.
_FIELD_SEPARATOR = "\x1f"


def digest_id(fields: Iterable[object]) -> str:
    """``d:`` and the SHA-256 (hex) of the fields' text; None digests as empty."""
    text = _FIELD_SEPARATOR.join("" if value is None else str(value) for value in fields)
    return DIGEST_PREFIX + hashlib.sha256(text.encode()).hexdigest()


class Occurrences:
    """Numbers repeats of an id within one file: the first keeps it, the second gets
    ``#2``, and so on, so every record of a file has its own id."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def number(self, external_id: str) -> str:
        count = self._seen.get(external_id, 0) + 1
        self._seen[external_id] = count
        return external_id if count == 1 else f"{external_id}#{count}"
