"""CSV exports never hand a spreadsheet a formula."""

from __future__ import annotations

import csv
import io

from amanat.platform.http.csv_cells import csv_text


def test_text_that_a_spreadsheet_would_run_is_written_as_text() -> None:
    text = csv_text(
        ["reference", "amount"],
        [
            ['=HYPERLINK("http://evil")', -1500],
            ["+92 300", 10],
            ["@SUM(A1)", 0],
            ["-2+3", 5],
            ["\tcmd", 1],
            ["INV-1", 2],
        ],
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["reference", "amount"]
    assert [r[0] for r in rows[1:]] == [
        '\'=HYPERLINK("http://evil")',
        "'+92 300",
        "'@SUM(A1)",
        "'-2+3",
        "'\tcmd",
        "INV-1",
    ]
    assert [r[1] for r in rows[1:]] == ["-1500", "10", "0", "5", "1", "2"]  # numbers stay
