"""Every process of `amanat serve --workers 2` logs JSON through the masking pipeline.

uvicorn starts each worker as a fresh process that imports the app factory; a worker that
never configured logging would print structlog's default console lines: not JSON, no level
filter, nothing masked. This starts a real two-worker server, sends requests whose path
holds an IBAN, a phone number and a secret (the request log records the path), and reads
the combined output.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import make_database

pytestmark = pytest.mark.e2e

IBAN, PHONE, SECRET = "PK36SCBL0000001123456702", "+923001234567", "s3cr3t"
LEAKY_PATH = f"/v1/lookup/{IBAN}/{PHONE}/secret={SECRET}"
WAIT_SECONDS = 30  # a bound on a hang, never a timing assertion


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _amanat(env: dict[str, str], cwd: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "amanat", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def served_log(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A running `amanat serve --workers 2`; its base URL and its combined output file."""
    url, drop = make_database(tmp_path, migrate=False)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMANAT_")}
    env |= {
        "AMANAT_ENV": "sandbox",
        "AMANAT_DATABASE__URL": url,
        "AMANAT_HTTP__PORT": str(port),
        "AMANAT_OBSERVABILITY__LOG_LEVEL": "INFO",
        "AMANAT_CRYPTO__SANDBOX_MASTER_KEY_FILE": str(tmp_path / "master.key"),
        "AMANAT_CRYPTO__AUDIT_SEAL_KEY_FILE": str(tmp_path / "seal.key"),
        "AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE": str(tmp_path / "creds.json"),
    }
    _amanat(env, tmp_path, "migrate")
    _amanat(env, tmp_path, "sandbox", "seed")  # keys made once, before the workers start
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        # stdout too: structlog's unconfigured default prints there.
        server = subprocess.Popen(
            [sys.executable, "-m", "amanat", "serve", "--workers", "2"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_two_workers(server, base, log_path)
        yield base, log_path
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
        drop()  # type: ignore[operator]


def _wait_for_two_workers(server: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    """Until the server answers and both workers said (in JSON) that they started; a
    worker that logs nothing through the pipeline leaves the assertions to say so."""
    deadline = time.monotonic() + WAIT_SECONDS
    ready = False
    while time.monotonic() < deadline:
        assert server.poll() is None, log_path.read_text(errors="replace")
        if not ready:
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        started = log_path.read_text(errors="replace").count('"Application startup complete')
        if ready and started >= 2:
            return
        time.sleep(0.2)
    assert ready, "the server did not start:\n" + log_path.read_text(errors="replace")


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
    records = [json.loads(line) for line in lines]  # every line is JSON, none console text
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
