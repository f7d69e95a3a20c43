"""amanat's side of the payment rail: the port, the HTTP adapter, callback signatures."""

from amanat.adapters.rails.base import (
    FAILURE_STATUSES,
    SUCCESS_STATUSES,
    TERMINAL_STATUSES,
    Acceptance,
    InvalidCallback,
    InvalidCallbackSignature,
    RailAdapter,
    RailAlreadyHolds,
    RailCallback,
    RailError,
    RailRejected,
    RailStatus,
    RailTimeout,
    RailUnavailable,
    Submission,
)
from amanat.adapters.rails.breaker import CircuitBreaker
from amanat.adapters.rails.raast_http import RaastHttpAdapter

__all__ = [
    "FAILURE_STATUSES",
    "SUCCESS_STATUSES",
    "TERMINAL_STATUSES",
    "Acceptance",
    "CircuitBreaker",
    "InvalidCallback",
    "InvalidCallbackSignature",
    "RaastHttpAdapter",
    "RailAdapter",
    "RailAlreadyHolds",
    "RailCallback",
    "RailError",
    "RailRejected",
    "RailStatus",
    "RailTimeout",
    "RailUnavailable",
    "Submission",
]
