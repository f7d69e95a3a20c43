"""A real amanat server for browser tests: a temp SQLite database migrated by ``amanat
migrate``, an operator made by ``amanat operators create``, and uvicorn on a free port.

Everything runs as subprocesses of this interpreter with the settings in the environment,
in a temp working directory (so relative defaults such as ``var/`` land there too).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

OPERATOR_PASSWORD = "e2e console password 2026"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class ConsoleServer:
    base_url: str
    email: str
    password: str
    totp_secret: str
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _amanat(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "amanat", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"amanat {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def _json_block(output: str) -> dict[str, object]:
    """The indented JSON object the CLI prints (log lines may surround it)."""
    match = re.search(r"^\{$.*?^\}$", output, flags=re.MULTILINE | re.DOTALL)
    assert match, f"no JSON in CLI output:\n{output}"
    data: dict[str, object] = json.loads(match.group(0))
    return data


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server did not become healthy in {START_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    workdir = tmp_path_factory.mktemp("e2e-server")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AMANAT_ENV": "sandbox",
        "AMANAT_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'amanat.db'}",
        "AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE": str(workdir / "sandbox-credentials.json"),
        "AMANAT_AUTH__ISSUER": base_url,
        "AMANAT_HTTP__PUBLIC_URL": base_url,
        "AMANAT_OBSERVABILITY__LOG_JSON": "true",
    }
    env.pop("AMANAT_REDIS_URL", None)

    _amanat(["migrate"], env, workdir)
    created = _json_block(
        _amanat(
            [
                "operators",
                "create",
                "--email",
                "e2e.admin@bank.example.pk",
                "--name",
                "E2E Admin",
                "--role",
                "operations",
                "--role",
                "admin",
                "--password-stdin",
            ],
            env,
            workdir,
            stdin=OPERATOR_PASSWORD + "\n",
        ).stdout
    )
    _amanat(["keys", "rotate"], env, workdir)  # a signing key, so a new client can get a token

    log = workdir / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "amanat.api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(process, base_url, log)
        yield ConsoleServer(
            base_url=base_url,
            email=str(created["email"]),
            password=OPERATOR_PASSWORD,
            totp_secret=str(created["totp_secret"]),
            log=log,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
