"""Cap glibc's malloc arenas in a server process, so its memory stays bounded.

glibc gives each thread that allocates its own arena (up to eight per core) and keeps
memory freed in one arena for that arena's later use. A SQLite-backed server runs one
thread per pooled connection (aiosqlite), each allocating its page cache and statements,
so a long-running process held a dozen partly empty arenas and its RSS grew with the
number of threads rather than with what it stores. Two arenas is the usual production
setting (``MALLOC_ARENA_MAX=2``); it must be in force before the threads start, which an
environment variable set by whoever starts the process cannot promise, so the server sets
it itself, through ``mallopt``, as it starts. No library does this; on a C library other
than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import os

_M_ARENA_MAX = -8  # glibc's malloc.h
DEFAULT_ARENAS = 2


def cap_malloc_arenas(arenas: int | None = None) -> bool:
    """Limit glibc to ``arenas`` malloc arenas (``MALLOC_ARENA_MAX`` if set, else 2);
    answers whether the limit was set."""
    if arenas is None:
        configured = os.environ.get("MALLOC_ARENA_MAX", "")
        arenas = int(configured) if configured.isdigit() and int(configured) > 0 else DEFAULT_ARENAS
    try:
        # The process's own symbols, which hold the C library's: no search for its file.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
