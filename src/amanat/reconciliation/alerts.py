"""Reconciliation's alerts for the console's inbox: a break aged past a settlement cycle.

``break_aged:<break id>`` (critical): a break still open after the next settlement cycle
closed (``AMANAT_OPERATIONS__BREAK_AGE_CYCLES`` of them), on the business calendar of
``AMANAT_SETTLEMENT__*`` (see :mod:`amanat.reconciliation.operations`). Read through
:meth:`ReconciliationService.breaks` (open breaks opened before the aged instant),
at most ``alerts_per_source`` of them, the most recently aged first; the dashboard shows
the full count and the oldest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from amanat.kernel.alerts import Alert, Severity
from amanat.kernel.money import Money
from amanat.reconciliation.operations import ReconciliationOperationsQueries
from amanat.reconciliation.ports import BreakRow
from amanat.reconciliation.services.reconciliation import ReconciliationService

BREAK_AGED = "break_aged"


def shown(money: Money) -> str:
    """``PKR 2,500.00``: grouped for reading, never parsed back."""
    whole, _, fraction = money.to_major_string().partition(".")
    sign = "-" if whole.startswith("-") else ""
    grouped = f"{int(whole.lstrip('-')):,}"
    return f"{money.currency} {sign}{grouped}" + (f".{fraction}" if fraction else "")


def aged_alert(row: BreakRow) -> Alert:
    amount = Money(abs(row.amount), row.currency)
    about = f"payment {row.internal_id}" if row.internal_id else f"their {row.external_id}"
    return Alert(
        key=f"{BREAK_AGED}:{row.id}",
        kind=BREAK_AGED,
        severity=Severity.CRITICAL,
        title=f"Reconciliation break open past a settlement cycle ({row.kind})",
        detail=(f"{shown(amount)}, {about}, source {row.source}. {row.suggested_cause}")[:400],
        since=row.opened_at,
        subject_id=row.internal_id or row.id,
        playbook=f"playbooks.md#{BREAK_AGED}",
    )


class AgedBreakAlerts:
    name = "reconciliation"

    def __init__(
        self,
        service: ReconciliationService,
        operations: ReconciliationOperationsQueries,
        *,
        limit: int,
    ) -> None:
        self._service = service
        self._operations = operations
        self._limit = limit

    async def alerts(self, now: datetime) -> Sequence[Alert]:
        # ``before`` is exclusive: a break opened exactly at the cut-off is aged too.
        before = self._operations.aged_before(now) + timedelta(microseconds=1)
        rows, _ = await self._service.breaks(
            status="open",
            kind=None,
            source=None,
            payment_id=None,
            limit=self._limit,
            before=(before, ""),
        )
        return [aged_alert(row) for row in rows]
