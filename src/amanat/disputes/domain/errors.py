"""How a dispute refuses: one class per problem code (disputes/problems.py documents each)."""

from __future__ import annotations

from amanat.kernel.errors import Conflict, InvalidInput


class DisputeTransitionRefused(Conflict):
    """The dispute's status does not allow this action (a closed dispute stays closed)."""

    code = "dispute_transition_refused"


class PaymentNotDisputable(Conflict):
    """Only a succeeded payout or collection can be disputed."""

    code = "payment_not_disputable"


class DisputeAmountExceedsRemaining(Conflict):
    """The amount is more than the payment has left to dispute."""

    code = "dispute_amount_exceeds_remaining"


class WithdrawalRefused(Conflict):
    """Only whoever opened a dispute may withdraw it."""

    code = "dispute_withdrawal_refused"


class EvidenceNotAccepted(Conflict):
    """Evidence comes while the dispute awaits a response (an operator's also after)."""

    code = "evidence_not_accepted"


class EvidenceLimitReached(Conflict):
    code = "evidence_limit_reached"


class EvidenceTypeNotAllowed(InvalidInput):
    code = "evidence_type_not_allowed"


class EvidenceContentMismatch(InvalidInput):
    code = "evidence_content_mismatch"


class EvidenceTooLarge(InvalidInput):
    code = "evidence_too_large"


class EvidenceEmpty(InvalidInput):
    code = "evidence_empty"


class ResponseDeadlinePassed(Conflict):
    """The respond-by date has passed: the dispute is lost for want of a response."""

    code = "dispute_response_deadline_passed"


class DecisionNeedsAnotherOperator(Conflict):
    """Whoever opened a dispute or answered it for the merchant may not also decide it."""

    code = "dispute_decision_needs_another_operator"
