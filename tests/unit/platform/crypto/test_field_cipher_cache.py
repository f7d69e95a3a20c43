"""The field cipher keeps the most recently used data keys, never all of them."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from amanat.platform.crypto import field_cipher
from amanat.platform.crypto.field_cipher import FieldCipher, FieldContext
from amanat.platform.crypto.master_keys import LocalMasterKey


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
