"""Client secrets are stored as SHA-256 digests; argon2 digests from before still verify."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from amanat.identity.adapters.client_secrets import ClientSecretHasher
from amanat.identity.adapters.passwords import Argon2Hasher
from amanat.identity.services.partners import new_client_secret

LEGACY = Argon2Hasher(time_cost=1, memory_cost=8)


async def test_a_new_secret_is_stored_as_its_sha256_digest() -> None:
    secret = new_client_secret()
    stored = await ClientSecretHasher(LEGACY).hash(secret)
    assert stored == "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in stored


async def test_only_the_secret_itself_verifies() -> None:
    hasher = ClientSecretHasher(LEGACY)
    secret = new_client_secret()
    stored = await hasher.hash(secret)
    assert await hasher.verify(stored, secret)
    assert not await hasher.verify(stored, secret[:-1])
    assert not await hasher.verify(stored, secret + "x")
    assert not await hasher.verify(stored, "")


@given(st.text(max_size=80), st.text(max_size=80))
async def test_two_different_secrets_never_verify_against_each_other(a: str, b: str) -> None:
    hasher = ClientSecretHasher(LEGACY)
    assert await hasher.verify(await hasher.hash(a), b) == (a == b)


async def test_an_argon2_digest_from_before_still_verifies() -> None:
    secret = new_client_secret()
    legacy = await LEGACY.hash(secret)
    hasher = ClientSecretHasher(LEGACY)
    assert await hasher.verify(legacy, secret)
    assert not await hasher.verify(legacy, "cs_not-the-secret")


async def test_a_digest_in_no_known_scheme_never_verifies() -> None:
    hasher = ClientSecretHasher(LEGACY)
    secret = "cs_x"
    bare = hashlib.sha256(secret.encode()).hexdigest()
    assert not await hasher.verify(bare, secret)  # unlabelled: could be anything
    assert not await hasher.verify(secret, secret)  # a plaintext column must not match
    assert not await hasher.verify("", secret)


async def test_only_digests_in_another_scheme_need_rehashing() -> None:
    hasher = ClientSecretHasher(LEGACY)
    assert not hasher.needs_rehash(await hasher.hash("cs_x"))
    assert hasher.needs_rehash(await LEGACY.hash("cs_x"))
