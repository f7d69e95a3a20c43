"""Each server process listens on a socket of its own, so connections spread evenly.

With several workers, uvicorn binds one socket in its supervisor and every worker accepts
from it. The kernel wakes whichever worker is waiting first, and uvloop then accepts every
connection pending in one go, so a burst of new connections lands on one worker. A
keep-alive connection stays with the worker that accepted it. In the bench (two workers,
64 connections opened at once), one worker held about 40 of the 64 in two runs.
Its requests waited about half as long again as the other's and made the tail of the
latency (issue [09]).

On Linux, ``SO_REUSEPORT`` lets each worker bind its own socket to the same address, and
the kernel hands each new connection to one of them by a hash of its addresses. This is
what nginx's ``reuseport``, gunicorn's ``reuse_port`` and granian do.

Written here because uvicorn has no such option (its pull request #2472, which would
add one, is still open). Its supervisor passes the same list of sockets to every worker it starts
or restarts, pickled. So the listener goes in that list as a :class:`ReusePortListener`.
Unpickling it in the worker binds that worker's socket.

Where ``SO_REUSEPORT`` does not spread connections (macOS and the BSDs accept the option
but send everything to one socket), or with one worker, or with port 0 (each worker would
get a port of its own), the server keeps uvicorn's shared socket.

Any process of the same user can join a ``SO_REUSEPORT`` group. A second ``amanat serve``
started by mistake on the same port would share the traffic rather than fail to start.
:func:`check_address_free` refuses to start when a server already listens there.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from typing import Any, cast

import structlog

log = structlog.get_logger("amanat.http")


class AddressInUse(RuntimeError):
    """Something already listens on the address the server is to listen on."""


def spreads_connections(workers: int, port: int) -> bool:
    """Whether each of ``workers`` processes should bind its own socket."""
    return workers > 1 and port != 0 and sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` in the address's ``SO_REUSEPORT`` group. The server
    starts listening on it (``loop.create_server(sock=...)`` calls ``listen``)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def check_address_free(host: str, port: int) -> None:
    """Raise :class:`AddressInUse` when something already listens on ``host:port`` (or
    the address cannot be bound): the workers would otherwise join another server's
    reuse-port group silently, or each fail to start in turn."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    probe.settimeout(1.0)
    wildcard = host in ("", "0.0.0.0")  # noqa: S104 - a check of the setting, no bind
    target = "::1" if host == "::" else "127.0.0.1" if wildcard else host
    try:
        probe.connect((target, port))
    except OSError:
        pass  # refused, unreachable or no answer: nobody listens there
    else:
        raise AddressInUse(f"something already listens on {host}:{port}")
    finally:
        probe.close()
    try:
        bind_reuse_port(host, port).close()
    except OSError as exc:
        raise AddressInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def run(app: str, **options: Any) -> None:
    """``uvicorn.run(app, **options)``, but refused with :class:`AddressInUse` when the
    address is taken, and with several workers on Linux each worker on a socket of its
    own (see the module)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    host, port = str(options["host"]), int(options["port"])
    check_address_free(host, port)
    if not spreads_connections(int(options.get("workers") or 1), port):
        uvicorn.run(app, **options)
        return
    config = uvicorn.Config(app, **options)
    log.info("listening", url=f"http://{host}:{port}", workers=config.workers, reuse_port=True)
    # uvicorn hands this list to every worker it starts (pickled): see ReusePortListener.
    listener = cast(socket.socket, ReusePortListener(host, port))
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run ends on Ctrl+C
        Multiprocess(config, sockets=[listener]).run()


class ReusePortListener:
    """Stands in uvicorn's list of sockets; each worker that unpickles it gets a socket
    of its own, bound to the same address (see the module)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return bind_reuse_port, (self.host, self.port)
