"""Metadata bounds hold for every caller of the payments service, not only the HTTP edge."""

from __future__ import annotations

from typing import Any

import pytest

from amanat.kernel.errors import InvalidInput
from amanat.kernel.metadata import check_metadata


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({f"k{i}": "v" for i in range(51)}, "metadata_too_many_keys"),
        ({"k" * 41: "v"}, "metadata_key_length"),
        ({"": "v"}, "metadata_key_length"),
        ({"k": "v" * 501}, "metadata_value"),
        ({"k": 1}, "metadata_value"),
        ({"k": None}, "metadata_value"),
    ],
)
def test_out_of_bounds_metadata_is_refused(metadata: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_metadata(metadata)
    assert caught.value.reason == reason


def test_metadata_at_the_bounds_is_kept() -> None:
    metadata = {f"{i:02d}".ljust(40, "k"): "v" * 500 for i in range(50)}
    assert check_metadata(metadata) == metadata
