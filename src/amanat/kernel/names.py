"""When two spellings of a person's name count as the same name.

A payment that names an account holder is attached to an existing customer only when the
identifier AND the name match (docs/api-contract.md, "Customers"); this module decides the
second half. The rule is deliberately narrow: Unicode compatibility forms, letter case and
runs of whitespace are ignored, nothing else ("Ayesha Khan" and "AYESHA  KHAN" match;
"Ayesha Khan" and "Aisha Khan" do not), so a different person is never merged into
someone else's record by a fuzzy guess.
"""

from __future__ import annotations

import unicodedata

__all__ = ["normalize_person_name", "same_person_name"]


def normalize_person_name(name: str | None) -> str | None:
    """NFKC, case-folded, whitespace collapsed; ``None`` for an absent or blank name."""
    if name is None:
        return None
    folded = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
    return folded or None


def same_person_name(first: str | None, second: str | None) -> bool:
    """Whether two names are the same after normalising (two absent names are the same)."""
    return normalize_person_name(first) == normalize_person_name(second)
