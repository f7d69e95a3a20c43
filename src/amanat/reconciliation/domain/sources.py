"""The reports amanat reconciles against, each with its file format and tolerances.

Each source is reconciled on its own: the rail's report and the bank's statement both
confirm the same payments, and a payment is settled for one of them independently of the
other.
"""

from __future__ import annotations

from dataclasses import dataclass

from amanat.reconciliation.domain.records import MatchRules


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    format: str  # "camt" or a CSV profile's name
    rules: MatchRules
    description: str


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            "sandbox_rail",
            "sandbox_rail",
            MatchRules(amount_tolerance=0, date_tolerance_days=0, allow_partial=False),
            "The sandbox Raast rail's daily settlement report (CSV, one row per transfer).",
        ),
        Source(
            "bank_statement",
            "camt",
            MatchRules(amount_tolerance=0, date_tolerance_days=1, allow_partial=True),
            "The bank's ISO 20022 statement (camt.053) or notification (camt.054) of the "
            "platform's settlement account.",
        ),
        Source(
            "bank_csv",
            "bank_csv",
            MatchRules(amount_tolerance=0, date_tolerance_days=1, allow_partial=True),
            "The bank's statement of the settlement account, exported as CSV.",
        ),
    )
}
