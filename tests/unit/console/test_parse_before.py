"""A list page's "older" link: a well-formed one is read, anything else starts again from
the newest instead of failing the page."""

from __future__ import annotations

from datetime import UTC, datetime

from amanat.console.routes.common import parse_before


def test_a_well_formed_link_is_read() -> None:
    assert parse_before("2026-12-05T08:00:00+00:00|dp_01") == (
        datetime(2026, 12, 5, 8, tzinfo=UTC),
        "dp_01",
    )


def test_anything_else_starts_from_the_newest() -> None:
    for before in ("", "no-bar", "yesterday|dp_01", "x" * 200 + "|id"):
        assert parse_before(before) is None
