"""The Raast-like rail over HTTP (the protocol in docs/sandbox-rail.md).

One call, one attempt: retrying is the job runtime's decision (payments/jobs.py answers
RetryAfter on :class:`RailUnavailable` and chases :class:`RailTimeout` with status
enquiries), so this adapter only classifies what happened and keeps the circuit breaker
informed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from amanat.kernel.clock import Clock, SystemClock, format_timestamp, parse_timestamp
from amanat.kernel.rail_signatures import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    InvalidCallback,
    verify,
)
from amanat.payments.adapters.breaker import CircuitBreaker
from amanat.payments.rail import (
    RAIL_STATUSES,
    Acceptance,
    RailAlreadyHolds,
    RailCallback,
    RailRejected,
    RailStatus,
    RailTimeout,
    RailUnavailable,
    Submission,
)

__all__ = ["RaastHttpAdapter", "parse_callback", "submission_body"]

# The request never reached the rail: retrying cannot double anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_code(response: httpx.Response) -> tuple[str, str | None]:
    try:
        body = response.json()
    except ValueError:
        return f"http_{response.status_code}", None
    if not isinstance(body, dict):
        return f"http_{response.status_code}", None
    code = body.get("error")
    detail = body.get("detail")
    reason = detail if isinstance(detail, str) or detail is None else json.dumps(detail)
    return (code if isinstance(code, str) and code else f"http_{response.status_code}"), reason


def _opt_str(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string or null")
    return value


def _req_str(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _sequence(payload: Mapping[str, Any]) -> int:
    value = payload.get("sequence")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("sequence must be a non-negative integer")
    return value


def _status(payload: Mapping[str, Any]) -> str:
    status = _req_str(payload, "status")
    if status not in RAIL_STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return status


def parse_callback(body: bytes) -> RailCallback:
    """Parse a callback body (already authenticated). Raises :class:`InvalidCallback`."""
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("the body is not a JSON object")
        return RailCallback(
            event_id=_req_str(payload, "event_id"),
            end_to_end_id=_req_str(payload, "end_to_end_id"),
            status=_status(payload),
            reason_code=_opt_str(payload, "reason_code"),
            reason=_opt_str(payload, "reason"),
            sequence=_sequence(payload),
            occurred_at=parse_timestamp(_req_str(payload, "occurred_at")),
            raw=payload,
        )
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise InvalidCallback(f"Malformed callback: {exc}", reason="malformed_payload") from exc


def _parse_status(payload: Any) -> RailStatus:
    if not isinstance(payload, dict):
        raise ValueError("the body is not a JSON object")
    return RailStatus(
        end_to_end_id=_req_str(payload, "end_to_end_id"),
        status=_status(payload),
        reason_code=_opt_str(payload, "reason_code"),
        reason=_opt_str(payload, "reason"),
        sequence=_sequence(payload),
        updated_at=parse_timestamp(_req_str(payload, "updated_at")),
        kind=_opt_str(payload, "type"),
    )


def submission_body(sub: Submission) -> dict[str, Any]:
    body: dict[str, Any] = {
        "end_to_end_id": sub.end_to_end_id,
        "type": sub.kind,
        "amount": sub.amount,
        "currency": sub.currency,
        "creditor": dict(sub.creditor),
        "callback_url": sub.callback_url,
    }
    if sub.debtor is not None:
        body["debtor"] = dict(sub.debtor)
    if sub.expires_at is not None:
        body["expires_at"] = format_timestamp(sub.expires_at)
    return body


class RaastHttpAdapter:
    """:class:`~amanat.payments.rail.RailAdapter` for the HTTP rail."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        secret: str | bytes,
        *,
        timeout_seconds: float = 5.0,
        breaker: CircuitBreaker | None = None,
        clock: Clock | None = None,
        signature_tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    ) -> None:
        if not secret:
            raise ValueError("the rail callback secret is empty")
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._secret = secret
        self._timeout = httpx.Timeout(timeout_seconds)
        self._deadline = timeout_seconds
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._tolerance = signature_tolerance

    async def _call(self, method: str, path: str, *, body: Any = None) -> httpx.Response:
        """One request through the breaker; 5xx and transport failures become errors."""
        self.breaker.before_call()
        try:
            # httpx timeouts are per phase (and absent on in-process transports); the
            # deadline bounds the whole call so a hung rail can never hold a worker.
            async with asyncio.timeout(self._deadline):
                response = await self._http.request(
                    method, f"{self._base_url}{path}", json=body, timeout=self._timeout
                )
        except TimeoutError as exc:
            self.breaker.record_failure()
            raise RailTimeout("no answer from the rail within the deadline") from exc
        except _NOT_SENT as exc:
            self.breaker.record_failure()
            raise RailUnavailable(f"rail not reachable: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            # Read/write timeouts, dropped connections: the rail may have acted.
            self.breaker.record_failure()
            raise RailTimeout(f"no answer from the rail: {type(exc).__name__}") from exc
        except BaseException:
            self.breaker.release()
            raise
        if response.status_code >= 500 or response.status_code == 429:
            self.breaker.record_failure()
            code, _ = _error_code(response)
            raise RailUnavailable(
                f"rail answered {response.status_code} ({code})",
                retry_after=_retry_after(response),
            )
        self.breaker.record_success()
        return response

    async def submit(self, sub: Submission) -> Acceptance:
        response = await self._call("POST", "/v1/transfers", body=submission_body(sub))
        if response.status_code in (200, 201, 202):
            try:
                payload = response.json()
                reference = _req_str(payload, "rail_reference")
                echoed = _req_str(payload, "end_to_end_id")
            except (ValueError, AttributeError) as exc:
                # It said yes but we cannot read how: the transfer may well exist.
                raise RailTimeout("unreadable acceptance from the rail") from exc
            if echoed != sub.end_to_end_id:
                raise RailTimeout("the rail acknowledged another end_to_end_id")
            return Acceptance(end_to_end_id=echoed, rail_reference=reference)
        code, reason = _error_code(response)
        if response.status_code == 409 and code == "duplicate_end_to_end_id":
            # Resubmitting must never fail a payment the rail already holds.
            raise RailAlreadyHolds(f"the rail already holds {sub.end_to_end_id}: {reason}")
        raise RailRejected(code, reason, status_code=response.status_code)

    async def status(self, end_to_end_id: str) -> RailStatus | None:
        path = f"/v1/transfers/{quote(end_to_end_id, safe='')}"
        response = await self._call("GET", path)
        if response.status_code != 200:
            code, reason = _error_code(response)
            if response.status_code == 404 and code == "unknown_transfer":
                return None
            raise RailRejected(code, reason, status_code=response.status_code)
        try:
            return _parse_status(response.json())
        except ValueError as exc:
            raise RailTimeout(f"unreadable status from the rail: {exc}") from exc

    async def account_title(self, *, iban: str | None, raast_id: str | None) -> str | None:
        query = (
            f"iban={quote(iban, safe='')}" if iban else f"raast_id={quote(raast_id or '', safe='')}"
        )
        response = await self._call("GET", f"/v1/titles?{query}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            code, reason = _error_code(response)
            raise RailRejected(code, reason, status_code=response.status_code)
        try:
            title = response.json()["title"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RailTimeout("unreadable title from the rail") from exc
        return str(title)[:140] if title else None

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> RailCallback:
        header = _header(headers, SIGNATURE_HEADER)
        verify(self._secret, header, body, self._clock.now(), self._tolerance)
        return parse_callback(body)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None
