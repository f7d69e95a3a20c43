"""One bench run per checkout at a time.

Every run uses the same ``var/bench/`` (SQLite files, master key, credentials, logs), the
same PostgreSQL database and the same port. A second run starting while the first goes on
would recreate the first's directory, regenerate its master key and drop its database,
destroying the data the first is measuring. So a run holds an exclusive lock on
``var/bench/run.lock`` and a second run refuses to start, naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class BenchBusy(SystemExit):
    """Another bench run holds the lock."""


@contextlib.contextmanager
def hold(lock_path: Path) -> Iterator[None]:
    """Hold the run lock for the block, or raise :class:`BenchBusy` at once. The kernel
    releases it when the holder exits, however it exits, so a crashed run leaves no
    stale lock behind."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise BenchBusy(
                f"another bench run (pid {holder}) is using {lock_path.parent}; wait for it "
                "to finish, or stop it, before starting a new one"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
