"""Waiting for a stop signal with a time limit, the one way every background loop does.

``asyncio.timeout`` runs the wait in the caller's own task, so a cancellation that
arrives as the wait ends is never lost; on Python 3.11 ``asyncio.wait_for`` could drop
one, and a loop that should have stopped went on (the change feed's close hung on it).
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait_for_stop(stop: asyncio.Event, seconds: float) -> None:
    """Return once ``stop`` is set or ``seconds`` have passed, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
