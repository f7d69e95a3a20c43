"""Master key sources: the key-encryption key that wraps every data key.

Three sources:

- :class:`LocalMasterKey` from a key file (the sandbox generates one under ``var/`` on
  first start, with a warning) or from a base64 value in a secret environment variable;
- :class:`VaultTransitMasterKey`, HashiCorp Vault's transit engine over its HTTP API
  (``/v1/<mount>/encrypt/<key>``, ``/decrypt/<key>``), so the master key never leaves Vault;
- anything else (AWS KMS, GCP KMS, an HSM) plugs in by implementing :class:`MasterKey`:
  ``key_id`` plus ``wrap`` and ``unwrap`` of a 32-byte data key bound to a context string.

The data keys are wrapped with AES-256-GCM (cryptography's AESGCM), the context bound as
associated data, so a wrapped key cannot be replayed under another id.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Protocol

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amanat.platform.crypto.secret_files import create_once


class MasterKeyError(Exception):
    pass


class MasterKey(Protocol):
    @property
    def key_id(self) -> str: ...
    async def wrap(self, data_key: bytes, context: str) -> str: ...
    async def unwrap(self, wrapped: str, context: str) -> bytes: ...


class LocalMasterKey:
    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise MasterKeyError("the master key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(secret)
        # Identifies the key without revealing it; lets a rewrap job spot old-key wraps.
        self._key_id = "local:" + hashlib.sha256(b"amanat-kek-id" + secret).hexdigest()[:16]

    @property
    def key_id(self) -> str:
        return self._key_id

    @classmethod
    def from_base64(cls, value: str) -> LocalMasterKey:
        try:
            return cls(base64.b64decode(value.strip(), validate=True))
        except ValueError:
            raise MasterKeyError("the master key is not valid base64") from None

    @classmethod
    def from_file(cls, path: Path, *, create: bool) -> tuple[LocalMasterKey, bool]:
        """Load the key; when ``create`` and the file is missing, make one (mode 0600)."""
        created = False
        if not path.exists():
            if not create:
                raise MasterKeyError(f"master key file {path} does not exist")
            # Another process may be making one right now: only one file wins, and a
            # process that loses reads the winner's key (platform/crypto/secret_files.py).
            key = base64.b64encode(AESGCM.generate_key(bit_length=256))
            created = create_once(path, key)
        return cls.from_base64(path.read_text()), created

    async def wrap(self, data_key: bytes, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, data_key, context.encode())
        return base64.b64encode(nonce + sealed).decode("ascii")

    async def unwrap(self, wrapped: str, context: str) -> bytes:
        raw = base64.b64decode(wrapped)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode())
        except Exception:  # noqa: BLE001 - InvalidTag and friends mean one thing here
            raise MasterKeyError("a data key failed to unwrap (wrong master key?)") from None


class VaultTransitMasterKey:
    """HashiCorp Vault transit engine: wrap/unwrap happen inside Vault."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        address: str,
        token: str,
        key_name: str,
        mount: str = "transit",
    ) -> None:
        self._http = http
        self._base = f"{address.rstrip('/')}/v1/{mount}"
        self._headers = {"X-Vault-Token": token}
        self._key_name = key_name

    @property
    def key_id(self) -> str:
        return f"vault:{self._key_name}"

    async def _call(self, action: str, payload: dict[str, str]) -> dict[str, object]:
        try:
            response = await self._http.post(
                f"{self._base}/{action}/{self._key_name}",
                json=payload,
                headers=self._headers,
                timeout=5.0,
            )
        except httpx.HTTPError as exc:
            raise MasterKeyError(f"vault unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise MasterKeyError(f"vault {action} failed with HTTP {response.status_code}")
        body = response.json()
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise MasterKeyError(f"vault {action} returned no data")
        return data

    async def wrap(self, data_key: bytes, context: str) -> str:
        data = await self._call(
            "encrypt",
            {
                "plaintext": base64.b64encode(data_key).decode(),
                "context": base64.b64encode(context.encode()).decode(),
            },
        )
        ciphertext = data.get("ciphertext")
        if not isinstance(ciphertext, str):
            raise MasterKeyError("vault encrypt returned no ciphertext")
        return ciphertext

    async def unwrap(self, wrapped: str, context: str) -> bytes:
        data = await self._call(
            "decrypt",
            {
                "ciphertext": wrapped,
                "context": base64.b64encode(context.encode()).decode(),
            },
        )
        plaintext = data.get("plaintext")
        if not isinstance(plaintext, str):
            raise MasterKeyError("vault decrypt returned no plaintext")
        return base64.b64decode(plaintext)
