"""Partners, clients, tokens and operators in SQL (implements the services' ports)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.auth.tables import (
    revoked_tokens,
)
from amanat.identity.access import OperatorRole, PartnerRole
from amanat.identity.domain import ClientAuthMethod, Mode, OAuthClient, Operator, Partner
from amanat.identity.ports import ACCESS_CHANGED, SessionRecord
from amanat.identity.tables import oauth_clients, operator_sessions, operators, partners
from amanat.kernel.pagination import Page
from amanat.platform.db.dialect import column_width, locked, storable, stored_key
from amanat.platform.db.raw_read import RawRead
from amanat.platform.invalidation.notify import announce

_REVOKED_JTI_WIDTH = column_width(revoked_tokens.c.jti)


def _partner(row: Any) -> Partner:
    return Partner(
        id=row.id,
        name=row.name,
        roles=frozenset(PartnerRole(r) for r in row.roles),
        mode=Mode(row.mode),
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        per_transaction_limit=row.per_transaction_limit,
        rate_limits={
            name: (int(quota[0]), int(quota[1])) for name, quota in (row.rate_limits or {}).items()
        },
        require_payee_check=bool(row.require_payee_check),
    )


def _client(row: Any) -> OAuthClient:
    return OAuthClient(
        id=row.id,
        partner_id=row.partner_id,
        name=row.name,
        auth_method=ClientAuthMethod(row.auth_method),
        secret_hash=row.secret_hash,
        jwks=row.jwks,
        jwks_uri=row.jwks_uri,
        redirect_uris=tuple(row.redirect_uris),
        allowed_scopes=frozenset(row.allowed_scopes),
        status=row.status,
        created_at=row.created_at,
        secret_rotated_at=row.secret_rotated_at,
        revoked_at=row.revoked_at,
    )


def _operator(row: Any) -> Operator:
    return Operator(
        id=row.id,
        email=row.email,
        name=row.name,
        password_hash=row.password_hash,
        totp_secret=row.totp_secret,
        roles=frozenset(OperatorRole(r) for r in row.roles),
        status=row.status,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
        last_totp_step=row.last_totp_step,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


# Every authenticated request runs this; built once (see the package docstring), read
# through the driver directly (raw_read.py). Both tables' columns, named apart.
_CLIENT_COLUMNS = {f"client_{c.name}": c.name for c in oauth_clients.c}
_PARTNER_COLUMNS = {f"partner_{c.name}": c.name for c in partners.c}
_ACCESS_OF = RawRead(
    sa.select(
        *[oauth_clients.c[name].label(label) for label, name in _CLIENT_COLUMNS.items()],
        *[partners.c[name].label(label) for label, name in _PARTNER_COLUMNS.items()],
        sa.exists()
        .where(revoked_tokens.c.jti == sa.bindparam("jti", type_=sa.String))
        .label("revoked"),
    )
    .join(partners, partners.c.id == oauth_clients.c.partner_id)
    .where(oauth_clients.c.id == sa.bindparam("client_id", type_=sa.String))
)


def _columns_of(row: Any, labels: Mapping[str, str]) -> SimpleNamespace:
    return SimpleNamespace(**{name: getattr(row, label) for label, name in labels.items()})


class SqlPartnerRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_partner(self, partner: Partner) -> None:
        await self._conn.execute(
            partners.insert(),
            {
                "id": partner.id,
                "name": partner.name,
                "roles": sorted(r.value for r in partner.roles),
                "mode": partner.mode.value,
                "status": partner.status,
                "created_at": partner.created_at,
                "updated_at": partner.updated_at,
            },
        )

    async def get_partner(self, partner_id: str) -> Partner | None:
        if not storable(partner_id):
            return None
        row = (
            await self._conn.execute(partners.select().where(partners.c.id == partner_id))
        ).first()
        return _partner(row) if row else None

    async def list_partners(self, limit: int, before: tuple[datetime, str] | None) -> Page[Partner]:
        stmt = partners.select().order_by(partners.c.created_at.desc(), partners.c.id.desc())
        if before is not None:
            at, pid = before
            stmt = stmt.where(
                sa.or_(
                    partners.c.created_at < at,
                    sa.and_(partners.c.created_at == at, partners.c.id < pid),
                )
            )
        rows = (await self._conn.execute(stmt.limit(limit + 1))).all()
        return Page(items=[_partner(r) for r in rows[:limit]], has_more=len(rows) > limit)

    async def set_partner_status(self, partner_id: str, status: str, at: datetime) -> None:
        await self._conn.execute(
            partners.update()
            .where(partners.c.id == partner_id)
            .values(status=status, updated_at=at)
        )
        await announce(self._conn, ACCESS_CHANGED, partner_id)

    async def set_transaction_limit(self, partner_id: str, limit: int | None, at: datetime) -> None:
        await self._conn.execute(
            partners.update()
            .where(partners.c.id == partner_id)
            .values(per_transaction_limit=limit, updated_at=at)
        )
        await announce(self._conn, ACCESS_CHANGED, partner_id)

    async def set_rate_limits(
        self, partner_id: str, quotas: Mapping[str, tuple[int, int]], at: datetime
    ) -> None:
        stored = {name: [limit, window] for name, (limit, window) in sorted(quotas.items())}
        await self._conn.execute(
            partners.update()
            .where(partners.c.id == partner_id)
            .values(rate_limits=stored or None, updated_at=at)
        )
        await announce(self._conn, ACCESS_CHANGED, partner_id)

    async def set_payee_check_requirement(
        self, partner_id: str, required: bool, at: datetime
    ) -> None:
        await self._conn.execute(
            partners.update()
            .where(partners.c.id == partner_id)
            .values(require_payee_check=required, updated_at=at)
        )
        await announce(self._conn, ACCESS_CHANGED, partner_id)

    async def add_client(self, client: OAuthClient) -> None:
        await self._conn.execute(
            oauth_clients.insert(),
            {
                "id": client.id,
                "partner_id": client.partner_id,
                "name": client.name,
                "auth_method": client.auth_method.value,
                "secret_hash": client.secret_hash,
                "jwks": client.jwks,
                "jwks_uri": client.jwks_uri,
                "redirect_uris": list(client.redirect_uris),
                "allowed_scopes": sorted(client.allowed_scopes),
                "status": client.status,
                "created_at": client.created_at,
            },
        )

    async def get_client(self, client_id: str) -> OAuthClient | None:
        if not storable(client_id):
            return None  # no stored id contains NUL, and PostgreSQL would refuse to look
        row = (
            await self._conn.execute(oauth_clients.select().where(oauth_clients.c.id == client_id))
        ).first()
        return _client(row) if row else None

    async def access_of(
        self, client_id: str, jti: str
    ) -> tuple[OAuthClient | None, Partner | None, bool]:
        """What every authenticated request needs, in one round trip: the client, its
        partner, and whether the token's ``jti`` is revoked."""
        if not storable(client_id) or not storable(jti):
            return None, None, False
        params = {"client_id": client_id, "jti": stored_key(jti, _REVOKED_JTI_WIDTH)}
        row = await _ACCESS_OF.first(self._conn, params)
        if row is None:
            return None, None, False
        client = _client(_columns_of(row, _CLIENT_COLUMNS))
        partner = _partner(_columns_of(row, _PARTNER_COLUMNS))
        return client, partner, bool(row.revoked)

    async def list_clients(self, partner_id: str) -> list[OAuthClient]:
        rows = (
            await self._conn.execute(
                oauth_clients.select()
                .where(oauth_clients.c.partner_id == partner_id)
                .order_by(oauth_clients.c.created_at)
            )
        ).all()
        return [_client(r) for r in rows]

    async def set_client_secret(self, client_id: str, secret_hash: str, at: datetime) -> None:
        await self._conn.execute(
            oauth_clients.update()
            .where(oauth_clients.c.id == client_id)
            .values(secret_hash=secret_hash, secret_rotated_at=at)
        )
        await announce(self._conn, ACCESS_CHANGED, client_id)

    async def rehash_client_secret(self, client_id: str, old_hash: str, new_hash: str) -> bool:
        result = await self._conn.execute(
            oauth_clients.update()
            .where(oauth_clients.c.id == client_id, oauth_clients.c.secret_hash == old_hash)
            .values(secret_hash=new_hash)
        )
        await announce(self._conn, ACCESS_CHANGED, client_id)
        return bool(result.rowcount)

    async def revoke_client(self, client_id: str, at: datetime) -> None:
        await self._conn.execute(
            oauth_clients.update()
            .where(oauth_clients.c.id == client_id)
            .values(status="revoked", revoked_at=at)
        )
        await announce(self._conn, ACCESS_CHANGED, client_id)


class SqlOperatorRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_operator(self, operator: Operator) -> None:
        await self._conn.execute(
            operators.insert(),
            {
                "id": operator.id,
                "email": operator.email,
                "name": operator.name,
                "password_hash": operator.password_hash,
                "totp_secret": operator.totp_secret,
                "roles": sorted(r.value for r in operator.roles),
                "status": operator.status,
                "failed_logins": operator.failed_logins,
                "locked_until": operator.locked_until,
                "last_totp_step": operator.last_totp_step,
                "created_at": operator.created_at,
                "last_login_at": operator.last_login_at,
            },
        )

    async def get_operator(self, operator_id: str) -> Operator | None:
        stmt = operators.select().where(operators.c.id == operator_id)
        row = (await self._conn.execute(locked(stmt, self._conn))).first()
        return _operator(row) if row else None

    async def get_operator_by_email(self, email: str) -> Operator | None:
        if not storable(email):
            return None
        row = (
            await self._conn.execute(operators.select().where(operators.c.email == email))
        ).first()
        return _operator(row) if row else None

    async def list_operators(self) -> list[Operator]:
        rows = (await self._conn.execute(operators.select().order_by(operators.c.email))).all()
        return [_operator(r) for r in rows]

    async def save_login_state(self, operator: Operator) -> None:
        await self._conn.execute(
            operators.update()
            .where(operators.c.id == operator.id)
            .values(
                failed_logins=operator.failed_logins,
                locked_until=operator.locked_until,
                last_totp_step=operator.last_totp_step,
                last_login_at=operator.last_login_at,
            )
        )

    async def set_operator_roles(self, operator_id: str, roles: list[str]) -> None:
        await self._conn.execute(
            operators.update().where(operators.c.id == operator_id).values(roles=roles)
        )

    async def add_session(self, session: SessionRecord) -> None:
        await self._conn.execute(
            operator_sessions.insert(),
            {
                "id_hash": session.id_hash,
                "operator_id": session.operator_id,
                "csrf_token": session.csrf_token,
                "created_at": session.created_at,
                "expires_at": session.expires_at,
                "idle_expires_at": session.idle_expires_at,
                "source_ip": session.source_ip,
                "user_agent": (session.user_agent or "")[:256] or None,
                "revoked_at": None,
            },
        )

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        row = (
            await self._conn.execute(
                operator_sessions.select().where(operator_sessions.c.id_hash == id_hash)
            )
        ).first()
        if row is None:
            return None
        return SessionRecord(
            id_hash=row.id_hash,
            operator_id=row.operator_id,
            csrf_token=row.csrf_token,
            created_at=row.created_at,
            expires_at=row.expires_at,
            idle_expires_at=row.idle_expires_at,
            source_ip=row.source_ip,
            user_agent=row.user_agent,
            revoked_at=row.revoked_at,
        )

    async def touch_session(self, id_hash: str, idle_expires_at: datetime) -> None:
        await self._conn.execute(
            operator_sessions.update()
            .where(operator_sessions.c.id_hash == id_hash)
            .values(idle_expires_at=idle_expires_at)
        )

    async def revoke_session(self, id_hash: str, at: datetime) -> None:
        await self._conn.execute(
            operator_sessions.update()
            .where(operator_sessions.c.id_hash == id_hash)
            .values(revoked_at=at)
        )

    async def revoke_operator_sessions(self, operator_id: str, at: datetime) -> None:
        await self._conn.execute(
            operator_sessions.update()
            .where(
                operator_sessions.c.operator_id == operator_id,
                operator_sessions.c.revoked_at.is_(None),
            )
            .values(revoked_at=at)
        )


class OperatorSessionRows:
    """Retention class ``operator_sessions``: expired console sessions."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def due(self, cutoff: datetime, fetch: int) -> list[str]:
        rows = (
            await self._conn.execute(
                sa.select(operator_sessions.c.id_hash)
                .where(operator_sessions.c.expires_at < cutoff)
                .limit(fetch)
            )
        ).all()
        return [str(r[0]) for r in rows]

    async def delete(self, ids: list[str]) -> int:
        result = await self._conn.execute(
            operator_sessions.delete().where(operator_sessions.c.id_hash.in_(ids))
        )
        return int(result.rowcount or 0)
