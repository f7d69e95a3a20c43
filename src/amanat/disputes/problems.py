"""Disputes' refusal codes, registered by their wiring."""

from __future__ import annotations

from amanat.disputes.domain.evidence import ALLOWED_TYPES
from amanat.platform.http.problems import ProblemType

_TYPES = ", ".join(f"`{t}`" for t in ALLOWED_TYPES)

PROBLEMS: list[ProblemType] = [
    ProblemType(
        "dispute_response_deadline_passed",
        409,
        "Response deadline passed",
        "The dispute's respond-by date (Pakistan business days from its opening) has passed; "
        "the scheme treats it as lost for want of a response.",
        "Answer disputes before respond_by_date; the dispute.opened webhook says when it is.",
    ),
    ProblemType(
        "dispute_decision_needs_another_operator",
        409,
        "Another operator decides",
        "The operator who opened a dispute or answered it for the merchant may not also decide "
        "it (four eyes).",
        "Ask a colleague with disputes.write to decide it.",
    ),
    ProblemType(
        "dispute_transition_refused",
        409,
        "Not possible in this dispute's state",
        "The dispute's status does not allow this action: a dispute is decided only once "
        "it is `under_review` (after the response), and a closed dispute (`won`, `lost`, "
        "`accepted`, `withdrawn`) never changes again.",
        "Fetch the dispute: `status` says where it is, `close_note` why it closed.",
    ),
    ProblemType(
        "payment_not_disputable",
        409,
        "This payment cannot be disputed",
        "Only a payout or a collection that succeeded can be disputed; a refund, or a "
        "payment still in flight or failed, cannot.",
        "Dispute the collection a refund was made against, or wait for the payment's outcome.",
    ),
    ProblemType(
        "dispute_amount_exceeds_remaining",
        409,
        "More than is left to dispute",
        "A dispute's amount is at most the payment's amount less its refunds and what the "
        "payment's other disputes (open, or closed with the money returned) take.",
        "Dispute a smaller amount (`detail` says how much is left), or none: the "
        "payment's disputes already cover it.",
    ),
    ProblemType(
        "dispute_withdrawal_refused",
        409,
        "Only whoever opened the dispute can withdraw it",
        "A dispute the payer's bank raised through the rail, or one operations opened, is "
        "not yours to withdraw.",
        "Answer it instead: add evidence and respond, or accept it.",
    ),
    ProblemType(
        "evidence_not_accepted",
        409,
        "The dispute takes no more evidence",
        "Evidence is added while the dispute awaits your response (`needs_response`); "
        "once you responded it is under review and its evidence is fixed.",
        "Send everything before responding; if something essential turns up later, "
        "contact support, who can add it for you.",
    ),
    ProblemType(
        "evidence_limit_reached",
        409,
        "Too many evidence files",
        "A dispute holds a limited number of evidence files (10 unless configured otherwise).",
        "Combine documents into one PDF.",
    ),
    ProblemType(
        "evidence_type_not_allowed",
        415,
        "This kind of file is not accepted as evidence",
        f"Evidence is one of {_TYPES}, sent as the body with that `Content-Type` "
        "(plain text in UTF-8).",
        "Convert the file (a scan or a document to PDF, a screenshot to PNG) and send it "
        "with its `Content-Type`.",
    ),
    ProblemType(
        "evidence_content_mismatch",
        422,
        "The file is not what its Content-Type says",
        "The file's first bytes do not match its declared type: a PDF starts `%PDF-`, a "
        "PNG and a JPEG with their signatures, and plain text is UTF-8 without control "
        "characters.",
        "Send the file with the `Content-Type` of what it really is.",
    ),
    ProblemType(
        "evidence_too_large",
        413,
        "The evidence file is too large",
        "An evidence file is at most 5 MB unless configured otherwise.",
        "Compress the file (a lower-resolution scan), or split it into several files.",
    ),
    ProblemType(
        "evidence_empty",
        422,
        "The evidence file is empty",
        "The request's body, the file, has no bytes.",
        "Send the file itself as the body.",
    ),
]
