"""A pytest plugin that turns a hung test into a fast failure with a diagnosis.

A test whose setup, call and teardown together run longer than
``AMANAT_TEST_HANG_SECONDS`` (300 by default) is reported on stderr with every thread's
stack and every pending asyncio task's stack (where each coroutine is suspended, which a
thread dump of an event loop does not show), and the pytest process exits with status 3.
Without it a coroutine that waits forever holds CI until its wall-clock limit and says
nothing about where it waited. pytest-timeout dumps threads only, hence this.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

HANG_SECONDS = float(os.environ.get("AMANAT_TEST_HANG_SECONDS", "300"))
EXIT_STATUS = 3


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, asyncio.AbstractEventLoop) and obj.is_running()
    ]


def _dump_tasks(loop: asyncio.AbstractEventLoop, done: threading.Event) -> None:
    try:
        for task in asyncio.all_tasks(loop):
            print(f"\n--- task {task.get_name()}: {task!r}", file=sys.stderr)
            for line in _await_chain(task.get_coro()):
                print(f"    {line}", file=sys.stderr)
    finally:
        done.set()


def _await_chain(coro: Any) -> Iterator[str]:
    """Each frame the task is suspended in, outermost first (a task's own stack shows
    only the outermost)."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            yield f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        awaited = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if awaited is None or not (hasattr(awaited, "cr_frame") or hasattr(awaited, "gi_frame")):
            if awaited is not None:
                yield f"awaiting {awaited!r}"
            return
        coro = awaited


def _report_hang(config: pytest.Config, nodeid: str) -> None:
    # pytest captures file descriptor 2 itself; the report must reach the real stderr.
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=False)
    err = sys.stderr
    print(f"\n\nHANG: {nodeid} still running after {HANG_SECONDS:.0f} s", file=err)
    faulthandler.dump_traceback(file=err, all_threads=True)
    for loop in _running_loops():
        done = threading.Event()
        loop.call_soon_threadsafe(_dump_tasks, loop, done)
        done.wait(10)
    err.flush()
    os._exit(EXIT_STATUS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    timer = threading.Timer(HANG_SECONDS, _report_hang, args=(item.config, item.nodeid))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
