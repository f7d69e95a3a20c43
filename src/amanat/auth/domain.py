"""Pure rules of the authorization server: token-signing keys and their states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from amanat.identity.domain import Partner
from amanat.platform.audit.domain import Actor


class KeyStatus(StrEnum):
    ACTIVE = "active"  # signs new tokens, and verifies
    VERIFYING = "verifying"  # verifies tokens it signed until they have all expired
    RETIRED = "retired"  # gone from the JWKS


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    private_pem: str
    encrypted: bool
    public_jwk: dict[str, Any]
    status: KeyStatus
    created_at: datetime
    retire_after: datetime | None = None
    retired_at: datetime | None = None

    def verifies_at(self, now: datetime) -> bool:
        if self.status is KeyStatus.ACTIVE:
            return True
        return self.status is KeyStatus.VERIFYING and (
            self.retire_after is None or self.retire_after > now
        )


@dataclass(frozen=True, slots=True)
class Caller:
    """Who acts, on behalf of which partner: what a partner-facing use case needs to know
    of the verified request (the audit actor, and the client for idempotent records)."""

    partner_id: str
    client_id: str | None
    actor: Actor
    # The partner as the token check read it, one statement before this request's
    # transaction; None makes the payment read its limit itself.
    partner: Partner | None = None
