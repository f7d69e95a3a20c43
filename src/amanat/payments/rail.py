"""The rail port: what amanat asks of a payment rail, and how a rail call can fail.

The failure types say what the caller may safely do next:

- :class:`RailUnavailable`: the rail did not take the instruction (5xx, connection
  refused, circuit open). Retrying with the same ``end_to_end_id`` is safe.
- :class:`RailTimeout`: the instruction may or may not have been taken (no answer in
  time, connection dropped mid-answer). Never assume it failed: retry with the same
  ``end_to_end_id`` (the rail is idempotent on it) or ask :meth:`RailAdapter.status`.
- :class:`RailRejected`: a definite, synchronous refusal (400). Retrying the same
  instruction will be refused again.
- :class:`RailAlreadyHolds` (a :class:`RailTimeout`): 409, the rail already has this
  ``end_to_end_id`` under another body; it is not a refusal: enquire.

Asynchronous outcomes (settled, rejected, approved, ...) arrive later as
:class:`RailCallback` or from :meth:`RailAdapter.status`, ordered by ``sequence``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, get_args

from amanat.kernel.rail_signatures import InvalidCallback, InvalidCallbackSignature

__all__ = [
    "FAILURE_STATUSES",
    "SUCCESS_STATUSES",
    "TERMINAL_STATUSES",
    "Acceptance",
    "InvalidCallback",
    "InvalidCallbackSignature",
    "RailAdapter",
    "RailAlreadyHolds",
    "RailCallback",
    "RailError",
    "RailRejected",
    "RailStatus",
    "RailStatusName",
    "RailTimeout",
    "RailUnavailable",
    "Submission",
    "TransferKind",
]

TransferKind = Literal["credit_transfer", "request_to_pay"]
RailStatusName = Literal["accepted", "settled", "rejected", "approved", "declined", "expired"]

RAIL_STATUSES: frozenset[str] = frozenset(get_args(RailStatusName))
SUCCESS_STATUSES: frozenset[str] = frozenset({"settled", "approved"})
FAILURE_STATUSES: frozenset[str] = frozenset({"rejected", "declined", "expired"})
TERMINAL_STATUSES: frozenset[str] = SUCCESS_STATUSES | FAILURE_STATUSES


class RailError(Exception):
    """Base of every failure of a call to the rail."""


class RailUnavailable(RailError):
    """The rail did not take the instruction; safe to retry (after ``retry_after`` s)."""

    def __init__(self, message: str = "rail unavailable", *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RailTimeout(RailError):
    """The outcome is unknown. Do NOT treat as failed: resubmit the same id or enquire."""


class RailAlreadyHolds(RailTimeout):
    """The rail already holds a transfer under this ``end_to_end_id`` and refused a body
    that differs from the first (409 ``duplicate_end_to_end_id``). Never a refusal of the
    payment: the transfer exists and may move money, so its outcome is the rail's, found
    by a status enquiry like any unknown outcome."""


class RailRejected(RailError):
    """The rail definitely refused the instruction; ``code`` is the rail's error code."""

    def __init__(self, code: str, reason: str | None = None, *, status_code: int | None = None):
        super().__init__(f"{code}: {reason}" if reason else code)
        self.code = code
        self.reason = reason
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class Submission:
    """One instruction to the rail. ``end_to_end_id`` is amanat's payment id.

    ``creditor``/``debtor`` are ``{"iban": ...}`` or ``{"raast_id": ...}``, optionally with
    ``"name"``. ``expires_at`` is only for ``request_to_pay``.
    """

    end_to_end_id: str
    kind: TransferKind
    amount: int
    currency: str
    creditor: Mapping[str, str]
    debtor: Mapping[str, str] | None
    callback_url: str
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Acceptance:
    end_to_end_id: str
    rail_reference: str


@dataclass(frozen=True, slots=True)
class RailStatus:
    end_to_end_id: str
    status: str
    reason_code: str | None
    reason: str | None
    sequence: int
    updated_at: datetime
    kind: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class RailCallback:
    event_id: str
    end_to_end_id: str
    status: str
    reason_code: str | None
    reason: str | None
    sequence: int
    occurred_at: datetime
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class RailAdapter(Protocol):
    """A payment rail as amanat uses it."""

    async def submit(self, sub: Submission) -> Acceptance:
        """Hand an instruction to the rail; idempotent on ``sub.end_to_end_id``.

        Raises :class:`RailUnavailable`, :class:`RailTimeout` or :class:`RailRejected`.
        """
        ...

    async def status(self, end_to_end_id: str) -> RailStatus | None:
        """The rail's current view of a transfer, or ``None`` if it never received it."""
        ...

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> RailCallback:
        """Authenticate and parse a callback; raises :class:`InvalidCallback` (or its
        subclass :class:`InvalidCallbackSignature`)."""
        ...

    async def account_title(self, *, iban: str | None, raast_id: str | None) -> str | None:
        """The rail's title fetch: the holder's name behind an account at any bank, or
        ``None`` when the rail knows no such account. Raises :class:`RailUnavailable` or
        :class:`RailTimeout` when it cannot tell."""
        ...
