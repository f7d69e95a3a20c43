"""The sandbox rail's state machine: transfers, outcomes, timers and callback delivery.

Transfers are kept in a :class:`~amanat.sandbox_rail.store.RailStore` (a SQLite file of
the rail's own when ``settings.state_file`` is set, so a restart forgets nothing; in memory
otherwise) and guarded by one asyncio lock. After a restart, transfers still ``accepted``
resume their lifecycle on the first call to the rail. Each accepted transfer gets a
lifecycle task (wait, then move to its final status) and its callbacks go out through a
per-transfer chain of delivery tasks, so they leave in the order they were queued (which
is what the out-of-order test value plays with). Time comes from ``settings.clock`` and
waiting from ``settings.sleep``, so tests can drive it deterministically; callbacks go
through ``settings.http`` if given.

This simulates an external system: it imports nothing of amanat but the pure domain rules
and the callback signature scheme.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, model_validator
from ulid import ULID

from amanat.kernel.clock import Clock, SystemClock, format_timestamp
from amanat.kernel.errors import InvalidInput
from amanat.kernel.money import MAX_AMOUNT_MINOR
from amanat.kernel.pakistan import parse_iban, parse_raast_id
from amanat.sandbox_rail.magic import (
    CREDIT_TRANSFER,
    MAGIC_VALUES,
    NO_ANSWER,
    REQUEST_TO_PAY,
    MagicValue,
    Outcome,
    final_status,
    magic_for,
)
from amanat.sandbox_rail.signing import callback_headers
from amanat.sandbox_rail.store import RailStore

__all__ = [
    "CallbackEvent",
    "Delivery",
    "DuplicateEndToEndId",
    "InvalidTransfer",
    "Party",
    "RailDown",
    "RailEngine",
    "RailProtocolError",
    "RailSettings",
    "Submitted",
    "Transfer",
    "TransferRequest",
]

log = structlog.get_logger("amanat.sandbox_rail")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(kw_only=True)
class RailSettings:
    """Configuration of one sandbox rail.

    ``callback_secret`` signs callbacks (amanat verifies with the same secret);
    ``admin_token`` guards ``/admin/*``. ``state_file`` keeps the transfers across restarts
    (``None``: in memory only). ``outbound_concurrency`` bounds the messages to amanat in
    flight at once (callbacks and dispute messages); the rest wait their turn, as behind a
    real rail's few connections, instead of piling every one onto amanat together.
    ``clock``, ``sleep`` and ``http`` are injectable for tests; when ``http`` is ``None``
    the engine opens (and closes) its own client.
    """

    callback_secret: str
    admin_token: str
    settle_delay: float = 0.2
    timeout_hold_seconds: float = 15.0
    delayed_callback_seconds: float = 10.0
    unavailable_submissions: int = 2
    unavailable_retry_after: int = 1
    default_expiry_seconds: float = 900.0
    callback_attempts: int = 4
    callback_backoff_seconds: float = 0.5
    callback_timeout_seconds: float = 5.0
    outbound_concurrency: int = 16
    state_file: Path | None = None
    clock: Clock = field(default_factory=SystemClock)
    sleep: Sleep = asyncio.sleep
    http: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        if not self.callback_secret:
            raise ValueError("callback_secret must not be empty")
        if not self.admin_token:
            raise ValueError("admin_token must not be empty")
        for name in (
            "settle_delay",
            "timeout_hold_seconds",
            "delayed_callback_seconds",
            "default_expiry_seconds",
            "callback_backoff_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.callback_attempts < 1:
            raise ValueError("callback_attempts must be at least 1")
        if self.callback_timeout_seconds <= 0:
            raise ValueError("callback_timeout_seconds must be positive")
        if self.outbound_concurrency < 1:
            raise ValueError("outbound_concurrency must be at least 1")


# --------------------------------------------------------------------------------------
# The wire model of a submission
# --------------------------------------------------------------------------------------


class Party(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iban: str | None = None
    raast_id: str | None = None
    name: Annotated[str, Field(max_length=140)] | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> Party:
        if (self.iban is None) == (self.raast_id is None):
            raise ValueError("give exactly one of iban or raast_id")
        return self


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    end_to_end_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
    type: Literal["credit_transfer", "request_to_pay"]
    amount: Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_MINOR)]
    currency: Literal["PKR"]
    creditor: Party
    debtor: Party | None = None
    callback_url: Annotated[str, Field(min_length=1, max_length=2048)]
    expires_at: AwareDatetime | None = None


# --------------------------------------------------------------------------------------
# Errors the HTTP layer turns into answers
# --------------------------------------------------------------------------------------


class RailProtocolError(Exception):
    """A synchronous refusal: ``status`` and body ``{"error": error, "detail": detail}``."""

    status = 400

    def __init__(
        self,
        error: str,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


class InvalidTransfer(RailProtocolError):
    status = 400


class DuplicateEndToEndId(RailProtocolError):
    status = 409

    def __init__(self) -> None:
        super().__init__(
            "duplicate_end_to_end_id",
            "This end_to_end_id was already submitted with a different body.",
        )


class RailDown(RailProtocolError):
    status = 503

    def __init__(self, retry_after: int) -> None:
        super().__init__("rail_unavailable", headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    event_id: str
    end_to_end_id: str
    status: str
    reason_code: str | None
    reason: str | None
    sequence: int
    occurred_at: datetime

    def payload(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "end_to_end_id": self.end_to_end_id,
            "status": self.status,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "sequence": self.sequence,
            "occurred_at": format_timestamp(self.occurred_at),
        }

    def body(self) -> bytes:
        return json.dumps(self.payload(), separators=(",", ":")).encode("utf-8")


@dataclass(slots=True)
class Transfer:
    end_to_end_id: str
    kind: str
    amount: int
    currency: str
    creditor: dict[str, str]
    debtor: dict[str, str] | None
    callback_url: str
    expires_at: datetime | None
    fingerprint: str
    rail_reference: str
    magic: MagicValue
    created_at: datetime
    status: str = "accepted"
    reason_code: str | None = None
    reason: str | None = None
    sequence: int = 0
    updated_at: datetime | None = None
    events: list[CallbackEvent] = field(default_factory=list)
    delivery_tail: asyncio.Task[None] | None = None

    @property
    def acceptance(self) -> dict[str, Any]:
        return {
            "end_to_end_id": self.end_to_end_id,
            "status": "accepted",
            "rail_reference": self.rail_reference,
        }

    def record(self) -> dict[str, Any]:
        """What the store keeps (the delivery chain is this process's own): every field
        but that, the magic value by its code and each event without the transfer's id."""
        stored = {name: getattr(self, name) for name in _STORED_TRANSFER_FIELDS}
        stored["magic"] = self.magic.code
        stored["events"] = [
            {name: getattr(event, name) for name in _STORED_EVENT_FIELDS} for event in self.events
        ]
        return stored

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Transfer:
        e2e = record["end_to_end_id"]
        stored = {name: record[name] for name in _STORED_TRANSFER_FIELDS}
        stored["magic"] = _MAGIC_BY_CODE[record["magic"]]
        stored["events"] = [CallbackEvent(end_to_end_id=e2e, **event) for event in record["events"]]
        return cls(**stored)

    def view(self) -> dict[str, Any]:
        """The status-enquiry answer."""
        return {
            "end_to_end_id": self.end_to_end_id,
            "type": self.kind,
            "status": self.status,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "sequence": self.sequence,
            "updated_at": format_timestamp(self.updated_at or self.created_at),
        }


# Field names in declaration order, so a stored record keeps the order it always had.
_STORED_TRANSFER_FIELDS = tuple(f.name for f in fields(Transfer) if f.name != "delivery_tail")
_STORED_EVENT_FIELDS = tuple(f.name for f in fields(CallbackEvent) if f.name != "end_to_end_id")


_MAGIC_BY_CODE = {value.code: value for value in MAGIC_VALUES}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to deliver a callback: ``status_code`` or ``error`` says how it went."""

    event_id: str
    end_to_end_id: str
    sequence: int
    url: str
    attempt: int
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Submitted:
    """The answer to a submission; the HTTP layer waits ``hold_seconds`` before sending."""

    response: dict[str, Any]
    hold_seconds: float = 0.0
    replay: bool = False


@dataclass(slots=True)
class Faults:
    down_until: datetime | None = None
    latency_ms: int = 0
    error_rate: float = 0.0  # share of /v1 calls answered 503, at random


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


def _normalize_party(party: Party, where: str) -> dict[str, str]:
    try:
        if party.iban is not None:
            out = {"iban": str(parse_iban(party.iban))}
        else:
            out = {"raast_id": str(parse_raast_id(party.raast_id or ""))}
    except InvalidInput as exc:
        field_name = "iban" if party.iban is not None else "raast_id"
        raise InvalidTransfer(
            exc.code, {"field": f"{where}.{field_name}", "reason": exc.reason, "message": str(exc)}
        ) from None
    if party.name is not None and party.name.strip():
        out["name"] = party.name.strip()
    return out


class RailEngine:
    def __init__(self, settings: RailSettings) -> None:
        self.settings = settings
        self.faults = Faults()
        self.deliveries: list[Delivery] = []
        self._lock = asyncio.Lock()
        self.store = RailStore(settings.state_file)
        # The transfers this process works on (their timers and delivery chains).
        self._transfers: dict[str, Transfer] = {}
        self._resumed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._http = settings.http
        self._owns_http = settings.http is None
        self._outbound = asyncio.Semaphore(settings.outbound_concurrency)
        self._closed = False

    # -- time ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.settings.clock.now()

    # -- submissions --------------------------------------------------------------------

    def _normalize(self, req: TransferRequest) -> tuple[dict[str, Any], datetime | None]:
        creditor = _normalize_party(req.creditor, "creditor")
        debtor = _normalize_party(req.debtor, "debtor") if req.debtor is not None else None
        try:
            url: httpx.URL | None = httpx.URL(req.callback_url)
        except httpx.InvalidURL:
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise InvalidTransfer(
                "invalid_request", {"field": "callback_url", "message": "must be an http(s) URL"}
            )
        expires_at = req.expires_at
        if req.type == CREDIT_TRANSFER and expires_at is not None:
            raise InvalidTransfer(
                "invalid_request",
                {"field": "expires_at", "message": "only a request_to_pay expires"},
            )
        if req.type == REQUEST_TO_PAY and debtor is None:
            raise InvalidTransfer(
                "invalid_request",
                {"field": "debtor", "message": "a request_to_pay needs a debtor"},
            )
        canonical = {
            "end_to_end_id": req.end_to_end_id,
            "type": req.type,
            "amount": req.amount,
            "currency": req.currency,
            "creditor": creditor,
            "debtor": debtor,
            "callback_url": req.callback_url,
            "expires_at": format_timestamp(expires_at) if expires_at is not None else None,
        }
        return canonical, expires_at

    async def submit(self, req: TransferRequest) -> Submitted:
        """Accept a transfer (or replay the answer for a known id).

        Raises :class:`InvalidTransfer`, :class:`DuplicateEndToEndId` or :class:`RailDown`.
        """
        canonical, expires_at = self._normalize(req)
        fingerprint = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        e2e = req.end_to_end_id
        async with self._lock:
            self._resume()
            existing = self._known(e2e)
            if existing is not None:
                if existing.fingerprint != fingerprint:
                    raise DuplicateEndToEndId()
                self.store.replayed(e2e)
                return Submitted(existing.acceptance, replay=True)
            magic = magic_for(req.type, req.amount)
            # Counted in the store: a restarted rail does not start refusing afresh.
            if magic.outcome is Outcome.UNAVAILABLE_FIRST and (
                self.store.next_number(f"refused:{e2e}") <= self.settings.unavailable_submissions
            ):
                raise RailDown(self.settings.unavailable_retry_after)
            now = self.now()
            if expires_at is not None and expires_at <= now:
                # Checked for new transfers only: a replay after expiry still replays.
                raise InvalidTransfer(
                    "invalid_request", {"field": "expires_at", "message": "is in the past"}
                )
            if req.type == REQUEST_TO_PAY and expires_at is None:
                expires_at = now + timedelta(seconds=self.settings.default_expiry_seconds)
            transfer = Transfer(
                end_to_end_id=e2e,
                kind=req.type,
                amount=req.amount,
                currency=req.currency,
                creditor=canonical["creditor"],
                debtor=canonical["debtor"],
                callback_url=req.callback_url,
                expires_at=expires_at,
                fingerprint=fingerprint,
                rail_reference=f"RRN{now:%y%m%d}{self.store.next_number('reference'):06d}",
                magic=magic,
                created_at=now,
            )
            accepted = self._transition(transfer, "accepted", None, None)
            if not self.store.add(transfer.record()):  # another rail process took it first
                taken = self._known(e2e)
                if taken is None or taken.fingerprint != fingerprint:
                    raise DuplicateEndToEndId()
                return Submitted(taken.acceptance, replay=True)
            self._transfers[e2e] = transfer
            if magic.outcome not in (Outcome.NO_CALLBACK, Outcome.OUT_OF_ORDER):
                self._enqueue(transfer, accepted)
            self._spawn(self._lifecycle(transfer))
        log.info("rail.accepted", end_to_end_id=e2e, scenario=magic.code)
        hold = self.settings.timeout_hold_seconds if magic.outcome is Outcome.HOLD_RESPONSE else 0
        return Submitted(transfer.acceptance, hold_seconds=hold)

    def _transition(
        self, transfer: Transfer, status: str, reason_code: str | None, reason: str | None
    ) -> CallbackEvent:
        now = self.now()
        transfer.status = status
        transfer.reason_code = reason_code
        transfer.reason = reason
        transfer.sequence += 1
        transfer.updated_at = now
        event = CallbackEvent(
            event_id=f"rev_{ULID()}",
            end_to_end_id=transfer.end_to_end_id,
            status=status,
            reason_code=reason_code,
            reason=reason,
            sequence=transfer.sequence,
            occurred_at=now,
        )
        transfer.events.append(event)
        return event

    def _known(self, end_to_end_id: str) -> Transfer | None:
        known = self._transfers.get(end_to_end_id)
        if known is not None:
            return known
        record = self.store.get(end_to_end_id)
        return Transfer.from_record(record) if record is not None else None

    def _resume(self) -> None:
        """Once per process: restart the timers of transfers a previous run left
        ``accepted`` (a killed rail must still settle what it accepted)."""
        if self._resumed:
            return
        self._resumed = True
        for record in self.store.with_status("accepted"):
            transfer = Transfer.from_record(record)
            if transfer.end_to_end_id not in self._transfers:
                self._transfers[transfer.end_to_end_id] = transfer
                self._spawn(self._lifecycle(transfer))

    async def _lifecycle(self, transfer: Transfer) -> None:
        magic = transfer.magic
        # Counted from acceptance, so a transfer resumed after a restart is not late twice.
        elapsed = (self.now() - transfer.created_at).total_seconds()
        delay = max(0.0, self.settings.settle_delay - elapsed)
        expire = magic.outcome is Outcome.EXPIRE
        if transfer.expires_at is not None:
            until_expiry = max(0.0, (transfer.expires_at - self.now()).total_seconds())
            if expire or until_expiry < delay:
                delay, expire = until_expiry, True
        await self.settings.sleep(delay)
        async with self._lock:
            if transfer.status != "accepted":
                return
            stored = self.store.get(transfer.end_to_end_id)
            if stored is not None and stored["status"] != "accepted":
                return  # another rail process sharing the file settled it
            if expire:
                status = "expired"
                reason_code, reason = NO_ANSWER.reason_code, NO_ANSWER.reason
            else:
                status = final_status(magic, transfer.kind)
                reason_code, reason = (
                    (magic.reason_code, magic.reason) if not magic.succeeds else (None, None)
                )
            final = self._transition(transfer, status, reason_code, reason)
            self.store.save(transfer.record(), was="accepted")
            outcome = magic.outcome
            if outcome is Outcome.NO_CALLBACK:
                pass
            elif outcome is Outcome.OUT_OF_ORDER:
                self._enqueue(transfer, final)
                self._enqueue(transfer, transfer.events[0])
            elif outcome is Outcome.DUPLICATE_CALLBACK:
                self._enqueue(transfer, final)
                self._enqueue(transfer, final)
            elif outcome is Outcome.DELAY_CALLBACK:
                self._enqueue(transfer, final, delay=self.settings.delayed_callback_seconds)
            else:
                self._enqueue(transfer, final)
        log.info("rail.final", end_to_end_id=transfer.end_to_end_id, status=status)

    # -- callbacks ----------------------------------------------------------------------

    def _enqueue(self, transfer: Transfer, event: CallbackEvent, *, delay: float = 0.0) -> None:
        previous = transfer.delivery_tail
        task = self._spawn(self._deliver(transfer.callback_url, event, delay, previous))
        transfer.delivery_tail = task

    async def _deliver(
        self,
        url: str,
        event: CallbackEvent,
        delay: float,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # in order, whatever became of the one before
        if delay:
            await self.settings.sleep(delay)
        body = event.body()
        attempts = self.settings.callback_attempts
        for attempt in range(1, attempts + 1):
            status_code: int | None = None
            error: str | None = None
            try:
                response = await self.post(url, body, attempt=attempt)
                status_code = response.status_code
            except Exception as exc:  # noqa: BLE001 - any failure is a failed delivery, retried
                error = type(exc).__name__
            delivery = Delivery(
                event.event_id,
                event.end_to_end_id,
                event.sequence,
                url,
                attempt,
                status_code,
                error,
            )
            self.deliveries.append(delivery)
            if delivery.ok:
                return
            log.warning(
                "rail.callback_failed",
                end_to_end_id=event.end_to_end_id,
                attempt=attempt,
                status_code=status_code,
                error=error,
            )
            if attempt < attempts:
                await self.settings.sleep(
                    self.settings.callback_backoff_seconds * 2 ** (attempt - 1)
                )

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient()
        return self._http

    async def post(self, url: str, body: bytes, *, attempt: int) -> httpx.Response:
        """POST one signed message to amanat once a slot of ``outbound_concurrency`` is free.
        It is signed and timed from the send, not from the wait for a slot, so a wait never
        makes its timestamp stale."""
        async with self._outbound:
            headers = callback_headers(
                self.settings.callback_secret, body, self.now(), attempt=attempt
            )
            return await self._client().post(
                url, content=body, headers=headers, timeout=self.settings.callback_timeout_seconds
            )

    # -- enquiries ----------------------------------------------------------------------

    async def status(self, end_to_end_id: str) -> dict[str, Any] | None:
        async with self._lock:
            self._resume()
            record = self.store.get(end_to_end_id)  # the file is the truth, for all processes
            return Transfer.from_record(record).view() if record is not None else None

    def transfer(self, end_to_end_id: str) -> Transfer | None:
        return self._known(end_to_end_id)

    # -- faults -------------------------------------------------------------------------

    def set_faults(
        self,
        *,
        downtime_seconds: float | None = None,
        latency_ms: int | None = None,
        error_rate: float | None = None,
        reset: bool = False,
    ) -> dict[str, Any]:
        if reset:
            self.faults = Faults()
        if error_rate is not None:
            if not 0 <= error_rate <= 1:
                raise ValueError("error_rate must be between 0 and 1")
            self.faults.error_rate = error_rate
        if downtime_seconds is not None:
            self.faults.down_until = (
                self.now() + timedelta(seconds=downtime_seconds) if downtime_seconds > 0 else None
            )
        if latency_ms is not None:
            self.faults.latency_ms = latency_ms
        return self.fault_view()

    def unavailable_for(self) -> int | None:
        """Seconds (at least 1) until the rail is back, or ``None`` if it is up. With an
        error rate, that share of calls finds it down for a second."""
        if self.faults.error_rate and random.random() < self.faults.error_rate:
            return self.settings.unavailable_retry_after
        return self._down_for()

    def _down_for(self) -> int | None:
        until = self.faults.down_until
        if until is None:
            return None
        remaining = (until - self.now()).total_seconds()
        if remaining <= 0:
            self.faults.down_until = None
            return None
        return max(1, math.ceil(remaining))

    def fault_view(self) -> dict[str, Any]:
        retry_after = self._down_for()
        until = self.faults.down_until
        return {
            "down": retry_after is not None,
            "down_until": format_timestamp(until) if until is not None else None,
            "retry_after_seconds": retry_after,
            "latency_ms": self.faults.latency_ms,
            "error_rate": self.faults.error_rate,
        }

    async def apply_latency(self) -> None:
        if self.faults.latency_ms > 0:
            await self.settings.sleep(self.faults.latency_ms / 1000)

    # -- tasks --------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        if self._closed:
            task.cancel()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def pending_tasks(self) -> int:
        return sum(1 for task in self._tasks if not task.done())

    async def drain(self) -> None:
        """Wait until every timer and delivery (including ones they start) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel every timer and delivery; close the callback client if it is ours."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None
