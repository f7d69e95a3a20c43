"""A server of several workers (platform/http/listeners.py, as `amanat serve --workers 2`
runs it): each worker listens on a socket of its own in the port's SO_REUSEPORT group, so
the kernel spreads connections over them, and a second server on the same port is refused.

With uvicorn's own multi-worker start, one socket bound by the supervisor is shared by
every worker; a burst of new connections then lands on whichever worker accepts first
(see the module). The socket table in /proc tells the two designs apart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.paths import REPO
from tests.support.processes import (
    environment_without_amanat,
    free_port,
    start,
    stop,
    wait_until,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT spreads on Linux; /proc"),
]

ROOT = REPO  # the servers import tests.support.pid_app from here
WAIT_SECONDS = 60  # a bound on a hang, never a timing assertion


def _server(port: int) -> list[str]:
    code = (
        "from amanat.platform.http.listeners import run; "
        f"run('tests.support.pid_app:app', host='127.0.0.1', port={port}, workers=2, "
        "log_config=None, access_log=False, timeout_worker_healthcheck=60)"
    )
    return [sys.executable, "-c", code]


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    log = tmp_path / "server.log"
    process = start(_server(port), environment_without_amanat(), ROOT, log, start_new_session=True)
    try:
        wait_until(
            # Both workers up (under either design: the test tells them apart).
            lambda: len(set(_workers(port, process.pid)) - {process.pid}) == 2 and _answers(port),
            processes=[process],
            output=lambda: log.read_text(errors="replace"),
            what="both workers to listen",
            timeout=WAIT_SECONDS,
        )
        yield port, process
    finally:
        stop(process, grace=10, group=True)


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def _sockets_of(pid: int) -> set[str]:
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(target[len("socket:[") : -1])
    return held


def _process_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def _workers(port: int, server: int) -> dict[int, set[str]]:
    """The processes of ``server``'s tree that hold a socket listening on ``port``, with
    those sockets (their inodes)."""
    listening = _listening_inodes(port)
    found: dict[int, set[str]] = {}
    for pid in _process_tree(server):
        try:
            mine = _sockets_of(pid) & listening
        except OSError:  # the process ended meanwhile
            continue
        if mine:
            found[pid] = mine
    return found


def test_each_worker_listens_on_a_socket_of_its_own(
    two_workers: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, server = two_workers
    holders = _workers(port, server.pid)
    assert server.pid not in holders, "the supervisor listens: the workers share its socket"
    assert len(holders) == 2, holders
    first, second = holders.values()
    assert len(first) == len(second) == 1 and first != second, holders

    # New connections go to both (32 to one alone: a chance of one in two billion).
    served = set()
    for _ in range(32):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            served.add(int(http.get("/").text))
    assert served == set(holders), (served, holders)


def test_a_second_server_on_the_same_port_is_refused(
    two_workers: tuple[int, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    port, server = two_workers
    second = subprocess.run(
        _server(port),
        env=environment_without_amanat(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )
    assert second.returncode != 0
    assert f"already listens on 127.0.0.1:{port}" in second.stderr
    assert server.poll() is None
    assert len(_workers(port, server.pid)) == 2
