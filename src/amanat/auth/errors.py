"""Auth's errors, one family under the kernel's DomainError.

An :class:`OAuthError` carries the RFC 6749 error code and its description, nothing about
HTTP: the token endpoint's edge answers 401 with a Basic challenge for ``invalid_client``
and 400 for the rest (RFC 6749 §5.2).
"""

from __future__ import annotations

from amanat.kernel.errors import DomainError


class AuthError(DomainError):
    """Something the authorization server refused."""


class OAuthError(AuthError):
    def __init__(self, error: str, description: str) -> None:
        # The problem code carries the ``oauth_`` prefix so that it names its page.
        super().__init__(description, code=f"oauth_{error}")
        self.error = error
        self.description = description


class TokenRejected(AuthError):
    """The bearer token cannot be used; ``reason`` is safe to log, never the token."""

    code = "unauthorized"  # the edge answers 401 unauthorized with a Bearer challenge

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
