"""Open banking's refusal codes, registered by its wiring. TPPs receive them as OBIE
``UK.OBIE.*`` error codes in OBErrorResponse1 bodies (routes/obie.py); the catalogue
entries give each a page under /problems for support and the operator console."""

from __future__ import annotations

from amanat.platform.http.problems import ProblemType

PROBLEMS: list[ProblemType] = [
    ProblemType(
        "open_banking_error",
        400,
        "Open-banking request refused",
        "The open-banking request broke a rule of the OBIE specification as amanat applies "
        "it; the OBIE error code and path in the answer name it.",
        "Read Errors[].ErrorCode and Errors[].Path of the OBErrorResponse1 body.",
    ),
    ProblemType(
        "consent_request_invalid",
        400,
        "Consent request not valid",
        "The consent asks for permissions the bank does not offer, a combination OBIE "
        "forbids (transactions without credits or debits, or the reverse), an expiry in "
        "the past, or a transaction window that ends before it starts.",
        "Fix the field named in Errors[].Path; the open-banking guide lists what is offered.",
    ),
    ProblemType(
        "resource_not_found",
        400,
        "No such open-banking resource",
        "No consent or resource with this id exists for this TPP client (OBIE answers 400 "
        "UK.OBIE.Resource.NotFound).",
        "Check the id, and that the same client that created the consent asks for it.",
    ),
    ProblemType(
        "consent_mismatch",
        403,
        "Not covered by the consent",
        "The token's consent does not cover this request: another account, a data cluster "
        "the permissions do not grant, another PSU, or a token not bound to a consent.",
        "Ask for a consent with the needed permissions and have the PSU authorise it.",
    ),
    ProblemType(
        "funds_unavailable",
        400,
        "The account cannot cover the payment",
        "The customer's account at the bank does not hold enough for this payment; nothing "
        "was debited and the payment consent is still usable (PK.AMANAT.InsufficientFunds).",
        "Ask the customer to fund the account, or check first with the consent's "
        "funds-confirmation.",
    ),
    ProblemType(
        "signature_refused",
        400,
        "Message signature refused",
        "The request's x-jws-signature is missing, malformed, signed with a key the client "
        "did not register, or does not match the body (UK.OBIE.Signature.*).",
        "Sign the exact body bytes with a registered key, with the OBIE header claims.",
    ),
    ProblemType(
        "invalid_consent_status",
        403,
        "Consent not usable",
        "The consent is not Authorised any more (revoked, expired, rejected or consumed), "
        "or it can no longer be decided.",
        "Create a new consent and send the PSU to authorise it.",
    ),
]
