"""A JSON-logging server process keeps every stderr line JSON and masked, whoever wrote it."""

from __future__ import annotations

import io
import json

from amanat.platform.observability.logging import JsonStderr


def test_json_lines_pass_through_and_other_text_becomes_masked_records() -> None:
    original = io.StringIO()
    stderr = JsonStderr(original)
    stderr.write('{"event": "http_request"}\n')
    stderr.write("Process SpawnProcess-1:\nTraceback (most recent call last):\n  iban=PK36")
    stderr.write("SCBL0000001123456702 secret=s3cr3t\n\n")
    lines = original.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0] == {"event": "http_request"}
    assert [r["event"] for r in records[1:3]] == [
        "Process SpawnProcess-1:",
        "Traceback (most recent call last):",
    ]
    assert all(r["level"] == "error" and r["logger"] == "stderr" for r in records[1:])
    assert "PK36SCBL0000001123456702" not in original.getvalue()
    assert "s3cr3t" not in original.getvalue()
    assert len(records) == 4  # the blank line is dropped
