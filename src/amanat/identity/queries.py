"""Identity's read model: what the operator API, the console and the authorization pages
show about partners, clients and operators. Edges read through here, never a store."""

from __future__ import annotations

from datetime import datetime

from amanat.identity.domain import OAuthClient, Operator, Partner
from amanat.identity.ports import IdentityTx
from amanat.kernel.pagination import Page
from amanat.platform.db.ports import TransactionFactory


class IdentityQueries:
    def __init__(self, transactions: TransactionFactory[IdentityTx]) -> None:
        self._tx = transactions

    async def partners(self, limit: int, before: tuple[datetime, str] | None) -> Page[Partner]:
        """Newest first, keyset-paginated by (created_at, id)."""
        async with self._tx.read() as tx:
            return await tx.partners.list_partners(limit, before)

    async def partner(self, partner_id: str) -> Partner | None:
        async with self._tx.read() as tx:
            return await tx.partners.get_partner(partner_id)

    async def partner_with_clients(
        self, partner_id: str
    ) -> tuple[Partner | None, list[OAuthClient]]:
        async with self._tx.read() as tx:
            partner = await tx.partners.get_partner(partner_id)
            clients = await tx.partners.list_clients(partner_id) if partner else []
        return partner, clients

    async def client(self, client_id: str) -> OAuthClient | None:
        async with self._tx.read() as tx:
            return await tx.partners.get_client(client_id)

    async def client_and_partner(self, client_id: str) -> tuple[OAuthClient | None, Partner | None]:
        async with self._tx.read() as tx:
            client = await tx.partners.get_client(client_id) if client_id else None
            partner = await tx.partners.get_partner(client.partner_id) if client else None
        return client, partner

    async def operators(self) -> list[Operator]:
        async with self._tx.read() as tx:
            return await tx.operators.list_operators()

    async def per_transaction_limit(self, partner_id: str) -> int | None:
        """The partner's own limit (minor units), None for the platform default."""
        partner = await self.partner(partner_id)
        return partner.per_transaction_limit if partner else None
