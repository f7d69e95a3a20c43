"""The interfaces services need from the outside world; adapters implement them."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from amanat.domain.audit import Actor, AuditRecord
from amanat.domain.identity import OAuthClient, Operator, Partner

if TYPE_CHECKING:
    from amanat.services.signing_keys import SigningKey


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id_hash: str
    operator_id: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    idle_expires_at: datetime
    source_ip: str | None
    user_agent: str | None
    revoked_at: datetime | None


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


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    has_more: bool


class PartnerRepository(Protocol):
    async def add_partner(self, partner: Partner) -> None: ...
    async def get_partner(self, partner_id: str) -> Partner | None: ...
    async def list_partners(self, limit: int, before: tuple[datetime, str] | None) -> Page: ...
    async def set_partner_status(self, partner_id: str, status: str, at: datetime) -> None: ...
    async def add_client(self, client: OAuthClient) -> None: ...
    async def get_client(self, client_id: str) -> OAuthClient | None: ...
    async def list_clients(self, partner_id: str) -> list[OAuthClient]: ...
    async def set_client_secret(self, client_id: str, secret_hash: str, at: datetime) -> None: ...
    async def revoke_client(self, client_id: str, at: datetime) -> None: ...


class TokenRepository(Protocol):
    async def revoke_jti(
        self, jti: str, client_id: str | None, expires_at: datetime, at: datetime, reason: str
    ) -> None: ...
    async def is_revoked(self, jti: str) -> bool: ...
    async def add_code(self, code: AuthorizationCode) -> None: ...
    async def get_code_for_update(self, code_hash: str) -> AuthorizationCode | None: ...
    async def mark_code_used(self, code_hash: str, at: datetime, family_id: str) -> None: ...
    async def add_refresh(self, token: RefreshToken) -> None: ...
    async def get_refresh_for_update(self, token_hash: str) -> RefreshToken | None: ...
    async def mark_refresh_used(self, token_hash: str, at: datetime) -> None: ...
    async def revoke_family(self, family_id: str, at: datetime) -> list[RefreshToken]: ...
    async def remember_assertion(self, client_id: str, jti: str, expires_at: datetime) -> bool: ...


class OperatorRepository(Protocol):
    async def add_operator(self, operator: Operator) -> None: ...
    async def get_operator(self, operator_id: str) -> Operator | None: ...
    async def get_operator_by_email(self, email: str) -> Operator | None: ...
    async def list_operators(self) -> list[Operator]: ...
    async def save_login_state(self, operator: Operator) -> None: ...
    async def set_operator_roles(self, operator_id: str, roles: list[str]) -> None: ...
    async def add_session(self, session: SessionRecord) -> None: ...
    async def get_session(self, id_hash: str) -> SessionRecord | None: ...
    async def touch_session(self, id_hash: str, idle_expires_at: datetime) -> None: ...
    async def revoke_session(self, id_hash: str, at: datetime) -> None: ...
    async def revoke_operator_sessions(self, operator_id: str, at: datetime) -> None: ...


class AuditRepository(Protocol):
    async def append(
        self,
        *,
        record_id: str,
        occurred_at: datetime,
        actor: Actor,
        action: str,
        target_type: str | None,
        target_id: str | None,
        payload: dict[str, Any],
    ) -> AuditRecord: ...

    async def list_records(
        self, limit: int, before_seq: int | None, action: str | None, target_id: str | None
    ) -> Page: ...


class SigningKeyRepository(Protocol):
    async def list_keys(self) -> list[SigningKey]: ...
    async def add_key(self, key: SigningKey) -> None: ...
    async def set_status(
        self, kid: str, status: str, retire_after: datetime | None, retired_at: datetime | None
    ) -> None: ...


class Transaction(Protocol):
    """Repositories bound to one database transaction."""

    @property
    def signing_keys(self) -> SigningKeyRepository: ...
    @property
    def partners(self) -> PartnerRepository: ...
    @property
    def tokens(self) -> TokenRepository: ...
    @property
    def operators(self) -> OperatorRepository: ...
    @property
    def audit(self) -> AuditRepository: ...


class TransactionFactory(Protocol):
    def write(self) -> AbstractAsyncContextManager[Transaction]: ...
    def read(self) -> AbstractAsyncContextManager[Transaction]: ...


class SecretHasher(Protocol):
    async def hash(self, secret: str) -> str: ...
    async def verify(self, hashed: str, secret: str) -> bool: ...


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
