"""Payments' alerts for the console's inbox: a payment stuck in flight.

A payout or refund ``pending`` or ``processing`` (a collection ``pending``, or awaiting
approval past its expiry) for longer than ``AMANAT_OPERATIONS__STUCK_AFTER_MINUTES`` is
critical: the partner's money is held and nobody knows where it is. One alert per
payment (``payment_stuck:<id>``), oldest first, at most ``alerts_per_source``; the
dashboard shows the full count. Computed from the payments as they are now, so the alert
goes away when the payment reaches a final state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from amanat.kernel.alerts import Alert, Severity
from amanat.kernel.money import Money
from amanat.payments.operations import PaymentOperationsQueries, StuckPayment

PAYMENT_STUCK = "payment_stuck"


def shown(money: Money) -> str:
    """``PKR 2,500.00``: grouped for reading, never parsed back."""
    whole, _, fraction = money.to_major_string().partition(".")
    sign = "-" if whole.startswith("-") else ""
    grouped = f"{int(whole.lstrip('-')):,}"
    return f"{money.currency} {sign}{grouped}" + (f".{fraction}" if fraction else "")


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def stuck_alert(payment: StuckPayment, now: datetime) -> Alert:
    amount = Money(payment.amount, payment.currency)
    state = (
        "awaiting approval past its expiry"
        if payment.status == "awaiting_approval"
        else payment.status
    )
    return Alert(
        key=f"{PAYMENT_STUCK}:{payment.id}",
        kind=PAYMENT_STUCK,
        severity=Severity.CRITICAL,
        title=f"{payment.type.capitalize()} {state} for {_minutes(now - payment.since)}",
        detail=(
            f"{shown(amount)} of partner {payment.partner_id}"
            + (f", bank {payment.bank_code}" if payment.bank_code else "")
            + ": no final answer from the rail yet."
        ),
        since=payment.since,
        subject_id=payment.id,
        playbook=f"playbooks.md#{PAYMENT_STUCK}",
    )


class StuckPaymentAlerts:
    name = "payments"

    def __init__(
        self, queries: PaymentOperationsQueries, *, stuck_after: timedelta, limit: int
    ) -> None:
        self._queries = queries
        self._stuck_after = stuck_after
        self._limit = limit

    async def alerts(self, now: datetime) -> Sequence[Alert]:
        stuck = await self._queries.stuck(now, self._stuck_after, limit=self._limit)
        return [stuck_alert(payment, now) for payment in stuck.oldest]
