"""Identity's errors: one family under the kernel's DomainError; the HTTP edge decides
their status from the family of each (platform/http/errors.py)."""

from __future__ import annotations

from amanat.kernel.errors import DomainError


class IdentityError(DomainError):
    """Something identity refused (sign-in, permissions)."""


class LoginFailed(IdentityError):
    code = "login_failed"


class AccountLocked(IdentityError):
    code = "account_locked"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("Too many failed attempts from this address; try again later.")
        self.retry_after_seconds = retry_after_seconds


class PermissionDenied(IdentityError):
    code = "forbidden"
