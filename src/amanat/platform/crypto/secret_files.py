"""Files of generated secrets (the sandbox master key, the audit seal key, the sandbox
credentials) written so that processes starting together agree on one.

Two processes starting at once on a fresh sandbox both find no key file. Had each simply
created it, the loser would fail, read a half-written file, or overwrite the winner's key
(and so lose every row encrypted under it). :func:`create_once` writes the whole file
under a private temporary name and then hard-links it into place: ``link`` fails when the
name exists, so exactly one process's file appears, complete, and every other process
reads that one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def create_once(path: Path, content: bytes, *, mode: int = 0o600) -> bool:
    """Create ``path`` holding ``content`` unless it exists; True when this call made it.

    Either way, when it returns, ``path`` holds a complete file (the winner's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _write_temporary(path, content, mode)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True


def replace_atomically(path: Path, content: bytes, *, mode: int = 0o600) -> None:
    """Write ``path`` whole or not at all: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _write_temporary(path, content, mode)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (made if missing) for the block;
    another process asking for it waits. The lock goes with the process if it dies."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_temporary(beside: Path, content: bytes, mode: int) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{beside.name}.", suffix=".tmp", dir=beside.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)
