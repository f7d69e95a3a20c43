"""The operations dashboard's data: one window of the platform's health, read through
the capabilities' operations queries, with tiles judged against the business thresholds
of ``AMANAT_OPERATIONS__*``.

Four questions, in the page's order: what failed (failure codes and journeys), where
(banks, partners, webhook endpoints), who is impacted (partners, counterparties, amount at
stake) and how recovery goes (backlog over time, the oldest stuck item, time to recover).
The definitions are the queries' (payments/operations.py, webhooks/operations.py,
reconciliation/operations.py) and the page states them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from markupsafe import Markup

from amanat.console.charts import Point, chart
from amanat.identity.queries import IdentityQueries
from amanat.kernel.clock import Clock
from amanat.payments.operations import (
    Failures,
    Impact,
    Outcomes,
    PaymentOperationsQueries,
    Recovery,
    Stuck,
)
from amanat.platform.settings import OperationsSettings
from amanat.reconciliation.operations import OpenBreaks, ReconciliationOperationsQueries
from amanat.webhooks.operations import (
    Backlog,
    DisabledEndpoint,
    EndpointFailures,
    WebhookOperationsQueries,
)

Level = Literal["red", "amber", "green", "info"]
LEVEL_TEXT: dict[str, str] = {
    "red": "Over threshold",
    "amber": "Approaching threshold",
    "green": "Within threshold",
    "info": "For information",
}
PARTNER_NAMES = 20


@dataclass(frozen=True, slots=True)
class Window:
    key: str
    label: str
    length: timedelta
    buckets: int


WINDOWS: dict[str, Window] = {
    w.key: w
    for w in (
        Window("15m", "Last 15 minutes", timedelta(minutes=15), 15),
        Window("1h", "Last hour", timedelta(hours=1), 12),
        Window("24h", "Last 24 hours", timedelta(hours=24), 24),
    )
}
DEFAULT_WINDOW = "1h"


@dataclass(frozen=True, slots=True)
class Tile:
    key: str
    label: str
    value: str
    level: Level
    threshold: str
    detail: str | None = None
    href: str | None = None

    @property
    def level_text(self) -> str:
        return LEVEL_TEXT[self.level]


@dataclass(frozen=True, slots=True)
class BacklogEmpty:
    """When the payments backlog was last empty, on the chart's points."""

    now: bool
    at: datetime | None


@dataclass(frozen=True, slots=True)
class Board:
    window: Window
    since: datetime
    now: datetime
    tiles: list[Tile]
    failures: Failures
    recent: Failures
    recent_window: timedelta
    endpoints: list[EndpointFailures]
    disabled: list[DisabledEndpoint]
    impact: Impact
    stuck: Stuck
    webhooks: Backlog
    breaks: OpenBreaks
    recovery: Recovery
    backlog_empty: BacklogEmpty
    payments_chart: Markup
    webhooks_chart: Markup
    settings: OperationsSettings
    partner_names: dict[str, str] = field(default_factory=dict)


def judge(value: float, threshold: float, *, enough: bool = True) -> Level:
    """Red above the threshold, amber above half of it, green otherwise."""
    if not enough:
        return "green"
    if value > threshold:
        return "red"
    if threshold > 0 and value > threshold / 2:
        return "amber"
    return "green"


def percent(rate: float) -> str:
    value = rate * 100
    return f"{value:.1f} %" if value % 1 else f"{value:.0f} %"


def duration(delta: timedelta | float) -> str:
    seconds = int(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def pkr(paisa: int) -> str:
    """``PKR 1,500.00`` from paisa."""
    sign = "-" if paisa < 0 else ""
    rupees, fraction = divmod(abs(paisa), 100)
    return f"PKR {sign}{rupees:,}.{fraction:02d}"


def _label(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _empty_since(series: list[tuple[datetime, int]]) -> BacklogEmpty:
    if not series or series[-1][1] == 0:
        return BacklogEmpty(now=True, at=None)
    for at, value in reversed(series):
        if value == 0:
            return BacklogEmpty(now=False, at=at)
    return BacklogEmpty(now=False, at=None)


class OperationsBoard:
    def __init__(
        self,
        payments: PaymentOperationsQueries,
        webhooks: WebhookOperationsQueries,
        reconciliation: ReconciliationOperationsQueries,
        identity: IdentityQueries,
        settings: OperationsSettings,
        clock: Clock,
    ) -> None:
        self._payments = payments
        self._webhooks = webhooks
        self._recon = reconciliation
        self._identity = identity
        self._settings = settings
        self._clock = clock

    @property
    def settings(self) -> OperationsSettings:
        return self._settings

    async def board(self, window_key: str = DEFAULT_WINDOW) -> Board:
        window = WINDOWS.get(window_key) or WINDOWS[DEFAULT_WINDOW]
        s = self._settings
        now = self._clock.now()
        since = now - window.length
        stuck_after = timedelta(minutes=s.stuck_after_minutes)
        recent_window = timedelta(minutes=s.failure_rate_window_minutes)

        failures = await self._payments.failures(since, now)
        recent = (
            failures
            if recent_window == window.length
            else await self._payments.failures(now - recent_window, now)
        )
        stuck = await self._payments.stuck(now, stuck_after, limit=10)
        impact = await self._payments.impact(since, now, now, stuck_after)
        payment_series = await self._payments.backlog_series(since, now, window.buckets)
        recovery = await self._payments.recovery(since, now, stuck_after)
        endpoints = await self._webhooks.failing_endpoints(since, now)
        disabled = await self._webhooks.disabled_endpoints(limit=20)
        webhooks = await self._webhooks.backlog()
        webhook_series = await self._webhooks.backlog_series([at for at, _ in payment_series])
        breaks = await self._recon.open_breaks(now)

        partner_ids = [o.key for o in failures.by_partner[:PARTNER_NAMES]]
        partner_ids += [p.partner_id for p in stuck.oldest]
        names: dict[str, str] = {}
        for partner_id in dict.fromkeys(partner_ids):
            partner = await self._identity.partner(partner_id)
            if partner is not None:
                names[partner_id] = partner.name

        return Board(
            window=window,
            since=since,
            now=now,
            tiles=self._tiles(now, recent, recent_window, stuck, webhooks, breaks, impact),
            failures=failures,
            recent=recent,
            recent_window=recent_window,
            endpoints=endpoints,
            disabled=disabled,
            impact=impact,
            stuck=stuck,
            webhooks=webhooks,
            breaks=breaks,
            recovery=recovery,
            backlog_empty=_empty_since(payment_series),
            payments_chart=chart(
                [Point(_label(at), n) for at, n in payment_series],
                title="Payouts and refunds in flight (UTC)",
                css_class="chart-payments",
            ),
            webhooks_chart=chart(
                [Point(_label(at), n) for at, n in webhook_series],
                title="Undelivered webhooks (UTC)",
                kind="bars",
                css_class="chart-webhooks",
            ),
            settings=s,
            partner_names=names,
        )

    def _tiles(
        self,
        now: datetime,
        recent: Failures,
        recent_window: timedelta,
        stuck: Stuck,
        webhooks: Backlog,
        breaks: OpenBreaks,
        impact: Impact,
    ) -> list[Tile]:
        s = self._settings
        payout: Outcomes = recent.journey("payout")
        enough = payout.finished >= s.failure_rate_min_finished
        oldest_stuck = stuck.oldest[0] if stuck.oldest else None
        oldest_hook = webhooks.oldest
        hook_age = now - oldest_hook.created_at if oldest_hook else None
        return [
            Tile(
                key="payout_failure_rate",
                label=f"Payout failure rate, last {duration(recent_window)}",
                value=percent(payout.rate),
                level=judge(payout.rate * 100, s.payout_failure_rate_percent, enough=enough),
                threshold=f"red above {s.payout_failure_rate_percent:g} % "
                f"(with at least {s.failure_rate_min_finished} finished)",
                detail=f"{payout.failed} failed of {payout.finished} finished",
            ),
            Tile(
                key="stuck_payments",
                label="Payments stuck",
                value=str(stuck.count),
                level="red" if stuck.count else "green",
                threshold=f"red when any is in flight over {s.stuck_after_minutes:g} min",
                detail=(
                    f"oldest {oldest_stuck.id}, {duration(now - oldest_stuck.since)}"
                    if oldest_stuck
                    else None
                ),
                href=f"/console/timeline/{oldest_stuck.id}" if oldest_stuck else None,
            ),
            Tile(
                key="webhook_backlog",
                label="Webhooks undelivered",
                value=str(webhooks.pending),
                level=judge(webhooks.pending, s.webhook_backlog_max),
                threshold=f"red above {s.webhook_backlog_max}",
                detail=f"{webhooks.held} held for disabled endpoints" if webhooks.held else None,
            ),
            Tile(
                key="oldest_webhook",
                label="Oldest undelivered webhook",
                value=duration(hook_age) if hook_age is not None else "none",
                level=judge(
                    hook_age.total_seconds() / 60 if hook_age else 0, s.webhook_oldest_minutes
                ),
                threshold=f"red above {s.webhook_oldest_minutes:g} min",
                detail=f"to {oldest_hook.host}" if oldest_hook else None,
                href=(
                    f"/console/timeline/{oldest_hook.object_id}"
                    if oldest_hook and oldest_hook.object_id
                    else None
                ),
            ),
            Tile(
                key="aged_breaks",
                label="Breaks open past a settlement cycle",
                value=str(breaks.aged),
                level="red" if breaks.aged else "amber" if breaks.open else "green",
                threshold=f"red when any is open after {s.break_age_cycles} more "
                f"cycle{'s' if s.break_age_cycles > 1 else ''} closed",
                detail=f"{breaks.open} open in all",
                href="/console/reconciliation",
            ),
            Tile(
                key="amount_at_stake",
                label="Amount at stake",
                value=pkr(impact.at_stake),
                level="info",
                threshold="failed in the window + stuck now",
                detail=f"{pkr(impact.failed_amount)} failed, {pkr(impact.stuck_amount)} stuck",
            ),
        ]
