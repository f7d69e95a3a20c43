"""Webhooks' alerts for the console's inbox.

- ``webhook_endpoint_disabled:<endpoint id>``: an endpoint is disabled. Critical when
  amanat disabled it (its receiver answered 410, or every delivery failed for
  ``AMANAT_WEBHOOKS__DISABLE_AFTER_DAYS``): the partner hears of nothing any more and the
  events held for it are dropped after ``held_events_days``. A warning when the partner
  disabled it themselves and events are being held for it.
- ``webhook_backlog:<endpoint id>``: an enabled endpoint's oldest undelivered delivery is
  older than ``AMANAT_OPERATIONS__WEBHOOK_OLDEST_MINUTES`` (a warning: the partner is
  hearing late; the deliverer may be down or the receiver failing).

Computed from the endpoints and the queue as they are now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from amanat.kernel.alerts import Alert, Severity
from amanat.webhooks.operations import DisabledEndpoint, EndpointBacklog, WebhookOperationsQueries

ENDPOINT_DISABLED = "webhook_endpoint_disabled"
BACKLOG = "webhook_backlog"


def disabled_alert(endpoint: DisabledEndpoint) -> Alert | None:
    if endpoint.by_partner and not endpoint.held:
        return None  # the partner's own choice, and nothing waits for it
    held = f"{endpoint.held} deliveries are held for it." if endpoint.held else ""
    return Alert(
        key=f"{ENDPOINT_DISABLED}:{endpoint.endpoint_id}",
        kind=ENDPOINT_DISABLED,
        severity=Severity.WARNING if endpoint.by_partner else Severity.CRITICAL,
        title=f"Webhook endpoint at {endpoint.host} is disabled",
        detail=" ".join(
            part
            for part in (
                f"Partner {endpoint.partner_id}; reason: {endpoint.reason or 'not recorded'}.",
                held,
            )
            if part
        ),
        since=endpoint.since,
        subject_id=endpoint.endpoint_id,
        playbook=f"playbooks.md#{ENDPOINT_DISABLED}",
    )


def backlog_alert(backlog: EndpointBacklog, now: datetime) -> Alert:
    minutes = int((now - backlog.oldest_at).total_seconds() // 60)
    return Alert(
        key=f"{BACKLOG}:{backlog.endpoint_id}",
        kind=BACKLOG,
        severity=Severity.WARNING,
        title=f"{backlog.pending} webhooks undelivered to {backlog.host}",
        detail=f"Partner {backlog.partner_id}; the oldest has waited {minutes} min.",
        since=backlog.oldest_at,
        subject_id=backlog.endpoint_id,
        playbook=f"playbooks.md#{BACKLOG}",
    )


class WebhookAlerts:
    name = "webhooks"

    def __init__(
        self, queries: WebhookOperationsQueries, *, oldest_after: timedelta, limit: int
    ) -> None:
        self._queries = queries
        self._oldest_after = oldest_after
        self._limit = limit

    async def alerts(self, now: datetime) -> Sequence[Alert]:
        found: list[Alert] = []
        for endpoint in await self._queries.disabled_endpoints(self._limit):
            alert = disabled_alert(endpoint)
            if alert is not None:
                found.append(alert)
        for backlog in await self._queries.aged_backlogs(now, self._oldest_after, self._limit):
            found.append(backlog_alert(backlog, now))
        return found
