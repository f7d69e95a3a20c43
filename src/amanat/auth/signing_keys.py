"""The token-signing key ring's lifecycle: create, rotate, retire.

Rotation makes a new key the signer at once; the previous key keeps verifying until every
token it signed has expired (rotation time + the longest token lifetime + leeway), and
only then is it retired and dropped from the JWKS.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from amanat.auth.domain import KeyStatus, SigningKey
from amanat.auth.ports import SigningKeysTx
from amanat.kernel.clock import Clock
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.ports import TransactionFactory

# How stale a process's cached key ring may be when it signs (the key ring refreshes
# before signing if it is older), and how long after ``exp`` a verifier still accepts a
# token. A demoted key must outlive both: a token signed with it just before the signer
# noticed the rotation is valid until rotation + SIGNER_STALENESS + ttl + VERIFY_LEEWAY.
SIGNER_STALENESS = timedelta(seconds=30)
VERIFY_LEEWAY = timedelta(seconds=30)
LEEWAY = SIGNER_STALENESS + VERIFY_LEEWAY


class KeyMaterialFactory(Protocol):
    def generate(self, now: datetime) -> SigningKey: ...


class SigningKeyService:
    def __init__(
        self,
        transactions: TransactionFactory[SigningKeysTx],
        clock: Clock,
        material: KeyMaterialFactory,
        max_token_ttl: timedelta,
    ) -> None:
        self._tx = transactions
        self._clock = clock
        self._material = material
        self._max_ttl = max_token_ttl

    async def keys(self) -> list[SigningKey]:
        async with self._tx.read() as tx:
            return await tx.signing_keys.list_keys()

    async def ensure_active(self, actor: Actor) -> SigningKey:
        async with self._tx.write() as tx:
            for key in await tx.signing_keys.list_keys():
                if key.status is KeyStatus.ACTIVE:
                    return key
            key = self._material.generate(self._clock.now())
            await tx.signing_keys.add_key(key)
            await audit.record(
                tx,
                self._clock,
                actor,
                "signing_key.created",
                target_type="signing_key",
                target_id=key.kid,
                payload={"alg": key.alg, "encrypted": key.encrypted},
            )
            return key

    async def rotate(self, actor: Actor) -> tuple[SigningKey, list[SigningKey]]:
        now = self._clock.now()
        new_key = self._material.generate(now)
        demoted: list[SigningKey] = []
        async with self._tx.write() as tx:
            for key in await tx.signing_keys.list_keys():
                if key.status is KeyStatus.ACTIVE:
                    retire_after = now + self._max_ttl + LEEWAY
                    await tx.signing_keys.set_status(
                        key.kid, KeyStatus.VERIFYING, retire_after, None
                    )
                    demoted.append(
                        replace(key, status=KeyStatus.VERIFYING, retire_after=retire_after)
                    )
            await tx.signing_keys.add_key(new_key)
            await audit.record(
                tx,
                self._clock,
                actor,
                "signing_key.rotated",
                target_type="signing_key",
                target_id=new_key.kid,
                payload={
                    "previous": [k.kid for k in demoted],
                    "previous_retire_after": [
                        k.retire_after.isoformat() for k in demoted if k.retire_after
                    ],
                },
            )
        return new_key, demoted

    async def retire_expired(self, actor: Actor) -> list[str]:
        now = self._clock.now()
        retired: list[str] = []
        async with self._tx.write() as tx:
            for key in await tx.signing_keys.list_keys():
                if key.status is KeyStatus.VERIFYING and not key.verifies_at(now):
                    await tx.signing_keys.set_status(
                        key.kid, KeyStatus.RETIRED, key.retire_after, now
                    )
                    retired.append(key.kid)
            if retired:
                await audit.record(
                    tx,
                    self._clock,
                    actor,
                    "signing_key.retired",
                    target_type="signing_key",
                    target_id=retired[0],
                    payload={"kids": retired},
                )
        return retired
