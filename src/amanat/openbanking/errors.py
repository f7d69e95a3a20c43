"""Open banking's refusals, each carrying the OBIE error code (``UK.OBIE.*``) and the
JSON path it concerns, so the edge answers with an OBErrorResponse1 a TPP's OBIE client
already understands."""

from __future__ import annotations

from amanat.kernel.errors import DomainError


class OpenBankingError(DomainError):
    """``status`` is the HTTP status the OBIE specification gives this refusal."""

    code = "open_banking_error"
    status = 400
    obie_code = "UK.OBIE.Field.Invalid"

    def __init__(
        self, message: str, *, path: str | None = None, obie_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        if obie_code is not None:
            self.obie_code = obie_code


class FieldInvalid(OpenBankingError):
    code = "consent_request_invalid"


class ResourceNotFound(OpenBankingError):
    code = "resource_not_found"
    obie_code = "UK.OBIE.Resource.NotFound"


class ConsentMismatch(OpenBankingError):
    """The token's consent does not cover this resource (another account, another kind)."""

    code = "consent_mismatch"
    status = 403
    obie_code = "UK.OBIE.Resource.ConsentMismatch"


class InvalidConsentStatus(OpenBankingError):
    """The consent is not in a status that allows this (withdrawn, expired, consumed...)."""

    code = "invalid_consent_status"
    status = 403
    obie_code = "UK.OBIE.Resource.InvalidConsentStatus"


class ConsentStateConflict(OpenBankingError):
    """A PSU or TPP step the consent's status no longer allows (already decided...)."""

    code = "invalid_consent_status"
    obie_code = "UK.OBIE.Resource.InvalidConsentStatus"


class FundsUnavailable(OpenBankingError):
    """The customer's account cannot cover the payment (the bank refuses it)."""

    code = "funds_unavailable"
    obie_code = "PK.AMANAT.InsufficientFunds"  # a namespaced code of our own: none fits in v3.1.11


class SignatureRefused(OpenBankingError):
    """The request's x-jws-signature is missing, malformed or does not verify."""

    code = "signature_refused"
    obie_code = "UK.OBIE.Signature.Invalid"
