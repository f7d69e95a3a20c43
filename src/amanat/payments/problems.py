"""Payments' problem codes (and the rail failure codes a failed payment carries), each
with its page at ``/problems/<code>``; registered by payments' wiring."""

from __future__ import annotations

from typing import Any

from amanat.platform.http.problems import RAIL_FAILURE, ProblemType

PROBLEMS: list[ProblemType] = [
    ProblemType(
        "payment_final",
        409,
        "Payment already final",
        "The payment has succeeded, failed, expired or been cancelled: the rail has nothing "
        "more to say about it.",
        "Read its timeline for what happened; nothing needs chasing.",
    ),
    ProblemType(
        "payment_not_submitted",
        409,
        "Payment not sent yet",
        "The payment is still pending: the worker has not handed it to the rail, so there is "
        "nothing to ask the rail about.",
        "Check that a worker is running; the payment is sent as soon as one picks it up.",
    ),
    ProblemType(
        "insufficient_funds",
        422,
        "Insufficient funds",
        "The available balance does not cover this operation.",
        "Top up the balance or reduce the amount.",
    ),
    ProblemType(
        "payee_check_required",
        409,
        "Payee check required",
        "Your payouts need a recent confirmation of payee of the account: a match or close "
        "match from POST /v1/payee_checks in the last 24 hours (your bank turned this on).",
        "Check the payee with its name first, then pay the same account.",
    ),
    ProblemType(
        "limit_exceeded",
        422,
        "Limit exceeded",
        "The amount is above your per-transaction limit.",
        "Split the payment or ask your bank to raise the limit.",
    ),
    ProblemType(
        "refund_exceeds_remaining",
        409,
        "Refund exceeds what remains",
        "Refunds of a collection can never add up to more than it collected.",
        "Refund at most the collection's amount minus its refunded_amount.",
    ),
    ProblemType(
        "refund_not_supported",
        409,
        "This payment cannot be refunded",
        "Refunds apply to succeeded collections only: the payment is a payout or a "
        "refund, or a collection whose money has not arrived (the detail says its status).",
        "Refund a collection once it has succeeded; to send money back after a payout, "
        "make a new payout.",
    ),
    ProblemType(
        "payment_not_cancelable",
        409,
        "This payment can no longer be canceled",
        "Only a payment not yet handed to the rail can be canceled. This one was already "
        "sent (it may still show `pending` until the rail answers) or has moved on; the "
        "detail says which.",
        "Wait for the payment's outcome event; if it succeeds and you need the money back, "
        "refund the collection or make a new payout.",
    ),
    ProblemType(
        "illegal_transition",
        409,
        "Not possible in this state",
        "The payment's current state does not allow this action.",
        "Fetch the payment to see its status.",
    ),
    ProblemType(
        "unbalanced",
        500,
        "Ledger journal does not balance",
        "An internal ledger journal did not sum to zero, so it was refused and nothing was "
        "written. This is a defect, never a result of your input.",
        "Retry with the same Idempotency-Key; quote `request_id` to support.",
    ),
]


def _failed_payment(code: str, message: str, *, type_: str = "payout") -> dict[str, Any]:
    """The part of a failed payment that carries a rail failure code."""
    return {
        "id": "pay_01JDX3M9Q5W8C2V7T4K6B0N1ZP",
        "object": "payment",
        "type": type_,
        "status": "failed",
        "amount": 100_001,
        "currency": "PKR",
        "failure": {"code": code, "message": message},
    }


_RETRY_NEW = (
    "Do not resend the same request: the payment is final and its Idempotency-Key replays "
    "the failure. "
)
for _code, _title, _cause, _remedy, _kind in [
    (
        "rail_ac01",
        "Account number invalid (AC01)",
        "The beneficiary's bank says the account number is invalid or does not exist "
        "(ISO 20022 reason `AC01`). In the sandbox, amounts ending in `01` produce it.",
        _RETRY_NEW + "Do not retry with the same details. Tell the customer: *the account "
        "details are wrong; please check the IBAN or Raast ID with the account holder*, then "
        "create a new payment with the corrected details.",
        "payout",
    ),
    (
        "rail_ac06",
        "Account blocked (AC06)",
        "The beneficiary's bank says the account is blocked (ISO 20022 reason `AC06`). In "
        "the sandbox, amounts ending in `02` produce it.",
        _RETRY_NEW + "Do not retry to this account. Tell the customer: *your bank has "
        "blocked this account; please contact your bank or give another account*.",
        "payout",
    ),
    (
        "rail_ab08",
        "Beneficiary bank offline (AB08)",
        "The beneficiary's bank was offline and could not take the payment (ISO 20022 "
        "reason `AB08`). In the sandbox, amounts ending in `03` produce it.",
        _RETRY_NEW + "This is temporary: create a new payment later (for example after 15 "
        "minutes, with backoff). Tell the customer: *your bank is not reachable right now; "
        "we will try again*.",
        "payout",
    ),
    (
        "rail_am02",
        "Amount over the bank's limit (AM02)",
        "The beneficiary's bank refused the amount as above its limit (ISO 20022 reason "
        "`AM02`). In the sandbox, amounts ending in `04` produce it.",
        _RETRY_NEW + "Do not retry the same amount. Split it into smaller payments, or tell "
        "the customer: *the amount is above what your bank accepts in one payment*.",
        "payout",
    ),
    (
        "rail_noas",
        "No answer from the payer (NOAS)",
        "The rail failed the collection (request to pay) because nobody answered it in time "
        "(ISO 20022 reason `NOAS`): the payer never approved nor declined it. (A collection "
        "that simply reaches its `expires_at` ends `expired`, not `failed`: in the sandbox, "
        "amounts ending in `22`.)",
        "Safe to ask again: create a new collection (new Idempotency-Key) if the payer still "
        "means to pay. Tell the customer: *the payment request was not answered in time; we "
        "can send a new one*.",
        "collection",
    ),
    (
        "rail_cust",
        "Declined by the payer (CUST)",
        "The payer declined the collection (request to pay) in their banking app (ISO "
        "20022 reason `CUST`). In the sandbox, collection amounts ending in `21` produce it.",
        "Retrying would only ask again: create a new collection only if the payer agrees. "
        "Tell the customer: *you declined the payment request; we can send a new one*.",
        "collection",
    ),
    (
        "rail_declined",
        "Declined by the payer",
        "The payer declined the collection, and the rail gave no more specific reason code.",
        "As for `rail_cust`: create a new collection only if the payer agrees to pay.",
        "collection",
    ),
    (
        "rail_rejected",
        "Rejected by the rail",
        "The rail rejected the payment without a reason code amanat knows; the message "
        "names the rail's own code when it gave one.",
        _RETRY_NEW + "Check the beneficiary's details and the amount; create a new payment "
        "once they are confirmed. Quote the payment id to support if it happens again.",
        "payout",
    ),
    (
        "rail_unavailable",
        "Rail unavailable",
        "amanat retried the submission with backoff, but the rail stayed unavailable and "
        "never received the payment, so no money moved.",
        "Safe to retry: create a new payment (with a new Idempotency-Key) once the rail is "
        "back. Tell the customer: *the payment network is unavailable; we will try again*.",
        "payout",
    ),
    (
        "rail_invalid_request",
        "Refused by the rail as invalid",
        "The rail refused the submission as malformed (for example an account it could not "
        "parse). No money moved.",
        _RETRY_NEW + "Check the account details; quote the payment id to support if they "
        "are right.",
        "payout",
    ),
    (
        "rail_unknown_transfer",
        "Lost by the rail",
        "The rail had accepted the payment and later answered that it did not know it; "
        "amanat sent it again with the same end-to-end id three times and the rail still "
        "did not know it. The hold was released: no money left the balance.",
        "Safe to retry: create a new payment (new Idempotency-Key). Quote the payment id to "
        "support, who can ask the rail operator what happened to the original.",
        "payout",
    ),
    (
        "rail_duplicate_end_to_end_id",
        "Duplicate end-to-end id at the rail",
        "The rail already had a different payment with this payment's end-to-end id. No "
        "money moved for this payment.",
        "Create a new payment (it gets a new end-to-end id); quote both payment ids to support.",
        "payout",
    ),
]:
    PROBLEMS.append(
        ProblemType(
            _code,
            RAIL_FAILURE,
            _title,
            _cause + " The payment's `status` is `failed` and `failure.code` is this code.",
            _remedy,
            example=_failed_payment(_code, _title + ".", type_=_kind),
        )
    )
