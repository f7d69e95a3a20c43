"""A real amanat server for browser tests: a temp SQLite database migrated by ``amanat
migrate``, an operator made by ``amanat operators create``, and uvicorn on a free port.

Everything runs as subprocesses of this interpreter with the settings in the environment,
in a temp working directory (so relative defaults such as ``var/`` land there too).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.processes import answers_healthz, free_port, run_amanat, serving

OPERATOR_PASSWORD = "e2e console password 2026"
# Debian's Chromium (CI: apt-get install chromium), never Playwright's own downloads.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class ConsoleServer:
    base_url: str
    email: str
    password: str
    totp_secret: str
    log: Path


def _json_block(output: str) -> dict[str, object]:
    """The indented JSON object the CLI prints (log lines may surround it)."""
    match = re.search(r"^\{$.*?^\}$", output, flags=re.MULTILINE | re.DOTALL)
    assert match, f"no JSON in CLI output:\n{output}"
    data: dict[str, object] = json.loads(match.group(0))
    return data


def server_env(workdir: Path, base_url: str, **settings: str) -> dict[str, str]:
    """This process's environment with a sandbox server's settings: a SQLite database and
    sandbox credentials in ``workdir``, ``base_url`` as the public URL, no Redis, and
    ``settings`` on top."""
    env = {
        **os.environ,
        "AMANAT_ENV": "sandbox",
        "AMANAT_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'amanat.db'}",
        "AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE": str(workdir / "sandbox-credentials.json"),
        "AMANAT_HTTP__PUBLIC_URL": base_url,
        **settings,
    }
    env.pop("AMANAT_REDIS_URL", None)
    return env


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    workdir = tmp_path_factory.mktemp("e2e-server")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = server_env(
        workdir,
        base_url,
        AMANAT_AUTH__ISSUER=base_url,
        AMANAT_OBSERVABILITY__LOG_JSON="true",
    )

    run_amanat(["migrate"], env, workdir)
    created = _json_block(
        run_amanat(
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
    run_amanat(["keys", "rotate"], env, workdir)  # a signing key, so a new client can get a token

    log = workdir / "server.log"
    uvicorn = [sys.executable, "-m", "uvicorn", "amanat.app:create_app", "--factory"]
    with serving(
        [*uvicorn, "--host", "127.0.0.1", "--port", str(port)],
        env,
        workdir,
        log,
        ready=lambda: answers_healthz(base_url),
        timeout=START_TIMEOUT,
    ):
        yield ConsoleServer(
            base_url=base_url,
            email=str(created["email"]),
            password=OPERATOR_PASSWORD,
            totp_secret=str(created["totp_secret"]),
            log=log,
        )
