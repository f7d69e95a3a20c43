"""What the authorization server needs: token and signing-key stores, the access-token
codec and client-assertion verification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from amanat.auth.domain import SigningKey
from amanat.identity.domain import OAuthClient
from amanat.identity.ports import PartnerRepository
from amanat.platform.unit_of_work.ports import Transaction


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    code_hash: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str
    subject: str
    consent_id: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    family_id: str | None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    token_hash: str
    family_id: str
    client_id: str
    scopes: tuple[str, ...]
    subject: str
    consent_id: str | None
    access_jti: str
    access_expires_at: datetime
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class TokenRepository(Protocol):
    async def revoke_jti(
        self, jti: str, client_id: str | None, expires_at: datetime, at: datetime, reason: str
    ) -> bool:
        """Record the revocation; False if the token was already revoked."""
        ...

    async def is_revoked(self, jti: str) -> bool: ...
    async def revocations_since(self, expires_after: datetime) -> list[tuple[str, datetime]]:
        """Revoked jtis (as stored) of tokens expiring after ``expires_after``."""
        ...

    async def add_code(self, code: AuthorizationCode) -> None: ...
    async def get_code_for_update(self, code_hash: str) -> AuthorizationCode | None: ...
    async def mark_code_used(self, code_hash: str, at: datetime, family_id: str) -> None: ...
    async def add_refresh(self, token: RefreshToken) -> None: ...
    async def get_refresh_for_update(self, token_hash: str) -> RefreshToken | None: ...
    async def mark_refresh_used(self, token_hash: str, at: datetime) -> None: ...
    async def revoke_family(self, family_id: str, at: datetime) -> list[RefreshToken]: ...
    async def families_of_consent(self, consent_id: str) -> list[str]:
        """Token families issued under ``consent_id`` that still hold a live token."""
        ...

    async def remember_assertion(self, client_id: str, jti: str, expires_at: datetime) -> bool: ...


class SigningKeyRepository(Protocol):
    async def list_keys(self) -> list[SigningKey]: ...
    async def add_key(self, key: SigningKey) -> None: ...
    async def set_status(
        self, kid: str, status: str, retire_after: datetime | None, retired_at: datetime | None
    ) -> None: ...


class InvalidToken(Exception):
    """A presented JWT failed verification; ``reason`` is safe to log, never the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccessTokenCodec(Protocol):
    async def sign(self, claims: dict[str, Any]) -> str: ...
    async def verify(self, token: str) -> dict[str, Any]: ...
    async def jwks(self) -> dict[str, Any]: ...


class ClientAssertionVerifier(Protocol):
    async def verify(self, assertion: str, client: OAuthClient) -> dict[str, Any]:
        """Check the signature against the client's registered keys; raise InvalidToken."""
        ...

    def subject(self, assertion: str) -> str | None:
        """The ``sub`` claim, read without verifying (it names the client to verify
        against); None when the assertion cannot be read."""
        ...


class AuthTx(Transaction, Protocol):
    @property
    def partners(self) -> PartnerRepository: ...
    @property
    def tokens(self) -> TokenRepository: ...


class SigningKeysTx(Transaction, Protocol):
    @property
    def signing_keys(self) -> SigningKeyRepository: ...


class SigningKeyRing(Protocol):
    """The keys this process signs and verifies tokens with, as loaded from the store."""

    async def refresh(self, *, force: bool = False) -> None: ...
    async def public_jwks(self) -> dict[str, Any]: ...
