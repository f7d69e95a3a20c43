"""The list scenario's check: a full page, newest first, as the answer shows it."""

from __future__ import annotations

from typing import Any

from bench.run import _full_page


def _page(*rows: tuple[str, str], has_more: bool = True) -> dict[str, Any]:
    return {"data": [{"created_at": at, "id": pid} for at, pid in rows], "has_more": has_more}


def _rows(n: int) -> list[tuple[str, str]]:
    return [(f"2026-11-25T01:43:{59 - i:02d}.000Z", f"pay_{i:02d}") for i in range(n)]


def test_a_full_page_newest_first_passes() -> None:
    assert _full_page(_page(*_rows(20)), expect_full=True)


def test_two_payments_in_one_millisecond_may_come_in_either_id_order() -> None:
    rows = _rows(20)
    rows[3], rows[4] = ("2026-11-25T01:43:56.000Z", "pay_A"), ("2026-11-25T01:43:56.000Z", "pay_Z")
    assert _full_page(_page(*rows), expect_full=True)
    rows[3], rows[4] = rows[4], rows[3]
    assert _full_page(_page(*rows), expect_full=True)


def test_an_older_payment_before_a_newer_one_fails() -> None:
    rows = _rows(20)
    rows[3], rows[4] = rows[4], rows[3]
    assert not _full_page(_page(*rows), expect_full=True)


def test_a_short_page_fails_only_where_a_full_one_was_expected() -> None:
    assert not _full_page(_page(*_rows(19), has_more=False), expect_full=True)
    assert _full_page(_page(*_rows(19), has_more=False), expect_full=False)
