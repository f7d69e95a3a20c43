"""platform/http/listeners.py: when each worker gets its own socket, that a listener
unpickled in a worker is a socket bound in the address's SO_REUSEPORT group, and that a
taken address is refused before any worker starts. Real sockets on 127.0.0.1."""

from __future__ import annotations

import pickle
import socket
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest
from tests.support.processes import free_port

from amanat.platform.http.listeners import (
    AddressInUse,
    ReusePortListener,
    check_address_free,
    spreads_connections,
)

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT spreads on Linux")


def test_only_several_workers_on_a_fixed_port_get_sockets_of_their_own() -> None:
    on_linux = sys.platform == "linux"
    assert spreads_connections(2, 8000) is on_linux
    assert spreads_connections(1, 8000) is False
    assert spreads_connections(4, 0) is False  # each would listen on a port of its own


def _unpickled(shipped: bytes) -> socket.socket:
    """What a uvicorn worker gets from its supervisor's list of sockets."""
    sock = pickle.loads(shipped)  # noqa: S301 - bytes this test pickled itself
    assert isinstance(sock, socket.socket)
    return sock


@contextmanager
def _listening(sock: socket.socket) -> Iterator[socket.socket]:
    with closing(sock):
        sock.listen(8)
        yield sock


@linux_only
def test_a_listener_unpickled_in_each_worker_binds_one_socket_per_worker() -> None:
    port = free_port()
    shipped = pickle.dumps(ReusePortListener("127.0.0.1", port))
    with (
        _listening(_unpickled(shipped)) as first,
        _listening(_unpickled(shipped)) as second,
    ):
        assert isinstance(first, socket.socket) and isinstance(second, socket.socket)
        assert first.fileno() != second.fileno()
        for sock in (first, second):
            assert sock.getsockname() == ("127.0.0.1", port)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            assert sock.get_inheritable()
        # The kernel hands each new connection to one of them, never to neither.
        accepted = 0
        for _ in range(4):
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        for sock in (first, second):
            sock.setblocking(False)
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                accepted += 1
        assert accepted == 4


@linux_only
def test_a_free_address_passes_the_check_and_stays_free() -> None:
    port = free_port()
    check_address_free("127.0.0.1", port)
    check_address_free("127.0.0.1", port)  # the check's own bind was let go


@linux_only
def test_a_server_of_the_same_user_with_reuse_port_is_not_joined_silently() -> None:
    port = free_port()
    with _listening(_unpickled(pickle.dumps(ReusePortListener("127.0.0.1", port)))):
        with pytest.raises(AddressInUse, match="already listens"):
            check_address_free("127.0.0.1", port)
        with pytest.raises(AddressInUse):
            check_address_free("0.0.0.0", port)  # noqa: S104 - the wildcard's own check


def test_any_other_listener_on_the_port_is_refused_with_a_clear_error() -> None:
    port = free_port()
    other = socket.socket()
    other.bind(("127.0.0.1", port))
    with (
        _listening(other),
        pytest.raises(AddressInUse, match=f"already listens on 127.0.0.1:{port}"),
    ):
        check_address_free("127.0.0.1", port)


def test_a_port_bound_by_another_socket_is_refused_even_before_it_listens() -> None:
    port = free_port()
    with closing(socket.socket()) as other:
        other.bind(("127.0.0.1", port))
        with pytest.raises(AddressInUse, match=f"cannot listen on 127.0.0.1:{port}"):
            check_address_free("127.0.0.1", port)


def test_amanat_serve_on_a_taken_port_says_so_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from amanat.cli import app as cli_app

    port = free_port()
    # `serve --host/--port` set these for its workers: restored after the test.
    monkeypatch.setenv("AMANAT_HTTP__HOST", "127.0.0.1")
    monkeypatch.setenv("AMANAT_HTTP__PORT", str(port))
    other = socket.socket()
    other.bind(("127.0.0.1", port))
    with _listening(other):
        result = CliRunner().invoke(
            cli_app, ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
        )
    assert result.exit_code == 1
    assert f"cannot serve: something already listens on 127.0.0.1:{port}" in result.output
