"""The bench starts a load only once every worker of the server listens: with a socket per
worker (platform/http/listeners.py) a load started when the first worker answers would
send all its connections to that one. Real sockets on 127.0.0.1; nothing is timed."""

from __future__ import annotations

import http.server
import pickle
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from bench.procs import Child, listening_sockets, wait_ready
from tests.support.processes import free_port

from amanat.platform.http.listeners import ReusePortListener

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc/net/tcp: Linux")


def _reuse_port_socket(port: int) -> socket.socket:
    sock = pickle.loads(pickle.dumps(ReusePortListener("127.0.0.1", port)))  # noqa: S301
    assert isinstance(sock, socket.socket)
    return sock


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _answering(sock: socket.socket) -> Iterator[None]:
    """An HTTP server answering 200 on ``sock`` (one worker of a server)."""
    server = http.server.HTTPServer(sock.getsockname(), _Ok, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    sock.listen(16)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def child(tmp_path: Path) -> Iterator[Child]:
    """A live process standing in for the server's process group."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield Child("server", process, tmp_path / "server.log")
    finally:
        process.kill()
        process.wait()


def test_listening_sockets_counts_each_worker_socket_on_the_port() -> None:
    port = free_port()
    assert listening_sockets(port) == 0
    with closing(_reuse_port_socket(port)) as first, closing(_reuse_port_socket(port)) as second:
        assert listening_sockets(port) == 0  # bound, not yet listening
        first.listen(8)
        assert listening_sockets(port) == 1
        second.listen(8)
        assert listening_sockets(port) == 2


def test_a_server_whose_second_worker_does_not_listen_yet_is_not_ready(child: Child) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/readyz"
    with closing(_reuse_port_socket(port)) as first, _answering(first):
        wait_ready(url, child, timeout=30, workers=1)
        with pytest.raises(RuntimeError, match="1 of 2 workers listening"):
            wait_ready(url, child, timeout=1, workers=2)
        with closing(_reuse_port_socket(port)) as second, _answering(second):
            wait_ready(url, child, timeout=30, workers=2)
