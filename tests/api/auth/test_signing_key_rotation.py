"""Token-signing key rotation: the new key signs at once, the old one keeps verifying until
every token it signed has expired (ttl + 60 s), then it is retired and leaves the JWKS.
With a passphrase configured, private keys are stored encrypted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from tests.support.oauth import (
    ACTOR,
    RegisteredClient,
    audit_actions,
    decode_segment,
    ensure_signing_key,
    fetch_token,
    make_client,
)

from amanat.app import create_app
from amanat.auth.adapters.tokens import JwtAccessTokenCodec, KeyRing
from amanat.auth.errors import TokenRejected
from amanat.auth.tables import signing_keys
from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import FrozenClock
from amanat.platform.settings import Settings

TTL = 300
OVERLAP = TTL + 60


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    return await make_client(container)


async def _jwks_kids(http: httpx.AsyncClient) -> set[str]:
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return {k["kid"] for k in response.json()["keys"]}


async def _key_rows(container: Container) -> dict[str, sa.Row[tuple[object, ...]]]:
    async with container.db.read() as conn:
        rows = (await conn.execute(sa.select(signing_keys))).all()
    return {r.kid: r for r in rows}


async def _rotate(container: Container) -> str:
    new_key, demoted = await container.signing_keys.rotate(ACTOR)
    assert len(demoted) == 1
    await container.key_ring.refresh(force=True)
    return new_key.kid


async def test_ensure_active_is_idempotent(container: Container) -> None:
    first = await ensure_signing_key(container)
    second = await ensure_signing_key(container)
    assert first.kid == second.kid
    assert len(await _key_rows(container)) == 1
    assert len(await audit_actions(container, "signing_key.created")) == 1


async def test_rotation_overlap(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    old_token = (await fetch_token(client, merchant))["access_token"]
    old_kid = decode_segment(old_token, 0)["kid"]

    new_kid = await _rotate(container)
    assert new_kid != old_kid

    # The old token still verifies; new tokens carry the new kid; the JWKS has both.
    await container.oauth.verify_access_token(old_token)
    new_token = (await fetch_token(client, merchant))["access_token"]
    assert decode_segment(new_token, 0)["kid"] == new_kid
    await container.oauth.verify_access_token(new_token)
    assert await _jwks_kids(client) == {old_kid, new_kid}

    rows = await _key_rows(container)
    assert rows[old_kid].status == "verifying"
    assert rows[new_kid].status == "active"
    assert rows[old_kid].retire_after == container.clock.now() + timedelta(seconds=OVERLAP)
    assert len(await audit_actions(container, "signing_key.rotated")) == 1


async def test_old_key_retires_after_ttl_plus_60_seconds(
    client: httpx.AsyncClient,
    container: Container,
    clock: FrozenClock,
    merchant: RegisteredClient,
) -> None:
    old_token = (await fetch_token(client, merchant))["access_token"]
    old_kid = decode_segment(old_token, 0)["kid"]
    new_kid = await _rotate(container)

    clock.advance(seconds=OVERLAP - 1)
    assert await container.key_ring.verifier(old_kid) is not None
    assert await container.signing_keys.retire_expired(ACTOR) == []
    assert await _jwks_kids(client) == {old_kid, new_kid}

    clock.advance(seconds=2)
    assert await container.key_ring.verifier(old_kid) is None
    with pytest.raises(TokenRejected):
        await container.oauth.verify_access_token(old_token)
    assert await _jwks_kids(client) == {new_kid}

    assert await container.signing_keys.retire_expired(ACTOR) == [old_kid]
    await container.key_ring.refresh(force=True)
    rows = await _key_rows(container)
    assert rows[old_kid].status == "retired"
    assert rows[old_kid].retired_at == clock.now()
    assert await _jwks_kids(client) == {new_kid}
    assert await container.key_ring.verifier(old_kid) is None
    assert len(await audit_actions(container, "signing_key.retired")) == 1
    # Retiring again finds nothing more to do.
    assert await container.signing_keys.retire_expired(ACTOR) == []

    fresh = (await fetch_token(client, merchant))["access_token"]
    assert decode_segment(fresh, 0)["kid"] == new_kid
    await container.oauth.verify_access_token(fresh)


async def test_a_token_signed_just_before_rotation_outlives_nothing(
    client: httpx.AsyncClient,
    container: Container,
    clock: FrozenClock,
    merchant: RegisteredClient,
) -> None:
    """Until its own expiry (plus the verifier's leeway) the old key's token verifies."""
    old_token = (await fetch_token(client, merchant))["access_token"]
    await _rotate(container)
    clock.advance(seconds=TTL + 29)
    await container.oauth.verify_access_token(old_token)
    clock.advance(seconds=2)
    with pytest.raises(TokenRejected):
        await container.oauth.verify_access_token(old_token)


async def test_two_rotations_keep_only_what_is_needed(
    client: httpx.AsyncClient,
    container: Container,
    clock: FrozenClock,
    merchant: RegisteredClient,
) -> None:
    first_kid = (await ensure_signing_key(container)).kid
    clock.advance(seconds=10)
    second_kid = await _rotate(container)
    clock.advance(seconds=10)
    third_kid = await _rotate(container)
    assert await _jwks_kids(client) == {first_kid, second_kid, third_kid}
    token = (await fetch_token(client, merchant))["access_token"]
    assert decode_segment(token, 0)["kid"] == third_kid
    clock.advance(seconds=OVERLAP - 10 + 1)
    assert await container.signing_keys.retire_expired(ACTOR) == [first_kid]
    clock.advance(seconds=10)
    assert await container.signing_keys.retire_expired(ACTOR) == [second_kid]
    await container.key_ring.refresh(force=True)
    assert await _jwks_kids(client) == {third_kid}


async def test_another_process_follows_a_rotation(
    client: httpx.AsyncClient, container: Container, merchant: RegisteredClient
) -> None:
    """Another API process, whose cached ring predates the rotation, verifies a token
    signed with the brand-new key: an unknown kid makes it reload the ring (at most once a
    second, so garbage kids cannot make it hammer the database)."""
    await ensure_signing_key(container)
    mono = FakeMonotonic()
    config = container.oauth.config
    other = JwtAccessTokenCodec(
        _ring(container, mono, refresh_seconds=600),
        issuer=config.issuer,
        audience=config.audience,
        clock=container.clock,
    )
    old_token = (await fetch_token(client, merchant))["access_token"]
    await other.verify(old_token)  # the other process has loaded its ring

    new_kid = await _rotate(container)
    new_token = (await fetch_token(client, merchant))["access_token"]
    assert decode_segment(new_token, 0)["kid"] == new_kid
    mono.now += 2
    claims = await other.verify(new_token)
    assert claims["client_id"] == merchant.id
    await other.verify(old_token)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def _ring(container: Container, mono: FakeMonotonic, refresh_seconds: float) -> KeyRing:
    """Another process's key ring, on a monotonic clock the test moves."""
    return KeyRing(
        container.signing_keys.keys,
        container.clock,
        None,
        refresh_seconds=refresh_seconds,
        monotonic=mono,
    )


async def test_signer_never_uses_a_ring_older_than_30_seconds(container: Container) -> None:
    """Even with a long refresh interval, a process notices a rotation within 30 s."""
    await ensure_signing_key(container)
    mono = FakeMonotonic()
    ring = _ring(container, mono, refresh_seconds=600)
    old = await ring.signer()
    new_key, _ = await container.signing_keys.rotate(ACTOR)
    mono.now += 29
    assert (await ring.signer()).kid == old.kid  # still cached
    mono.now += 2
    assert (await ring.signer()).kid == new_key.kid


async def test_a_token_from_a_stale_ring_verifies_until_it_expires(
    container: Container, clock: FrozenClock, merchant: RegisteredClient
) -> None:
    """The worst case the overlap must cover: a process signs with the demoted key just
    before it notices the rotation; that token must verify for its whole life."""
    await ensure_signing_key(container)
    mono = FakeMonotonic()
    ring = _ring(container, mono, refresh_seconds=600)
    config = container.oauth.config
    codec = JwtAccessTokenCodec(ring, issuer=config.issuer, audience=config.audience, clock=clock)
    old_kid = (await ring.signer()).kid
    await _rotate(container)
    mono.now += 29
    clock.advance(seconds=29)
    now = int(clock.now().timestamp())
    token = await codec.sign(
        {
            "iss": config.issuer,
            "aud": config.audience,
            "sub": merchant.id,
            "client_id": merchant.id,
            "scope": "payments:read",
            "iat": now,
            "exp": now + TTL,
            "jti": "stale-ring-token",
        }
    )
    assert decode_segment(token, 0)["kid"] == old_kid
    clock.advance(seconds=TTL + 29)  # just inside exp + the verifier's leeway
    await container.oauth.verify_access_token(token)
    assert await container.signing_keys.retire_expired(ACTOR) == []


# -- encrypted private keys --------------------------------------------------------------


def _with_passphrase(settings: Settings, passphrase: str) -> Settings:
    auth = settings.auth.model_copy(update={"signing_key_passphrase": SecretStr(passphrase)})
    return settings.model_copy(update={"auth": auth})


@pytest.fixture
async def protected(
    settings: Settings, clock: FrozenClock, container: Container
) -> AsyncIterator[Container]:
    """A second container on the same database with a passphrase; ``container`` (which
    wipes the database when it is torn down, after this one) has no key yet."""
    protected = build_container(_with_passphrase(settings, "correct horse battery"), clock=clock)
    try:
        yield protected
    finally:
        await protected.close()


async def test_private_key_is_stored_encrypted_and_still_loads(
    settings: Settings, clock: FrozenClock, protected: Container
) -> None:
    key = await ensure_signing_key(protected)
    assert key.encrypted
    rows = await _key_rows(protected)
    pem = rows[key.kid].private_pem
    assert "ENCRYPTED" in pem
    assert rows[key.kid].encrypted is True

    merchant = await make_client(protected)
    transport = httpx.ASGITransport(app=create_app(container=protected), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        token = (await fetch_token(http, merchant))["access_token"]
        assert decode_segment(token, 0)["kid"] == key.kid
        assert key.kid in await _jwks_kids(http)
    await protected.oauth.verify_access_token(token)

    # Another process with the same passphrase loads the stored key and verifies.
    again = build_container(_with_passphrase(settings, "correct horse battery"), clock=clock)
    try:
        await again.oauth.verify_access_token(token)
    finally:
        await again.close()


async def test_rotated_keys_are_encrypted_too(protected: Container) -> None:
    await ensure_signing_key(protected)
    new_key, _ = await protected.signing_keys.rotate(ACTOR)
    rows = await _key_rows(protected)
    assert all(row.encrypted for row in rows.values())
    assert all("ENCRYPTED" in row.private_pem for row in rows.values())
    await protected.key_ring.refresh(force=True)
    signer = await protected.key_ring.signer()
    assert signer.kid == new_key.kid


async def test_without_a_passphrase_keys_are_plain(container: Container) -> None:
    key = await ensure_signing_key(container)
    assert not key.encrypted
    assert "ENCRYPTED" not in (await _key_rows(container))[key.kid].private_pem
