"""The field cipher keeps the most recently used data keys, never all of them."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from amanat.platform.crypto import field_cipher
from amanat.platform.crypto.field_cipher import FieldCipher, FieldContext, KeyUnavailable
from amanat.platform.crypto.master_keys import LocalMasterKey, MasterKeyError


def test_the_key_cache_is_bounded_and_a_dropped_key_is_loaded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(field_cipher, "KEY_CACHE_SIZE", 3)
    master = LocalMasterKey.from_base64(base64.b64encode(os.urandom(32)).decode())
    wrapped: dict[str, str] = {}
    loads: list[str] = []

    async def load(key_id: str) -> tuple[str | None, str]:
        loads.append(key_id)
        return wrapped[key_id], "fields"

    async def scenario() -> None:
        cipher = FieldCipher(master, load)
        for number in range(5):
            wrapped[f"dk_{number}"] = await cipher.new_wrapped_key(f"dk_{number}")
        assert list(cipher._keys) == ["dk_2", "dk_3", "dk_4"]
        context = FieldContext("payments", "creditor_iban", "pay_1")
        sealed = await cipher.encrypt("PK36SCBL0000001123456702", context=context, key_id="dk_0")
        assert loads == ["dk_0"]  # dropped, so unwrapped again from its stored form
        assert await cipher.decrypt(sealed, context=context) == "PK36SCBL0000001123456702"
        await cipher.encrypt("x", context=context, key_id="dk_3")  # a hit: now the newest
        await cipher.new_wrapped_key("dk_5")
        assert list(cipher._keys) == ["dk_0", "dk_3", "dk_5"]
        assert loads == ["dk_0"]

    asyncio.run(scenario())


def test_a_key_forgotten_while_it_was_being_loaded_is_not_kept() -> None:
    """A subject erased while a request loads its key: the key may serve that one read,
    but is never cached, so nothing decrypts with it afterwards from memory."""
    master = LocalMasterKey.from_base64(base64.b64encode(os.urandom(32)).decode())
    wrapped: dict[str, str] = {}
    loading = asyncio.Event()
    go_on = asyncio.Event()

    async def load(key_id: str) -> tuple[str | None, str]:
        loading.set()
        await go_on.wait()
        return wrapped[key_id], "fields"

    async def scenario() -> None:
        maker = FieldCipher(master, load)
        wrapped["dk_1"] = await maker.new_wrapped_key("dk_1")
        cipher = FieldCipher(master, load)
        context = FieldContext("data_subjects", "name", "cus_1")
        pending = asyncio.create_task(cipher.encrypt("Ali", context=context, key_id="dk_1"))
        await loading.wait()
        cipher.forget("dk_1")  # the erasure commits and forgets the key
        go_on.set()
        await pending
        assert "dk_1" not in cipher._keys

    asyncio.run(scenario())


def _master() -> LocalMasterKey:
    return LocalMasterKey.from_base64(base64.b64encode(os.urandom(32)).decode())


def test_preload_reads_the_missing_keys_at_once_and_leaves_out_what_it_cannot_use() -> None:
    """Known keys are not read again; a shredded, missing or foreign key is not kept, and
    its own use still raises as it would have."""
    master = _master()
    stored: dict[str, tuple[str | None, str]] = {}
    single: list[str] = []
    batches: list[list[str]] = []

    async def load(key_id: str) -> tuple[str | None, str]:
        single.append(key_id)
        return stored.get(key_id, (None, "missing"))

    async def load_many(key_ids: list[str]) -> dict[str, tuple[str | None, str]]:
        batches.append(list(key_ids))
        return {k: stored[k] for k in key_ids if k in stored}

    async def scenario() -> None:
        maker = FieldCipher(master, load)
        context = FieldContext("data_subjects", "name_enc", "cus_1")
        sealed = {}
        for name in ("dk_a", "dk_b", "dk_c"):
            stored[name] = (await maker.new_wrapped_key(name), "fields")
            sealed[name] = await maker.encrypt("Ali", context=context, key_id=name)
        stored["dk_gone"] = (None, "fields")  # shredded
        # Wrapped under another master key: it does not unwrap here.
        stored["dk_bad"] = (await FieldCipher(_master(), load).new_wrapped_key("dk_bad"), "fields")
        cipher = FieldCipher(master, load, load_many)
        await cipher.encrypt("x", context=context, key_id="dk_a")  # known before
        assert single == ["dk_a"]
        await cipher.preload(["dk_b", "dk_a", "dk_c", "dk_b", "dk_gone", "dk_bad", "dk_none"])
        assert batches == [["dk_b", "dk_c", "dk_gone", "dk_bad", "dk_none"]]
        assert set(cipher._keys) == {"dk_a", "dk_b", "dk_c"}
        for name in ("dk_b", "dk_c"):
            assert await cipher.decrypt(sealed[name], context=context) == "Ali"
        assert single == ["dk_a"]  # the preloaded keys cost no read of their own
        await cipher.preload(["dk_a", "dk_b"])
        assert len(batches) == 1  # nothing missing: no read at all
        for name in ("dk_gone", "dk_none"):
            with pytest.raises(KeyUnavailable):
                await cipher.encrypt("x", context=context, key_id=name)
        with pytest.raises(MasterKeyError):
            await cipher.encrypt("x", context=context, key_id="dk_bad")

    asyncio.run(scenario())


def test_preload_unwraps_subject_keys_under_their_fields_key() -> None:
    master = _master()
    stored: dict[str, tuple[str | None, str]] = {}

    async def load(key_id: str) -> tuple[str | None, str]:
        return stored[key_id]

    async def load_many(key_ids: list[str]) -> dict[str, tuple[str | None, str]]:
        return {k: stored[k] for k in key_ids if k in stored}

    async def scenario() -> None:
        maker = FieldCipher(master, load)
        stored["dk_fields"] = (await maker.new_wrapped_key("dk_fields"), "fields")
        context = FieldContext("data_subjects", "name_enc", "cus_1")
        sealed = {}
        for name in ("sk_1", "sk_2"):
            stored[name] = (await maker.new_subject_key(name, "dk_fields"), field_cipher.SUBJECT)
            sealed[name] = await maker.encrypt("Sana", context=context, key_id=name)
        cipher = FieldCipher(master, load, load_many)
        await cipher.preload(["sk_1", "sk_2"])
        assert {"sk_1", "sk_2"} <= set(cipher._keys)
        for name in ("sk_1", "sk_2"):
            assert await cipher.decrypt(sealed[name], context=context) == "Sana"

    asyncio.run(scenario())


def test_a_key_forgotten_while_a_preload_reads_is_not_kept() -> None:
    master = _master()
    stored: dict[str, tuple[str | None, str]] = {}
    reading = asyncio.Event()
    go_on = asyncio.Event()

    async def load(key_id: str) -> tuple[str | None, str]:
        return stored[key_id]

    async def load_many(key_ids: list[str]) -> dict[str, tuple[str | None, str]]:
        reading.set()
        await go_on.wait()
        return {k: stored[k] for k in key_ids}

    async def scenario() -> None:
        maker = FieldCipher(master, load)
        for name in ("dk_1", "dk_2"):
            stored[name] = (await maker.new_wrapped_key(name), "fields")
        cipher = FieldCipher(master, load, load_many)
        pending = asyncio.create_task(cipher.preload(["dk_1", "dk_2"]))
        await reading.wait()
        cipher.forget("dk_2")  # an erasure commits meanwhile
        go_on.set()
        await pending
        assert not cipher._keys

    asyncio.run(scenario())


def test_without_a_reader_of_many_keys_preload_does_nothing() -> None:
    async def load(key_id: str) -> tuple[str | None, str]:
        raise AssertionError("preload must not read keys one by one")

    async def scenario() -> None:
        cipher = FieldCipher(_master(), load)
        await cipher.preload(["dk_1"])
        assert not cipher._keys

    asyncio.run(scenario())


class _MasterKeyDown:
    """A master key whose service is out: every unwrap fails after its timeout."""

    key_id = "vault:down"

    def __init__(self) -> None:
        self.unwraps = 0

    async def wrap(self, data_key: bytes, context: str) -> str:
        raise MasterKeyError("unreachable")

    async def unwrap(self, wrapped: str, context: str) -> bytes:
        self.unwraps += 1
        raise MasterKeyError("unreachable")


def test_an_outage_of_the_master_key_ends_the_preload_after_one_try() -> None:
    down = _MasterKeyDown()

    async def load(key_id: str) -> tuple[str | None, str]:
        return "wrapped", "fields"

    async def load_many(key_ids: list[str]) -> dict[str, tuple[str | None, str]]:
        return dict.fromkeys(key_ids, ("wrapped", "fields"))

    async def scenario() -> None:
        cipher = FieldCipher(down, load, load_many)
        await cipher.preload(["dk_1", "dk_2", "dk_3"])
        assert down.unwraps == 1
        assert not cipher._keys
        with pytest.raises(MasterKeyError):  # the key's own use says what is wrong
            await cipher.encrypt("x", context=FieldContext("t", "c", "r"), key_id="dk_1")

    asyncio.run(scenario())


def test_a_database_failure_during_a_preload_is_raised() -> None:
    """A subject key's fields key read fails: raised, not swallowed, so the caller's
    transaction does not carry on to fail later for a reason nobody sees."""

    async def load(key_id: str) -> tuple[str | None, str]:
        raise ConnectionError("database gone")

    async def load_many(key_ids: list[str]) -> dict[str, tuple[str | None, str]]:
        return dict.fromkeys(key_ids, ("v1.dk_fields.AAAA", field_cipher.SUBJECT))

    async def scenario() -> None:
        cipher = FieldCipher(_master(), load, load_many)
        with pytest.raises(ConnectionError):
            await cipher.preload(["sk_1"])

    asyncio.run(scenario())
