"""Every process of `amanat serve --workers 2` logs JSON through the masking pipeline.

uvicorn starts each worker as a fresh process that imports the app factory; a worker that
never configured logging would print structlog's default console lines: not JSON, no level
filter, nothing masked. This starts a real two-worker server, sends requests whose path
holds an IBAN, a phone number and a secret (the request log records the path), and reads
the combined output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import make_database
from tests.support.processes import (
    AMANAT,
    answers_healthz,
    environment_without_amanat,
    free_port,
    run_amanat,
    sandbox_key_files,
    serving,
)

pytestmark = pytest.mark.e2e

IBAN, PHONE, SECRET = "PK36SCBL0000001123456702", "+923001234567", "s3cr3t"
LEAKY_PATH = f"/v1/lookup/{IBAN}/{PHONE}/secret={SECRET}"
WAIT_SECONDS = 30  # a bound on a hang, never a timing assertion


@pytest.fixture
def served_log(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A running `amanat serve --workers 2`; its base URL and its combined output file."""
    url, drop = make_database(tmp_path, migrate=False)
    port = free_port()
    env = environment_without_amanat() | sandbox_key_files(tmp_path)
    env |= {
        "AMANAT_ENV": "sandbox",
        "AMANAT_DATABASE__URL": url,
        "AMANAT_HTTP__PORT": str(port),
        "AMANAT_OBSERVABILITY__LOG_LEVEL": "INFO",
    }
    run_amanat(["migrate"], env, tmp_path)
    run_amanat(["sandbox", "seed"], env, tmp_path)  # keys made once, before the workers start
    log_path = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    try:
        # stdout too (`serving` logs both): structlog's unconfigured default prints there.
        with serving(
            [*AMANAT, "serve", "--workers", "2"],
            env,
            tmp_path,
            log_path,
            ready=lambda: _two_workers_ready(base, log_path),
            timeout=WAIT_SECONDS,
            grace=30,
            group=True,
        ):
            yield base, log_path
    finally:
        drop()  # type: ignore[operator]


def _two_workers_ready(base: str, log_path: Path) -> bool:
    """The server answers and both workers said (in JSON) that they started; a worker that
    logs nothing through the pipeline never does, and the wait says so with the log."""
    started = log_path.read_text(errors="replace").count('"Application startup complete')
    return started >= 2 and answers_healthz(base, timeout=2)


def test_every_worker_process_logs_masked_json(served_log: tuple[str, Path]) -> None:
    base, log_path = served_log
    for _ in range(20):  # a new connection each: the kernel hands them to either worker
        with httpx.Client(base_url=base) as http:
            assert http.get(LEAKY_PATH).status_code == 404
            token = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(IBAN, SECRET),
            )
            assert token.status_code == 401
    deadline = time.monotonic() + WAIT_SECONDS
    while log_path.read_text(errors="replace").count('"http_request"') < 40:
        assert time.monotonic() < deadline, log_path.read_text(errors="replace")
        time.sleep(0.1)

    output = log_path.read_text(errors="replace")
    for clear in (IBAN, PHONE, "923001234567", SECRET):
        assert clear not in output, clear
    lines = [line for line in output.splitlines() if line.strip()]
    not_json = [line for line in lines if not _is_json(line)]
    assert not not_json, output  # every line is JSON, none console text
    records = [json.loads(line) for line in lines]
    started = {r["event"] for r in records if r["event"].startswith("Started server process")}
    assert len(started) == 2, started  # each worker process logged, as JSON
    assert any(r["event"].startswith("Started parent process") for r in records)
    assert {r["level"] for r in records} <= {"info", "warning", "error", "critical"}
    requests = [r for r in records if r["event"] == "http_request" and "lookup" in r["path"]]
    assert len(requests) == 20
    for record in requests:
        assert "PK**SCBL************6702" in record["path"]
        assert "+92300*****67" in record["path"]
        assert "secret=[redacted]" in record["path"]


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
