"""The authorization server's SQL store: revoked tokens, authorization codes, refresh
tokens and client-assertion ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.auth.access_cache import REVOKED, revoked_payload
from amanat.auth.ports import AuthorizationCode, RefreshToken
from amanat.auth.tables import (
    authorization_codes,
    client_assertion_jtis,
    refresh_tokens,
    revoked_tokens,
)
from amanat.platform.db.dialect import column_width, insert_if_absent, locked, stored_key
from amanat.platform.invalidation.notify import announce

_REVOKED_JTI_WIDTH = column_width(revoked_tokens.c.jti)
_ASSERTION_JTI_WIDTH = column_width(client_assertion_jtis.c.jti)


def stored_jti(jti: str) -> str:
    """An access token's ``jti`` as ``revoked_tokens`` stores it."""
    return stored_key(jti, _REVOKED_JTI_WIDTH)


class SqlTokenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def revoke_jti(
        self, jti: str, client_id: str | None, expires_at: datetime, at: datetime, reason: str
    ) -> bool:
        key = stored_key(jti, _REVOKED_JTI_WIDTH)
        result = await self._conn.execute(
            insert_if_absent(self._conn, revoked_tokens),
            {
                "jti": key,
                "client_id": client_id,
                "expires_at": expires_at,
                "revoked_at": at,
                "reason": reason,
            },
        )
        # Every process's token check hears of it when this transaction commits.
        await announce(self._conn, REVOKED, revoked_payload(key, expires_at))
        return bool(result.rowcount)

    async def revocations_since(self, expires_after: datetime) -> list[tuple[str, datetime]]:
        rows = await self._conn.execute(
            sa.select(revoked_tokens.c.jti, revoked_tokens.c.expires_at).where(
                revoked_tokens.c.expires_at > expires_after
            )
        )
        return [(str(r.jti), r.expires_at) for r in rows.all()]

    async def is_revoked(self, jti: str) -> bool:
        key = stored_key(jti, _REVOKED_JTI_WIDTH)
        row = (
            await self._conn.execute(
                sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == key)
            )
        ).first()
        return row is not None

    async def add_code(self, code: AuthorizationCode) -> None:
        await self._conn.execute(
            authorization_codes.insert(),
            {
                "code_hash": code.code_hash,
                "client_id": code.client_id,
                "redirect_uri": code.redirect_uri,
                "scopes": list(code.scopes),
                "code_challenge": code.code_challenge,
                "subject": code.subject,
                "consent_id": code.consent_id,
                "created_at": code.created_at,
                "expires_at": code.expires_at,
                "used_at": None,
                "family_id": None,
            },
        )

    async def get_code_for_update(self, code_hash: str) -> AuthorizationCode | None:
        stmt = authorization_codes.select().where(authorization_codes.c.code_hash == code_hash)
        row = (await self._conn.execute(locked(stmt, self._conn))).first()
        if row is None:
            return None
        return AuthorizationCode(
            code_hash=row.code_hash,
            client_id=row.client_id,
            redirect_uri=row.redirect_uri,
            scopes=tuple(row.scopes),
            code_challenge=row.code_challenge,
            subject=row.subject,
            consent_id=row.consent_id,
            created_at=row.created_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
            family_id=row.family_id,
        )

    async def mark_code_used(self, code_hash: str, at: datetime, family_id: str) -> None:
        await self._conn.execute(
            authorization_codes.update()
            .where(authorization_codes.c.code_hash == code_hash)
            .values(used_at=at, family_id=family_id)
        )

    async def add_refresh(self, token: RefreshToken) -> None:
        await self._conn.execute(
            refresh_tokens.insert(),
            {
                "token_hash": token.token_hash,
                "family_id": token.family_id,
                "client_id": token.client_id,
                "scopes": list(token.scopes),
                "subject": token.subject,
                "consent_id": token.consent_id,
                "access_jti": token.access_jti,
                "access_expires_at": token.access_expires_at,
                "issued_at": token.issued_at,
                "expires_at": token.expires_at,
                "used_at": None,
                "revoked_at": None,
            },
        )

    @staticmethod
    def _refresh(row: Any) -> RefreshToken:
        return RefreshToken(
            token_hash=row.token_hash,
            family_id=row.family_id,
            client_id=row.client_id,
            scopes=tuple(row.scopes),
            subject=row.subject,
            consent_id=row.consent_id,
            access_jti=row.access_jti,
            access_expires_at=row.access_expires_at,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
            revoked_at=row.revoked_at,
        )

    async def get_refresh_for_update(self, token_hash: str) -> RefreshToken | None:
        stmt = refresh_tokens.select().where(refresh_tokens.c.token_hash == token_hash)
        row = (await self._conn.execute(locked(stmt, self._conn))).first()
        return self._refresh(row) if row else None

    async def mark_refresh_used(self, token_hash: str, at: datetime) -> None:
        await self._conn.execute(
            refresh_tokens.update()
            .where(refresh_tokens.c.token_hash == token_hash)
            .values(used_at=at)
        )

    async def revoke_family(self, family_id: str, at: datetime) -> list[RefreshToken]:
        rows = (
            await self._conn.execute(
                locked(
                    refresh_tokens.select().where(refresh_tokens.c.family_id == family_id),
                    self._conn,
                )
            )
        ).all()
        await self._conn.execute(
            refresh_tokens.update()
            .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return [self._refresh(r) for r in rows]

    async def families_of_consent(self, consent_id: str) -> list[str]:
        rows = await self._conn.execute(
            sa.select(refresh_tokens.c.family_id)
            .where(
                refresh_tokens.c.consent_id == consent_id,
                refresh_tokens.c.revoked_at.is_(None),
            )
            .distinct()
        )
        return [row[0] for row in rows]

    async def remember_assertion(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        result = await self._conn.execute(
            insert_if_absent(self._conn, client_assertion_jtis),
            {
                "client_id": client_id,
                "jti": stored_key(jti, _ASSERTION_JTI_WIDTH),
                "expires_at": expires_at,
            },
        )
        return bool(result.rowcount == 1)


# oauth_artifacts spans four tables; its ids are "<table>:<key>".
_OAUTH = {
    "authorization_codes": (
        authorization_codes,
        authorization_codes.c.code_hash,
        authorization_codes.c.expires_at,
    ),
    "refresh_tokens": (refresh_tokens, refresh_tokens.c.token_hash, refresh_tokens.c.expires_at),
    "revoked_tokens": (revoked_tokens, revoked_tokens.c.jti, revoked_tokens.c.expires_at),
}


class OAuthArtifactRows:
    """Retention class ``oauth_artifacts``: expired codes, refresh tokens, revocations and
    client-assertion ids."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def due(self, cutoff: datetime, fetch: int) -> list[str]:
        ids: list[str] = []
        for name, (_table, key, expires) in _OAUTH.items():
            rows = (
                await self._conn.execute(sa.select(key).where(expires < cutoff).limit(fetch))
            ).all()
            ids += [f"{name}:{r[0]}" for r in rows]
        rows = (
            await self._conn.execute(
                sa.select(client_assertion_jtis.c.client_id, client_assertion_jtis.c.jti)
                .where(client_assertion_jtis.c.expires_at < cutoff)
                .limit(fetch)
            )
        ).all()
        ids += [f"client_assertion_jtis:{r[0]}|{r[1]}" for r in rows]
        return ids

    async def delete(self, ids: list[str]) -> int:
        deleted = 0
        for qualified in ids:
            name, _, key = qualified.partition(":")
            if name == "client_assertion_jtis":
                client_id, _, jti = key.partition("|")
                stmt = client_assertion_jtis.delete().where(
                    client_assertion_jtis.c.client_id == client_id,
                    client_assertion_jtis.c.jti == jti,
                )
            else:
                table, column, _ = _OAUTH[name]
                stmt = table.delete().where(column == key)
            result = await self._conn.execute(stmt)
            deleted += int(result.rowcount or 0)
        return deleted
