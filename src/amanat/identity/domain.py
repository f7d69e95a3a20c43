"""Partners, their OAuth clients, and operators: the records and their rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from amanat.identity.access import (
    OperatorRole,
    PartnerRole,
    Permission,
    permissions_for,
    scopes_for_roles,
)

# The rate-limit policies an operator may set per partner: the ones counted per client of
# a known partner (token requests are counted before the partner is known).
MAX_PARTNER_RATE_LIMIT = 1_000_000_000
MAX_RATE_LIMIT_WINDOW_SECONDS = 86_400


class Mode(StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class ClientAuthMethod(StrEnum):
    SECRET_BASIC = "client_secret_basic"
    SECRET_POST = "client_secret_post"
    PRIVATE_KEY_JWT = "private_key_jwt"


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    name: str
    roles: frozenset[PartnerRole]
    mode: Mode
    status: str
    created_at: datetime
    updated_at: datetime
    per_transaction_limit: int | None = None  # None: the platform's default applies
    # Rate-limit policy name -> (limit, window_seconds), replacing the platform's quota.
    rate_limits: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # Payouts only to accounts this partner confirmed with a payee check lately.
    require_payee_check: bool = False

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def allowed_scopes(self) -> frozenset[str]:
        return scopes_for_roles(self.roles)


@dataclass(frozen=True, slots=True)
class OAuthClient:
    id: str
    partner_id: str
    name: str
    auth_method: ClientAuthMethod
    secret_hash: str | None
    jwks: dict[str, object] | None
    jwks_uri: str | None
    redirect_uris: tuple[str, ...]
    allowed_scopes: frozenset[str]
    status: str
    created_at: datetime
    secret_rotated_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def effective_scopes(self, partner: Partner) -> frozenset[str]:
        """Never more than the partner's roles allow, even if the row says otherwise."""
        return self.allowed_scopes & partner.allowed_scopes


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    email: str
    name: str
    password_hash: str
    totp_secret: str
    roles: frozenset[OperatorRole]
    status: str
    failed_logins: int
    locked_until: datetime | None
    last_totp_step: int | None
    created_at: datetime
    last_login_at: datetime | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_for(self.roles)

    def after_successful_login(self, now: datetime, totp_step: int) -> Operator:
        return replace(
            self, failed_logins=0, locked_until=None, last_login_at=now, last_totp_step=totp_step
        )
