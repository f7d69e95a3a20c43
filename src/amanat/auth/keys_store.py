"""Token-signing keys in SQL, so every API process and replica shares one key ring."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.auth.domain import KeyStatus, SigningKey
from amanat.auth.tables import signing_keys


def _key(row: Any) -> SigningKey:
    return SigningKey(
        kid=row.kid,
        alg=row.alg,
        private_pem=row.private_pem,
        encrypted=row.encrypted,
        public_jwk=row.public_jwk,
        status=KeyStatus(row.status),
        created_at=row.created_at,
        retire_after=row.retire_after,
        retired_at=row.retired_at,
    )


class SqlSigningKeyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def list_keys(self) -> list[SigningKey]:
        rows = (
            await self._conn.execute(signing_keys.select().order_by(signing_keys.c.created_at))
        ).all()
        return [_key(r) for r in rows]

    async def add_key(self, key: SigningKey) -> None:
        await self._conn.execute(
            signing_keys.insert(),
            {
                "kid": key.kid,
                "alg": key.alg,
                "private_pem": key.private_pem,
                "encrypted": key.encrypted,
                "public_jwk": key.public_jwk,
                "status": key.status,
                "created_at": key.created_at,
                "retire_after": key.retire_after,
                "retired_at": key.retired_at,
            },
        )

    async def set_status(
        self, kid: str, status: str, retire_after: datetime | None, retired_at: datetime | None
    ) -> None:
        await self._conn.execute(
            signing_keys.update()
            .where(signing_keys.c.kid == kid)
            .values(status=status, retire_after=retire_after, retired_at=retired_at)
        )
