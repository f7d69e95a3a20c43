"""The domain's error hierarchy.

Every rule violation raises a subclass of :class:`DomainError` carrying a stable,
snake_case ``code`` that partners can branch on. Only ``platform/http/errors.py`` turns these into
HTTP problem documents, so the domain never knows about status codes.
"""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused an operation. ``code`` is stable and machine-readable."""

    code: str = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    """A value failed validation (an IBAN, CNIC, amount, ...).

    ``code`` names the family (``invalid_iban``); ``reason`` names exactly what was wrong
    (``checksum_mismatch``) so a partner's developer can fix the input without guessing.
    """

    code = "validation_error"

    def __init__(self, message: str, *, code: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, code=code)
        self.reason = reason or self.code


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Unavailable(Exception):
    """A dependency (the database's write lock, a remote service) did not answer in time.
    Not a business outcome: nothing changed, and the same request may simply be retried."""

    code = "service_unavailable"
    retry_after_seconds = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Contention(Unavailable):
    """The database gave up on this transaction to let others through (a deadlock, a
    serialization failure, a lock or statement timeout). Nothing of it was committed, so
    the whole unit of work may be run again; after a few tries the caller answers 503."""
