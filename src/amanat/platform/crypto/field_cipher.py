"""Field-level envelope encryption (AES-256-GCM) and blind indexes.

A ciphertext is ``v1.<data-key-id>.<base64url(nonce || ciphertext || tag)>``, with
``table|column|row-id`` bound as associated data: copied to another row or column it no
longer decrypts. Unwrapped data keys are cached in memory, the most recently used
:data:`KEY_CACHE_SIZE` of them (one key per data subject, so a bank's customers would
otherwise grow the process without bound); a shredded or retired key is dropped from the
cache by :meth:`forget`. :meth:`preload` loads many keys in one read: a batch of payouts
to many merchants' customers, each under a key of their own, would otherwise load them one
read after another (a process's first minutes after a start or deploy, when every key is
new to it).

Blind indexes are HMAC-SHA256 under their own data key (purpose ``blind_index``), so the
index key can be held apart from the encryption keys and an index reveals nothing without it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amanat.platform.crypto.master_keys import MasterKey, MasterKeyError

PREFIX = "v1"
SUBJECT = "subject"
KEY_CACHE_SIZE = 10_000


def subject_key_context(key_id: str) -> FieldContext:
    return FieldContext(table="data_keys", column="wrapped_key", row_id=key_id)


def _aad(context: FieldContext) -> bytes:
    return f"amanat:{PREFIX}|{context.table}|{context.column}|{context.row_id}".encode()


def key_id_of(ciphertext: str) -> str:
    parts = ciphertext.split(".", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise ValueError("not an amanat ciphertext")
    return parts[1]


WrappedKey = tuple[str | None, str]  # (wrapped key, None if shredded; purpose)


class FieldCipher:
    def __init__(
        self,
        master: MasterKey,
        load_wrapped: Callable[[str], Awaitable[WrappedKey]],
        load_many: Callable[[list[str]], Awaitable[dict[str, WrappedKey]]] | None = None,
    ) -> None:
        """``load_wrapped(key_id)`` returns ``(wrapped_key or None if shredded, purpose)``;
        ``load_many(key_ids)`` the same for each of the ids it finds, in one read."""
        self._master = master
        self._load_wrapped = load_wrapped
        self._load_many = load_many
        self._keys: OrderedDict[str, bytes] = OrderedDict()
        # Bumped by forget(): a key loaded while a forget ran is used once, never kept (it
        # may be the key just shredded).
        self._forgets = 0

    @property
    def master_key_id(self) -> str:
        return self._master.key_id

    async def new_wrapped_key(self, key_id: str) -> str:
        """A fresh random data key, wrapped by the master key and bound to its id."""
        key = AESGCM.generate_key(bit_length=256)
        wrapped = await self._master.wrap(key, f"data-key:{key_id}")
        self._remember(key_id, key)
        return wrapped

    async def new_subject_key(self, key_id: str, wrapping_key_id: str) -> str:
        """A fresh key for one data subject, wrapped (encrypted) under a fields key."""
        key = AESGCM.generate_key(bit_length=256)
        wrapped = await self.encrypt(
            base64.b64encode(key).decode("ascii"),
            context=subject_key_context(key_id),
            key_id=wrapping_key_id,
        )
        self._remember(key_id, key)
        return wrapped

    async def _key(self, key_id: str) -> bytes:
        cached = self._keys.get(key_id)
        if cached is not None:
            self._keys.move_to_end(key_id)
            return cached
        forgets = self._forgets
        wrapped, purpose = await self._load_wrapped(key_id)
        if wrapped is None:
            raise KeyUnavailable(key_id)
        key = await self._unwrap(key_id, wrapped, purpose)
        if forgets == self._forgets:
            self._remember(key_id, key)
        return key

    async def _unwrap(self, key_id: str, wrapped: str, purpose: str) -> bytes:
        if purpose == SUBJECT:
            # Subject keys are wrapped by the current fields key, not the master key, so a
            # data-key rotation re-wraps them like any other ciphertext.
            encoded = await self.decrypt(wrapped, context=subject_key_context(key_id))
            return base64.b64decode(encoded)
        return await self._master.unwrap(wrapped, f"data-key:{key_id}")

    async def preload(self, key_ids: Iterable[str]) -> None:
        """Load those of ``key_ids`` not in memory, in one read. It only saves the reads
        that using the keys one by one would make: a key not found, shredded or not
        unwrapping (:class:`KeyUnavailable`) is left out, and the master key's service
        failing (:class:`MasterKeyError`) ends the preload at once, so an outage costs one
        timeout here, not one per key; either way the key's own use raises as it would
        have. Any other failure (the database's) is raised."""
        missing = [k for k in dict.fromkeys(key_ids) if k not in self._keys]
        if not missing or self._load_many is None:
            return
        forgets = self._forgets
        loaded = await self._load_many(missing[:KEY_CACHE_SIZE])
        for key_id, (wrapped, purpose) in loaded.items():
            if wrapped is None or key_id in self._keys:
                continue
            try:
                key = await self._unwrap(key_id, wrapped, purpose)
            except KeyUnavailable:
                continue
            except MasterKeyError:
                return
            if forgets != self._forgets:
                return  # a key was forgotten meanwhile: it may be one of these
            self._remember(key_id, key)

    def _remember(self, key_id: str, key: bytes) -> None:
        self._keys[key_id] = key
        self._keys.move_to_end(key_id)
        while len(self._keys) > KEY_CACHE_SIZE:
            self._keys.popitem(last=False)

    def forget(self, key_id: str) -> None:
        self._forgets += 1
        self._keys.pop(key_id, None)

    async def encrypt(self, plaintext: str, *, context: FieldContext, key_id: str) -> str:
        key = await self._key(key_id)
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _aad(context))
        token = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{PREFIX}.{key_id}.{token}"

    async def decrypt(self, ciphertext: str, *, context: FieldContext) -> str:
        key_id = key_id_of(ciphertext)
        key = await self._key(key_id)
        token = ciphertext.split(".", 2)[2]
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], _aad(context)).decode("utf-8")
        except InvalidTag:
            raise KeyUnavailable(key_id, "ciphertext does not belong to this field") from None

    def key_id_of(self, ciphertext: str) -> str:
        return key_id_of(ciphertext)

    async def blind_index(self, key_id: str, kind: str, normalized: str) -> str:
        key = await self._key(key_id)
        return hmac.new(key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class FieldContext:
    """Where an encrypted value lives; bound into the ciphertext as associated data."""

    table: str
    column: str
    row_id: str


class KeyUnavailable(Exception):
    """The data key is shredded, retired or wrong for this ciphertext."""

    def __init__(self, key_id: str, reason: str = "key shredded or unavailable") -> None:
        super().__init__(f"{key_id}: {reason}")
        self.key_id = key_id
        self.reason = reason
