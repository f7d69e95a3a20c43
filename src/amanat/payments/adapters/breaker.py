"""A small circuit breaker for calls to the rail.

``closed``: calls go through; ``failure_threshold`` consecutive failures (unavailable or
timed out) open it. ``open``: calls fail at once with ``RailUnavailable("circuit open")``
for ``reset_timeout`` seconds. ``half_open``: after the cool-down one trial call goes
through (the others still fail fast); success closes the circuit, failure opens it again
for another cool-down.

A definite answer from the rail, even a refusal, counts as success: the rail is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from amanat.payments.rail import RailUnavailable

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_timeout < 0:
            raise ValueError("reset_timeout must not be negative")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open`` (cool-down over, trial allowed or running)."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_timeout:
            return "half_open"
        return "open"

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_after(self) -> float | None:
        """Seconds until a trial call is allowed, while open."""
        if self._opened_at is None:
            return None
        return max(0.0, self.reset_timeout - (self._clock() - self._opened_at))

    def before_call(self) -> None:
        """Raise ``RailUnavailable("circuit open")`` unless a call may go through now."""
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return
        raise RailUnavailable("circuit open", retry_after=self.retry_after() or None)

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        was_trial = self._trial_in_flight
        self._trial_in_flight = False
        self._failures += 1
        if was_trial or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()

    def release(self) -> None:
        """End a call that neither succeeded nor failed (cancelled, unexpected error)."""
        self._trial_in_flight = False
