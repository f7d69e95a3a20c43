"""Partner onboarding and the lifecycle of their OAuth clients.

A client secret is generated here, returned exactly once, and stored only as a hash
(``adapters.crypto.client_secrets``). Every change is audited in the same transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from amanat.identity.access import grantable_scopes, parse_roles
from amanat.identity.domain import (
    MAX_PARTNER_RATE_LIMIT,
    MAX_RATE_LIMIT_WINDOW_SECONDS,
    ClientAuthMethod,
    Mode,
    OAuthClient,
    Partner,
)
from amanat.identity.ports import IdentityTx, SecretHasher
from amanat.kernel.clock import Clock
from amanat.kernel.errors import Conflict, InvalidInput, NotFound
from amanat.kernel.ids import new_id
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.ports import TransactionFactory
from amanat.platform.ratelimit.names import PARTNER_RATE_LIMIT_POLICIES

SECRET_PREFIX = "cs_"


def new_client_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class IssuedClient:
    client: OAuthClient
    secret: str | None  # shown once; None for private_key_jwt clients


def _check_redirect_uris(uris: list[str], mode: Mode) -> tuple[str, ...]:
    checked: list[str] = []
    for uri in uris:
        parts = urlsplit(uri)
        loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
        if parts.fragment or not parts.netloc:
            raise InvalidInput(
                f"Redirect URI '{uri}' must be absolute with no fragment.",
                code="invalid_redirect_uri",
            )
        if parts.scheme != "https" and not (
            parts.scheme == "http" and loopback and mode is Mode.SANDBOX
        ):
            raise InvalidInput(
                f"Redirect URI '{uri}' must use https (http only for loopback in sandbox).",
                code="invalid_redirect_uri",
            )
        checked.append(uri)
    return tuple(checked)


def _check_jwks(jwks: dict[str, Any] | None, jwks_uri: str | None) -> None:
    if jwks is None and jwks_uri is None:
        raise InvalidInput(
            "private_key_jwt clients must register a JWKS or a jwks_uri.",
            code="invalid_client_metadata",
        )
    if jwks is not None:
        keys = jwks.get("keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
            raise InvalidInput(
                "jwks must be an object with a non-empty 'keys' array.",
                code="invalid_client_metadata",
            )
        if any("d" in k for k in keys):
            raise InvalidInput(
                "jwks must contain public keys only.", code="invalid_client_metadata"
            )
    if jwks_uri is not None and not jwks_uri.startswith("https://"):
        raise InvalidInput("jwks_uri must be an https URL.", code="invalid_client_metadata")


def _mode(value: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise InvalidInput(
            f"mode must be 'sandbox' or 'production', not '{value[:20]}'.", code="validation_error"
        ) from None


class PartnerService:
    def __init__(
        self, transactions: TransactionFactory[IdentityTx], clock: Clock, hasher: SecretHasher
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._hasher = hasher

    async def create_partner(
        self, actor: Actor, *, name: str, roles: list[str], mode: str
    ) -> Partner:
        if not name.strip():
            raise InvalidInput("A partner needs a name.", code="validation_error")
        now = self._clock.now()
        partner = Partner(
            id=new_id("partner"),
            name=name.strip(),
            roles=parse_roles(roles),
            mode=_mode(mode),
            status="active",
            created_at=now,
            updated_at=now,
        )
        async with self._tx.write() as tx:
            await tx.partners.add_partner(partner)
            await audit.record(
                tx,
                self._clock,
                actor,
                "partner.created",
                target_type="partner",
                target_id=partner.id,
                payload={
                    "name": partner.name,
                    "mode": partner.mode.value,
                    "roles": sorted(r.value for r in partner.roles),
                },
            )
        return partner

    async def create_client(
        self,
        actor: Actor,
        partner_id: str,
        *,
        name: str,
        auth_method: str = ClientAuthMethod.SECRET_BASIC.value,
        scopes: list[str] | None = None,
        redirect_uris: list[str] | None = None,
        jwks: dict[str, Any] | None = None,
        jwks_uri: str | None = None,
    ) -> IssuedClient:
        try:
            method = ClientAuthMethod(auth_method)
        except ValueError:
            raise InvalidInput(
                f"Unsupported token endpoint auth method '{auth_method}'.",
                code="invalid_client_metadata",
            ) from None
        if method is ClientAuthMethod.PRIVATE_KEY_JWT or jwks is not None or jwks_uri is not None:
            # Keys registered for message signing (open banking's x-jws-signature) meet
            # the same rules as those for private_key_jwt: public, well-formed, https.
            _check_jwks(jwks, jwks_uri)
        now = self._clock.now()
        secret = None if method is ClientAuthMethod.PRIVATE_KEY_JWT else new_client_secret()
        secret_hash = await self._hasher.hash(secret) if secret else None
        async with self._tx.write() as tx:
            partner = await tx.partners.get_partner(partner_id)
            if partner is None:
                raise NotFound(f"No partner '{partner_id}'.")
            if not partner.is_active:
                raise Conflict("The partner is suspended; reactivate it first.")
            allowed = grantable_scopes(scopes or [], partner.allowed_scopes)
            client = OAuthClient(
                id=new_id("client"),
                partner_id=partner.id,
                name=name.strip() or partner.name,
                auth_method=method,
                secret_hash=secret_hash,
                jwks=jwks,
                jwks_uri=jwks_uri,
                redirect_uris=_check_redirect_uris(redirect_uris or [], partner.mode),
                allowed_scopes=frozenset(allowed),
                status="active",
                created_at=now,
            )
            await tx.partners.add_client(client)
            await audit.record(
                tx,
                self._clock,
                actor,
                "client.created",
                target_type="client",
                target_id=client.id,
                payload={
                    "partner_id": partner.id,
                    "auth_method": method.value,
                    "scopes": sorted(allowed),
                    "redirect_uris": list(client.redirect_uris),
                },
            )
        return IssuedClient(client=client, secret=secret)

    async def rotate_client_secret(self, actor: Actor, client_id: str) -> IssuedClient:
        secret = new_client_secret()
        secret_hash = await self._hasher.hash(secret)
        now = self._clock.now()
        async with self._tx.write() as tx:
            client = await tx.partners.get_client(client_id)
            if client is None:
                raise NotFound(f"No client '{client_id}'.")
            if client.auth_method is ClientAuthMethod.PRIVATE_KEY_JWT:
                raise Conflict(
                    "This client authenticates with private_key_jwt; it has no secret to rotate."
                )
            if not client.is_active:
                raise Conflict("The client is revoked.")
            await tx.partners.set_client_secret(client_id, secret_hash, now)
            await audit.record(
                tx,
                self._clock,
                actor,
                "client.secret_rotated",
                target_type="client",
                target_id=client_id,
            )
            client = await tx.partners.get_client(client_id)
        assert client is not None
        return IssuedClient(client=client, secret=secret)

    async def revoke_client(self, actor: Actor, client_id: str) -> OAuthClient:
        now = self._clock.now()
        async with self._tx.write() as tx:
            client = await tx.partners.get_client(client_id)
            if client is None:
                raise NotFound(f"No client '{client_id}'.")
            if not client.is_active:
                return client  # already revoked: nothing changes, nothing more to audit
            await tx.partners.revoke_client(client_id, now)
            await audit.record(
                tx, self._clock, actor, "client.revoked", target_type="client", target_id=client_id
            )
            revoked = await tx.partners.get_client(client_id)
        assert revoked is not None
        return revoked

    async def set_transaction_limit(self, actor: Actor, partner_id: str, limit: int | None) -> None:
        """Per-partner per-transaction limit in minor units; None restores the default."""
        if limit is not None and limit <= 0:
            raise InvalidInput(
                "The limit must be a positive amount in paisa.", code="invalid_amount"
            )
        async with self._tx.write() as tx:
            await _partner_to_change(tx, partner_id)
            await tx.partners.set_transaction_limit(partner_id, limit, self._clock.now())
            await audit.record(
                tx,
                self._clock,
                actor,
                "partner.limit_changed",
                target_type="partner",
                target_id=partner_id,
                payload={"per_transaction_limit": limit},
            )

    async def set_rate_limit(
        self,
        actor: Actor,
        partner_id: str,
        policy: str,
        quota: tuple[int, int] | None,
    ) -> Partner:
        """A partner's own ``(limit, window_seconds)`` for ``policy``; None restores the
        platform's quota. Applies from the partner's next request, in every API process
        (the partner is read with each access-token check)."""
        if policy not in PARTNER_RATE_LIMIT_POLICIES:
            raise InvalidInput(
                f"policy must be one of: {', '.join(sorted(PARTNER_RATE_LIMIT_POLICIES))}.",
                code="validation_error",
            )
        if quota is not None:
            limit, window = quota
            if not 1 <= limit <= MAX_PARTNER_RATE_LIMIT:
                raise InvalidInput(
                    f"limit must be between 1 and {MAX_PARTNER_RATE_LIMIT} requests.",
                    code="validation_error",
                )
            if not 1 <= window <= MAX_RATE_LIMIT_WINDOW_SECONDS:
                raise InvalidInput(
                    f"window_seconds must be between 1 and {MAX_RATE_LIMIT_WINDOW_SECONDS}.",
                    code="validation_error",
                )
        async with self._tx.write() as tx:
            partner = await _partner_to_change(tx, partner_id)
            quotas = dict(partner.rate_limits)
            previous = quotas.pop(policy, None)
            if quota is not None:
                quotas[policy] = quota
            now = self._clock.now()
            await tx.partners.set_rate_limits(partner_id, quotas, now)
            await audit.record(
                tx,
                self._clock,
                actor,
                "partner.rate_limit_changed",
                target_type="partner",
                target_id=partner_id,
                payload={
                    "policy": policy,
                    "from": list(previous) if previous else None,
                    "to": list(quota) if quota else None,
                },
            )
        return replace(partner, rate_limits=quotas, updated_at=now)

    async def set_payee_check_requirement(
        self, actor: Actor, partner_id: str, required: bool
    ) -> Partner:
        """Whether the partner's payouts need a recent payee check (a match or close
        match of ``POST /v1/payee_checks``) of the account they pay. Applies from the
        partner's next request (the partner is read with each access-token check)."""
        async with self._tx.write() as tx:
            partner = await _partner_to_change(tx, partner_id)
            now = self._clock.now()
            await tx.partners.set_payee_check_requirement(partner_id, required, now)
            await audit.record(
                tx,
                self._clock,
                actor,
                "partner.payee_check_requirement_changed",
                target_type="partner",
                target_id=partner_id,
                payload={"from": partner.require_payee_check, "to": required},
            )
        return replace(partner, require_payee_check=required, updated_at=now)

    async def set_partner_status(self, actor: Actor, partner_id: str, status: str) -> Partner:
        if status not in {"active", "suspended"}:
            raise InvalidInput("status must be 'active' or 'suspended'.", code="validation_error")
        now = self._clock.now()
        async with self._tx.write() as tx:
            if await tx.partners.get_partner(partner_id) is None:
                raise NotFound(f"No partner '{partner_id}'.")
            await tx.partners.set_partner_status(partner_id, status, now)
            await audit.record(
                tx,
                self._clock,
                actor,
                f"partner.{status}",
                target_type="partner",
                target_id=partner_id,
            )
            partner = await tx.partners.get_partner(partner_id)
        assert partner is not None
        return partner


async def _partner_to_change(tx: IdentityTx, partner_id: str) -> Partner:
    """The partner a limit is set for, or NotFound (naming at most 40 characters of an id
    that came from the request)."""
    partner = await tx.partners.get_partner(partner_id)
    if partner is None:
        raise NotFound(f"No partner '{partner_id[:40]}'.")
    return partner
