"""One page of a keyset-paginated list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    has_more: bool
