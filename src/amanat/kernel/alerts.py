"""What needs an operator now.

Each capability knows its own conditions that need a person (a disabled webhook endpoint,
a payment processing too long, a break older than a cycle, a dispute near its deadline, a
failed seal or witness write) and answers for them through an :class:`AlertSource`
(``registry.add_alert_source``). The console's alert inbox lists them; an operator
acknowledges one with a name and a note (audited). An alert is computed from the current
state each time, never stored, so it disappears when its condition clears; its ``key``
names one occurrence (``payment_stuck:pay_…``) so an acknowledgement sticks to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Severity(StrEnum):
    CRITICAL = "critical"  # money or evidence at risk now
    WARNING = "warning"  # will become critical if left


@dataclass(frozen=True, slots=True)
class Alert:
    key: str
    """Stable for one occurrence: ``<kind>:<object id>``."""
    kind: str
    severity: Severity
    title: str
    detail: str
    since: datetime
    subject_id: str | None = None
    """The object to open (its timeline or page), if any."""
    playbook: str | None = None
    """The section of ``docs/playbooks.md`` that says what to do (``playbooks.md#<kind>``)."""


class AlertSource(Protocol):
    name: str

    async def alerts(self, now: datetime) -> Sequence[Alert]: ...
