"""In-memory fakes of identity's ports, for fast service tests (tests/unit/identity/).

Why this exists: PartnerService's rules (who may get a client, which scopes, what is
audited, what a refusal leaves untouched) are tested against these in milliseconds; the
SQL store keeps the same promises and is tested against a database (tests/integration,
tests/api). See amanat.platform.fakes for the unit of work and its rollback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from amanat.identity.access import OperatorRole
from amanat.identity.domain import OAuthClient, Operator, Partner
from amanat.identity.ports import (
    IdentityTx,
    OperatorRepository,
    PartnerRepository,
    SecretHasher,
    SessionRecord,
)
from amanat.identity.services.partners import PartnerService
from amanat.kernel.clock import FrozenClock
from amanat.kernel.pagination import Page
from amanat.platform.fakes import FakeDatabase, FakeTransaction, FakeTransactions, InMemoryStore


class InMemoryPartners(InMemoryStore):
    """Partners and their OAuth clients; ``revoked_jtis`` stands in for auth's revocation
    table, which ``access_of`` reads in the same statement."""

    def __init__(self) -> None:
        self.partners: dict[str, Partner] = {}
        self.clients: dict[str, OAuthClient] = {}
        self.revoked_jtis: set[str] = set()

    async def add_partner(self, partner: Partner) -> None:
        if partner.id in self.partners:
            raise ValueError(f"partner {partner.id} exists")
        self.partners[partner.id] = partner

    async def get_partner(self, partner_id: str) -> Partner | None:
        return self.partners.get(partner_id)

    async def list_partners(self, limit: int, before: tuple[datetime, str] | None) -> Page[Partner]:
        found = sorted(
            (p for p in self.partners.values() if before is None or (p.created_at, p.id) < before),
            key=lambda p: (p.created_at, p.id),
            reverse=True,
        )
        return Page(items=found[:limit], has_more=len(found) > limit)

    def _change(self, partner_id: str, **changes: object) -> None:
        # Like an UPDATE ... WHERE id = :id: a partner that is not there is left alone.
        if partner_id in self.partners:
            self.partners[partner_id] = replace(self.partners[partner_id], **changes)  # type: ignore[arg-type]

    async def set_partner_status(self, partner_id: str, status: str, at: datetime) -> None:
        self._change(partner_id, status=status, updated_at=at)

    async def set_transaction_limit(self, partner_id: str, limit: int | None, at: datetime) -> None:
        self._change(partner_id, per_transaction_limit=limit, updated_at=at)

    async def set_rate_limits(
        self, partner_id: str, quotas: Mapping[str, tuple[int, int]], at: datetime
    ) -> None:
        self._change(partner_id, rate_limits=dict(sorted(quotas.items())), updated_at=at)

    async def set_payee_check_requirement(
        self, partner_id: str, required: bool, at: datetime
    ) -> None:
        self._change(partner_id, require_payee_check=required, updated_at=at)

    async def add_client(self, client: OAuthClient) -> None:
        if client.id in self.clients:
            raise ValueError(f"client {client.id} exists")
        if client.partner_id not in self.partners:
            raise LookupError(f"no partner {client.partner_id}")  # the foreign key
        self.clients[client.id] = client

    async def get_client(self, client_id: str) -> OAuthClient | None:
        return self.clients.get(client_id)

    async def access_of(
        self, client_id: str, jti: str
    ) -> tuple[OAuthClient | None, Partner | None, bool]:
        client = self.clients.get(client_id)
        if client is None:
            return None, None, False
        return client, self.partners.get(client.partner_id), jti in self.revoked_jtis

    async def list_clients(self, partner_id: str) -> list[OAuthClient]:
        return sorted(
            (c for c in self.clients.values() if c.partner_id == partner_id),
            key=lambda c: c.created_at,
        )

    async def set_client_secret(self, client_id: str, secret_hash: str, at: datetime) -> None:
        if client_id in self.clients:
            self.clients[client_id] = replace(
                self.clients[client_id], secret_hash=secret_hash, secret_rotated_at=at
            )

    async def rehash_client_secret(self, client_id: str, old_hash: str, new_hash: str) -> bool:
        client = self.clients.get(client_id)
        if client is None or client.secret_hash != old_hash:
            return False
        self.clients[client_id] = replace(client, secret_hash=new_hash)
        return True

    async def revoke_client(self, client_id: str, at: datetime) -> None:
        if client_id in self.clients:
            self.clients[client_id] = replace(
                self.clients[client_id], status="revoked", revoked_at=at
            )


class InMemoryOperators(InMemoryStore):
    def __init__(self) -> None:
        self.operators: dict[str, Operator] = {}
        self.sessions: dict[str, SessionRecord] = {}

    async def add_operator(self, operator: Operator) -> None:
        if operator.id in self.operators or await self.get_operator_by_email(operator.email):
            raise ValueError(f"operator {operator.id} ({operator.email}) exists")
        self.operators[operator.id] = operator

    async def get_operator(self, operator_id: str) -> Operator | None:
        return self.operators.get(operator_id)

    async def get_operator_by_email(self, email: str) -> Operator | None:
        return next((o for o in self.operators.values() if o.email == email), None)

    async def list_operators(self) -> list[Operator]:
        return sorted(self.operators.values(), key=lambda o: o.email)

    async def save_login_state(self, operator: Operator) -> None:
        stored = self.operators.get(operator.id)
        if stored is not None:
            self.operators[operator.id] = replace(
                stored,
                failed_logins=operator.failed_logins,
                locked_until=operator.locked_until,
                last_totp_step=operator.last_totp_step,
                last_login_at=operator.last_login_at,
            )

    async def set_operator_roles(self, operator_id: str, roles: list[str]) -> None:
        stored = self.operators.get(operator_id)
        if stored is not None:
            self.operators[operator_id] = replace(
                stored, roles=frozenset(OperatorRole(r) for r in roles)
            )

    async def add_session(self, session: SessionRecord) -> None:
        self.sessions[session.id_hash] = replace(
            session, user_agent=(session.user_agent or "")[:256] or None, revoked_at=None
        )

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        return self.sessions.get(id_hash)

    async def touch_session(self, id_hash: str, idle_expires_at: datetime) -> None:
        if id_hash in self.sessions:
            self.sessions[id_hash] = replace(
                self.sessions[id_hash], idle_expires_at=idle_expires_at
            )

    async def revoke_session(self, id_hash: str, at: datetime) -> None:
        if id_hash in self.sessions:
            self.sessions[id_hash] = replace(self.sessions[id_hash], revoked_at=at)

    async def revoke_operator_sessions(self, operator_id: str, at: datetime) -> None:
        for key, session in list(self.sessions.items()):
            if session.operator_id == operator_id and session.revoked_at is None:
                self.sessions[key] = replace(session, revoked_at=at)


class FakeSecretHasher:
    """``fake$<version>$sha256``: fast and deterministic; ``needs_rehash`` for any version
    but ``current``, so a rehash can be tested."""

    def __init__(self, current: str = "v2") -> None:
        self.current = current

    async def hash(self, secret: str) -> str:
        return f"fake${self.current}${hashlib.sha256(secret.encode()).hexdigest()}"

    async def verify(self, hashed: str, secret: str) -> bool:
        _, _, digest = hashed.rpartition("$")
        return digest == hashlib.sha256(secret.encode()).hexdigest()

    def needs_rehash(self, hashed: str) -> bool:
        return not hashed.startswith(f"fake${self.current}$")


class FakeIdentityTx(FakeTransaction):
    """What ``IdentityTx`` names, over a database from :func:`identity_database`."""

    @property
    def partners(self) -> InMemoryPartners:
        return self.database.store("partners", InMemoryPartners)

    @property
    def operators(self) -> InMemoryOperators:
        return self.database.store("operators", InMemoryOperators)


def identity_database() -> FakeDatabase:
    return FakeDatabase(partners=InMemoryPartners(), operators=InMemoryOperators())


@dataclass(slots=True)
class FakeIdentity:
    clock: FrozenClock
    database: FakeDatabase
    transactions: FakeTransactions[FakeIdentityTx]
    hasher: FakeSecretHasher
    partners: PartnerService

    @property
    def store(self) -> InMemoryPartners:
        return self.database.store("partners", InMemoryPartners)


def fake_identity(*, clock: FrozenClock | None = None) -> FakeIdentity:
    clock = clock or FrozenClock()
    database = identity_database()
    transactions = FakeTransactions(database, FakeIdentityTx)
    hasher = FakeSecretHasher()
    return FakeIdentity(
        clock, database, transactions, hasher, PartnerService(transactions, clock, hasher)
    )


# mypy checks each fake against its Protocol here.
_partners: type[PartnerRepository] = InMemoryPartners
_operators: type[OperatorRepository] = InMemoryOperators
_hasher: type[SecretHasher] = FakeSecretHasher
_tx: type[IdentityTx] = FakeIdentityTx
