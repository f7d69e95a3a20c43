"""What an outbox job handler answers, and the handler's shape.

A handler does the work of one job (talks to the outside world, outside any transaction)
and says how it ended; the job runtime (runtime.py) then records that, in one transaction
with the state change the handler asks for and the job that must follow it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from amanat.platform.jobs.ports import OutboxJob


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The job that must follow a finished one, queued in the same transaction."""

    kind: str
    after: timedelta
    payload: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Done:
    """The job is finished. ``change`` (a use case of the handler's capability) runs in the
    transaction that finishes the job and queues ``then``: all three commit together."""

    then: FollowUp | None = None
    change: Callable[[], Awaitable[object]] | None = None


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """Run the job again after about ``delay`` (the runtime adds jitter)."""

    delay: timedelta
    reason: str


@dataclass(frozen=True, slots=True)
class Dead:
    """Never run the job again; ``reason`` is kept on the row for operators."""

    reason: str


JobOutcome = Done | RetryAfter | Dead


class JobHandler(Protocol):
    async def __call__(self, job: OutboxJob) -> JobOutcome: ...
