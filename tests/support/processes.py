"""Real amanat processes for tests: a free port, a CLI command that must succeed, a server or
worker started with its output in a log file, waiting until it is ready, and a stop that
turns from SIGTERM to SIGKILL.

Several tests (e2e servers, the logging of `amanat serve --workers 2`, killed webhook
workers, the crash drill) start real subprocesses; one helper keeps them waiting and
cleaning up the same way, and a process that dies while they wait says so with its log.
Nothing here depends on pytest, so the crash drill can run as a script.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

AMANAT = [sys.executable, "-m", "amanat"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment_without_amanat(*, keep_prefix: str | None = None) -> dict[str, str]:
    """This process's environment minus its AMANAT_* settings (but those starting with
    ``keep_prefix``), so a subprocess reads only the settings a test gives it."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AMANAT_") or (keep_prefix and key.startswith(keep_prefix))
    }


def sandbox_key_files(workdir: Path) -> dict[str, str]:
    """The settings that put the sandbox master key, the audit seal key and the sandbox
    credentials in ``workdir``."""
    return {
        "AMANAT_CRYPTO__SANDBOX_MASTER_KEY_FILE": str(workdir / "master.key"),
        "AMANAT_CRYPTO__AUDIT_SEAL_KEY_FILE": str(workdir / "seal.key"),
        "AMANAT_AUTH__SANDBOX_CREDENTIALS_FILE": str(workdir / "creds.json"),
    }


def run_amanat(
    args: Sequence[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``amanat <args>`` to the end; a failure raises with everything it printed."""
    result = subprocess.run(
        [*AMANAT, *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"amanat {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def start(
    command: Sequence[str], env: dict[str, str], cwd: Path, log: Path, **popen: Any
) -> subprocess.Popen[bytes]:
    """``command`` in the background, its stdout and stderr both written to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            list(command), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, **popen
        )


def answers_healthz(base_url: str, timeout: float = 1.0) -> bool:
    """Whether the server at ``base_url`` answers ``/healthz`` with 200 right now."""
    try:
        return httpx.get(f"{base_url}/healthz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(
    condition: Callable[[], bool],
    *,
    processes: Sequence[subprocess.Popen[bytes]],
    output: Callable[[], str],
    what: str,
    timeout: float,
    interval: float = 0.2,
) -> None:
    """Polls ``condition`` until it holds while all of ``processes`` run; raises (with
    ``output()``) if one of them exits first or ``timeout`` seconds pass, a bound on a
    hang, never a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(
                    f"a process exited with {process.returncode} while waiting for {what}:\n"
                    f"{output()}"
                )
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting {timeout} s for {what}:\n{output()}")
        time.sleep(interval)


def stop(process: subprocess.Popen[bytes], *, grace: float, group: bool = False) -> None:
    """SIGTERM (to the whole process group if ``group``), up to ``grace`` seconds to end,
    then SIGKILL."""
    _signal(process, signal.SIGTERM, group=group)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL, group=group)
        process.wait(timeout=10)


def _signal(process: subprocess.Popen[bytes], signum: int, *, group: bool) -> None:
    # The group outlives a leader that already exited, so it is signalled regardless.
    if group:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
    elif process.poll() is None:
        process.send_signal(signum)


@contextmanager
def serving(
    command: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    log: Path,
    *,
    ready: Callable[[], bool],
    timeout: float,
    grace: float = 10,
    group: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server started from ``command``, yielded once ``ready()`` holds, and stopped
    afterwards (its process group too if ``group``)."""
    process = start(command, env, cwd, log, start_new_session=group)
    try:
        wait_until(
            ready,
            processes=[process],
            output=lambda: log.read_text(errors="replace"),
            what="the server to be ready",
            timeout=timeout,
        )
        yield process
    finally:
        stop(process, grace=grace, group=group)
