"""The root of payments' errors. The HTTP edge decides a status from the kernel kind each
also is (InvalidInput, Conflict...), never from the family."""

from __future__ import annotations

from amanat.kernel.errors import DomainError


class PaymentsError(DomainError):
    """Something payments refused."""
