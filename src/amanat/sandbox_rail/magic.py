"""The sandbox rail's test values: the last two digits of the amount pick the outcome.

Like a card network's test cards: ``100001`` paisa (PKR 1,000.01) ends in ``01`` and is
rejected with ``AC01``. This table is the single source: the engine reads it and
docs/sandbox-rail.md renders it (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CREDIT_TRANSFER",
    "DEFAULT",
    "MAGIC_VALUES",
    "NO_ANSWER",
    "REQUEST_TO_PAY",
    "MagicValue",
    "Outcome",
    "final_status",
    "magic_for",
    "render_markdown_table",
]

CREDIT_TRANSFER = "credit_transfer"
REQUEST_TO_PAY = "request_to_pay"
BOTH = (CREDIT_TRANSFER, REQUEST_TO_PAY)


class Outcome(StrEnum):
    """What the rail does with a transfer."""

    SUCCEED = "succeed"  # settled (credit transfer) / approved (request to pay)
    REFUSE = "refuse"  # rejected (credit transfer) / declined (request to pay)
    HOLD_RESPONSE = "hold_response"
    UNAVAILABLE_FIRST = "unavailable_first"
    DELAY_CALLBACK = "delay_callback"
    DUPLICATE_CALLBACK = "duplicate_callback"
    OUT_OF_ORDER = "out_of_order"
    NO_CALLBACK = "no_callback"
    EXPIRE = "expire"


@dataclass(frozen=True, slots=True)
class MagicValue:
    """One row of the test-values table.

    ``code`` is a stable name for the scenario; ``reason_code``/``reason`` are what the
    status and callbacks carry when the transfer is refused or expires.
    """

    code: str
    amount_suffix: str
    outcome: Outcome
    description: str
    applies_to: tuple[str, ...] = BOTH
    reason_code: str | None = None
    reason: str | None = None

    @property
    def example_amount(self) -> int:
        """An amount in paisa that triggers this row: PKR 1,000.xx."""
        return 100_000 + int(self.amount_suffix)

    @property
    def succeeds(self) -> bool:
        """Whether the transfer ends settled/approved (every delivery quirk does)."""
        return self.outcome not in (Outcome.REFUSE, Outcome.EXPIRE)


MAGIC_VALUES: tuple[MagicValue, ...] = (
    MagicValue(
        "success",
        "00",
        Outcome.SUCCEED,
        "Default for any suffix not listed: `settled` (credit transfer) or `approved` "
        "(request to pay) after `settle_delay` (0.2 s).",
    ),
    MagicValue(
        "invalid_account",
        "01",
        Outcome.REFUSE,
        "Refused: the account number is invalid or does not exist.",
        reason_code="AC01",
        reason="IncorrectAccountNumber: the account number is invalid or does not exist.",
    ),
    MagicValue(
        "account_blocked",
        "02",
        Outcome.REFUSE,
        "Refused: the account is blocked.",
        reason_code="AC06",
        reason="BlockedAccount: the account is blocked.",
    ),
    MagicValue(
        "bank_offline",
        "03",
        Outcome.REFUSE,
        "Refused: the account's bank is offline (ISO 20022 `AB08` OfflineCreditorAgent; "
        "not `NOAS`, which means no answer from the customer).",
        reason_code="AB08",
        reason="OfflineCreditorAgent: the account's bank is unavailable.",
    ),
    MagicValue(
        "limit_exceeded",
        "04",
        Outcome.REFUSE,
        "Refused: the amount is over the bank's limit.",
        reason_code="AM02",
        reason="NotAllowedAmount: the amount exceeds the allowed maximum.",
    ),
    MagicValue(
        "submission_timeout",
        "05",
        Outcome.HOLD_RESPONSE,
        "The first submission's answer is held for `timeout_hold_seconds` (15 s), longer "
        "than a client's timeout, but the transfer is accepted at once and succeeds. A "
        "resubmission of the same id answers straight away (idempotent replay).",
    ),
    MagicValue(
        "unavailable_twice",
        "06",
        Outcome.UNAVAILABLE_FIRST,
        "`503 rail_unavailable` (with `Retry-After`) for the first 2 submissions of that "
        "`end_to_end_id`, which are not recorded; the third is accepted and succeeds.",
    ),
    MagicValue(
        "delayed_callback",
        "07",
        Outcome.DELAY_CALLBACK,
        "Succeeds on time (status enquiry shows it), but the final callback is sent "
        "`delayed_callback_seconds` (10 s) late.",
    ),
    MagicValue(
        "duplicate_callback",
        "08",
        Outcome.DUPLICATE_CALLBACK,
        "Succeeds; the final callback is delivered twice with the same `event_id`.",
    ),
    MagicValue(
        "out_of_order",
        "09",
        Outcome.OUT_OF_ORDER,
        "Succeeds; the final callback (sequence 2) is delivered before the stale "
        "`accepted` callback (sequence 1).",
    ),
    MagicValue(
        "no_callback",
        "10",
        Outcome.NO_CALLBACK,
        "Succeeds, but no callback is ever sent: only a status enquiry finds the outcome.",
    ),
    MagicValue(
        "held_pending",
        "11",
        Outcome.SUCCEED,
        "Not a rail behaviour: amanat's sandbox keeps a payout or collection with this "
        "amount `pending`, not yet sent to the rail, for `AMANAT_PAYMENTS__SANDBOX_HOLD_SECONDS` "
        "(60 s), so you can try `POST /v1/payments/{id}/cancel`; then it is sent and succeeds "
        "like the default.",
    ),
    MagicValue(
        "debtor_declined",
        "21",
        Outcome.REFUSE,
        "Request to pay: the debtor declines. Credit transfers: the default.",
        applies_to=(REQUEST_TO_PAY,),
        reason_code="CUST",
        reason="RequestedByCustomer: the debtor declined the request.",
    ),
    MagicValue(
        "no_answer",
        "22",
        Outcome.EXPIRE,
        "Request to pay: nobody answers, `expired` at `expires_at`. Credit transfers: the default.",
        applies_to=(REQUEST_TO_PAY,),
        reason_code="NOAS",
        reason="NoAnswerFromCustomer: the debtor did not answer before the request expired.",
    ),
)

DEFAULT = MAGIC_VALUES[0]
NO_ANSWER = next(value for value in MAGIC_VALUES if value.outcome is Outcome.EXPIRE)
"""The row whose reason an expired request to pay carries, whatever its amount."""
_BY_SUFFIX: dict[tuple[str, str], MagicValue] = {
    (kind, value.amount_suffix): value for value in MAGIC_VALUES for kind in value.applies_to
}


def magic_for(kind: str, amount: int) -> MagicValue:
    """The row for a transfer of ``kind`` and ``amount`` paisa (the default if none)."""
    return _BY_SUFFIX.get((kind, f"{amount % 100:02d}"), DEFAULT)


def final_status(value: MagicValue, kind: str) -> str:
    """The terminal status a transfer of ``kind`` reaches under ``value``."""
    if value.outcome is Outcome.EXPIRE:
        return "expired"
    if value.outcome is Outcome.REFUSE:
        return "rejected" if kind == CREDIT_TRANSFER else "declined"
    return "settled" if kind == CREDIT_TRANSFER else "approved"


def render_markdown_table() -> str:
    """The table as Markdown, as it appears in docs/sandbox-rail.md."""
    lines = [
        "| amount ends in | example (paisa) | scenario | credit_transfer | request_to_pay "
        "| reason_code | what happens |",
        "|---|---|---|---|---|---|---|",
    ]
    for value in MAGIC_VALUES:
        suffix = f"`{value.amount_suffix}`" + (" / any other" if value is DEFAULT else "")
        ct, rtp = (
            final_status(value, kind)
            if kind in value.applies_to
            else f"{final_status(DEFAULT, kind)} (default)"
            for kind in (CREDIT_TRANSFER, REQUEST_TO_PAY)
        )
        code = f"`{value.reason_code}`" if value.reason_code else "—"
        lines.append(
            f"| {suffix} | `{value.example_amount}` | `{value.code}` | {ct} | {rtp} | {code} "
            f"| {value.description} |"
        )
    return "\n".join(lines) + "\n"
