"""The sandbox rail's disputes (protocol: docs/sandbox-rail.md, "Disputes").

A payer's bank disputes a transfer that settled: the rail records the dispute and tells
amanat with a signed POST to amanat's dispute URL (``…/rails/raast/disputes``, beside the
callback URL the transfer was submitted with), then, later, decides it and tells amanat
again. Each message is signed like a callback (``Rail-Signature``) and carries an
``event_id``; amanat applies it once and answers 2xx, and the same message again changes
nothing there. A message amanat did not answer, or answered 5xx, is retried like a
callback; a 4xx (amanat refused it: an unknown payment, a dispute not yet under review) is
final, and the rail's answer carries amanat's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from ulid import ULID

from amanat.kernel.clock import format_timestamp
from amanat.kernel.money import MAX_AMOUNT_MINOR

if TYPE_CHECKING:
    from amanat.sandbox_rail.engine import RailEngine

__all__ = ["DecisionRequest", "DisputeRequest", "Notified", "RailDisputes"]

log = structlog.get_logger("amanat.sandbox_rail")

SETTLED = frozenset({"settled", "approved"})
RAISED = "raised"
UNDELIVERED = "undelivered"


class DisputeRequest(BaseModel):
    """A payer's bank disputes a transfer (all of it, or ``amount``)."""

    model_config = ConfigDict(extra="forbid")

    end_to_end_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
    reason: Literal[
        "not_received",
        "duplicate",
        "fraud",
        "wrong_amount",
        "unauthorised",
        "service_not_provided",
        "other",
    ]
    amount: Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_MINOR)] | None = None
    notify_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = None


class DecisionRequest(BaseModel):
    """The rail's decision: ``won`` for the merchant, ``lost`` for the payer, or the
    payer's bank ``withdrawn`` the dispute."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["won", "lost", "withdrawn"]


@dataclass(frozen=True, slots=True)
class Notified:
    """How amanat answered a dispute message (after retries)."""

    status_code: int | None
    answer: Any
    attempts: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def view(self) -> dict[str, Any]:
        return {
            "status_code": self.status_code,
            "answer": self.answer,
            "attempts": self.attempts,
            "error": self.error,
        }


def dispute_url(callback_url: str) -> str:
    """amanat's dispute URL beside its callback URL (``…/callbacks`` -> ``…/disputes``)."""
    base, _, last = callback_url.rstrip("/").rpartition("/")
    return f"{base}/disputes" if last == "callbacks" else f"{callback_url.rstrip('/')}/disputes"


def _view(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "rail_dispute_id": record["rail_dispute_id"],
        "end_to_end_id": record["end_to_end_id"],
        "reason": record["reason"],
        "amount": record["amount"],
        "currency": record["currency"],
        "status": record["status"],
        "amanat_dispute_id": record.get("amanat_dispute_id"),
        "created_at": format_timestamp(record["created_at"]),
        "decided_at": format_timestamp(record["decided_at"]) if record.get("decided_at") else None,
    }


class DisputeRefused(Exception):
    """The rail refuses the request: ``status`` and ``{"error", "detail"}``."""

    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


class RailDisputes:
    def __init__(self, engine: RailEngine) -> None:
        self._engine = engine

    def get(self, rail_dispute_id: str) -> dict[str, Any] | None:
        record = self._engine.store.get_dispute(rail_dispute_id)
        return _view(record) if record is not None else None

    async def raise_dispute(self, request: DisputeRequest) -> tuple[int, dict[str, Any]]:
        """Record a dispute on a settled transfer and tell amanat: 201 once amanat took it;
        502 ``not_acknowledged`` (the dispute kept as ``undelivered``) if it did not."""
        engine = self._engine
        transfer = engine.transfer(request.end_to_end_id)
        if transfer is None:
            raise DisputeRefused(404, "unknown_transfer")
        if transfer.status not in SETTLED:
            raise DisputeRefused(409, "transfer_not_settled", {"status": transfer.status})
        amount = request.amount if request.amount is not None else transfer.amount
        if amount > transfer.amount:
            raise DisputeRefused(
                400, "invalid_request", {"field": "amount", "message": "more than the transfer"}
            )
        url = request.notify_url or dispute_url(transfer.callback_url)
        if httpx.URL(url).scheme not in ("http", "https"):
            raise DisputeRefused(
                400, "invalid_request", {"field": "notify_url", "message": "an http(s) URL"}
            )
        now = engine.now()
        record: dict[str, Any] = {
            "rail_dispute_id": f"RDP{now:%y%m%d}{engine.store.next_number('dispute'):06d}",
            "end_to_end_id": transfer.end_to_end_id,
            "reason": request.reason,
            "amount": amount,
            "currency": transfer.currency,
            "status": RAISED,
            "notify_url": url,
            "created_at": now,
            "decided_at": None,
            "amanat_dispute_id": None,
        }
        engine.store.add_dispute(record)
        notified = await self._notify(
            url,
            {
                "type": "dispute.raised",
                "rail_dispute_id": record["rail_dispute_id"],
                "end_to_end_id": record["end_to_end_id"],
                "reason": request.reason,
                "amount": amount,
                "currency": record["currency"],
            },
        )
        changed = dict(record)
        if notified.ok and isinstance(notified.answer, dict):
            changed["amanat_dispute_id"] = notified.answer.get("dispute_id")
        else:
            changed["status"] = UNDELIVERED
        engine.store.save_dispute(changed, was=RAISED)
        log.info("rail.dispute_raised", rail_dispute_id=record["rail_dispute_id"], ok=notified.ok)
        if not notified.ok:
            raise DisputeRefused(502, "not_acknowledged", notified.view())
        return 201, _view(changed) | {"amanat": notified.view()}

    async def decide(self, rail_dispute_id: str, request: DecisionRequest) -> dict[str, Any]:
        """Decide a raised dispute and tell amanat; the decision stands once amanat took it
        (the same decision again is answered as it is)."""
        engine = self._engine
        record = engine.store.get_dispute(rail_dispute_id)
        if record is None:
            raise DisputeRefused(404, "unknown_dispute")
        if record["status"] == request.outcome:
            return _view(record)
        if record["status"] != RAISED:
            raise DisputeRefused(409, "already_decided", {"status": record["status"]})
        notified = await self._notify(
            record["notify_url"],
            {
                "type": "dispute.decided",
                "rail_dispute_id": rail_dispute_id,
                "end_to_end_id": record["end_to_end_id"],
                "outcome": request.outcome,
            },
        )
        if not notified.ok:
            raise DisputeRefused(502, "not_acknowledged", notified.view())
        changed = dict(record) | {"status": request.outcome, "decided_at": engine.now()}
        engine.store.save_dispute(changed, was=RAISED)
        log.info("rail.dispute_decided", rail_dispute_id=rail_dispute_id, outcome=request.outcome)
        return _view(changed) | {"amanat": notified.view()}

    async def _notify(self, url: str, message: dict[str, Any]) -> Notified:
        """POST one signed message; retried (as callbacks are) on no answer or a 5xx."""
        engine = self._engine
        settings = engine.settings
        now: datetime = engine.now()
        message = {"event_id": f"rde_{ULID()}", **message, "occurred_at": format_timestamp(now)}
        body = json.dumps(message, separators=(",", ":")).encode("utf-8")
        last = Notified(None, None, 0)
        for attempt in range(1, settings.callback_attempts + 1):
            try:
                response = await engine.post(url, body, attempt=attempt)
            except Exception as exc:  # noqa: BLE001 - any failure is a failed delivery, retried
                last = Notified(None, None, attempt, type(exc).__name__)
            else:
                try:
                    answer: Any = response.json()
                except ValueError:
                    answer = response.text[:500]
                last = Notified(response.status_code, answer, attempt)
                if response.status_code < 500:
                    return last
            if attempt < settings.callback_attempts:
                await settings.sleep(settings.callback_backoff_seconds * 2 ** (attempt - 1))
        return last
