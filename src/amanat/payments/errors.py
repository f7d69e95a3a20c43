"""Payments' refusals raised by its use cases, in the payments family (kernel/errors.py)."""

from __future__ import annotations

from amanat.kernel.errors import Conflict, InvalidInput
from amanat.payments.domain.errors import PaymentsError


class LimitExceeded(PaymentsError, InvalidInput):
    code = "limit_exceeded"


class RefundExceedsRemaining(PaymentsError, Conflict):
    code = "refund_exceeds_remaining"


class RefundNotSupported(PaymentsError, Conflict):
    """The payment exists but is not a paid collection, the one thing a refund applies to."""

    code = "refund_not_supported"


class PaymentNotCancelable(PaymentsError, Conflict):
    code = "payment_not_cancelable"


class PayeeCheckRequired(PaymentsError, Conflict):
    """The partner's payouts need a recent payee check of the account, and it has none."""

    code = "payee_check_required"
