"""Pausing Python's cyclic garbage collector while a statement becomes objects.

Reading a large statement makes a million small objects (records, or a camt document's
elements) and keeps them all. Each collection their allocations set off walks every live
object, those made so far included, so the collector's work grows with the file and cost
a third of a large parse, while nothing a parser makes is a reference cycle for it to
free. So parsers pause it. Overlapping pauses (two imports in two threads) share one: the
collector comes back, if it was on, when the last ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
