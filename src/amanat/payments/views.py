"""How objects look to partners, in one place: the API returns these shapes and events
embed them, so a webhook's object is exactly what ``GET`` would have returned then."""

from __future__ import annotations

from typing import Any

from amanat.kernel.clock import format_timestamp
from amanat.kernel.pakistan import bank_by_code
from amanat.payments.domain.payments import Payment, PaymentType


def party_view(payment: Payment) -> dict[str, Any]:
    party = payment.counterparty
    bank = bank_by_code(party.bank_code) if party.bank_code else None
    return {
        "customer_id": party.subject_id,
        "account_type": party.kind.value,
        "bank_code": party.bank_code,
        "bank_name": bank.name if bank else None,
        "iban_last4": party.iban_last4,
    }


def payment_view(payment: Payment, description: str | None) -> dict[str, Any]:
    """``description`` is the payment's description in clear (it is stored sealed)."""
    party = party_view(payment)
    outgoing = payment.type in (PaymentType.PAYOUT, PaymentType.REFUND)
    is_refund = payment.type is PaymentType.REFUND
    failure = payment.failure
    return {
        "id": payment.id,
        "object": "refund" if is_refund else "payment",
        "type": payment.type.value,
        "status": payment.status.value,
        "amount": payment.amount.amount,
        "currency": payment.amount.currency,
        "creditor": party if outgoing else None,
        "debtor": None if outgoing else party,
        "reference": payment.reference,
        "description": description,
        "end_to_end_id": payment.end_to_end_id,
        "failure": {"code": failure.code, "message": failure.message} if failure else None,
        "version": payment.version,
        "created_at": format_timestamp(payment.created_at),
        "updated_at": format_timestamp(payment.updated_at),
        "expires_at": format_timestamp(payment.expires_at) if payment.expires_at else None,
        "refunded_amount": payment.refunded_amount
        if payment.type is PaymentType.COLLECTION
        else None,
        "payment_id": payment.parent_id if is_refund else None,
        "metadata": payment.metadata,
    }
