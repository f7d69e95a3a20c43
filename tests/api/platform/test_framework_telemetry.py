"""FastAPI's own OpenTelemetry stays off (platform/http/app.py): with a provider
installed it would record URL queries, refused values and exception messages past
amanat's masking."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry import _logs, metrics, trace
from tests.support.oauth import bearer, funded_merchant

from amanat.bootstrap import Container

IBAN = "PK36SCBL0000001123456702"


class _RecordingTracers(trace.TracerProvider):
    """A provider that counts as configured (neither one of the API's deferred proxies nor
    its no-op) and notes every tracer asked of it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> Any:
        self.asked.append(instrumenting_module_name)
        return trace.NoOpTracer()


class _RecordingMeters(metrics.MeterProvider):
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.asked.append(name)
        return metrics.NoOpMeter(name)


class _RecordingLoggers(_logs.LoggerProvider):
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_logger(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.asked.append(name)
        return _logs.NoOpLogger(name)


async def test_no_span_metric_or_log_record_even_with_providers_installed(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracers, meters, loggers = _RecordingTracers(), _RecordingMeters(), _RecordingLoggers()
    looked_up: list[str] = []

    def provider(kind: str, found: Any) -> Any:
        def get() -> Any:
            looked_up.append(kind)
            return found

        return get

    monkeypatch.setattr(trace, "get_tracer_provider", provider("tracer", tracers))
    monkeypatch.setattr(metrics, "get_meter_provider", provider("meter", meters))
    monkeypatch.setattr(_logs, "get_logger_provider", provider("logger", loggers))
    auth = await bearer(client, await funded_merchant(container, "Telemetry", 1_000))
    refused = await client.post(
        "/v1/payments",
        json={"type": "payout", "amount": "x", "currency": "PKR", "creditor": {"iban": IBAN}},
        headers=auth | {"Idempotency-Key": "t-1"},
    )
    assert refused.status_code == 422
    assert (await client.get(f"/v1/payments?iban={IBAN}")).status_code == 401
    assert (await client.get("/healthz")).status_code == 200
    # Not even asked whether a provider is installed.
    assert looked_up == []
    assert (tracers.asked, meters.asked, loggers.asked) == ([], [], [])
