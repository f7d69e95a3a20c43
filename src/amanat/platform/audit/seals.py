"""Ed25519 signing of audit seals. The private key lives in a file outside the database
(generated in the sandbox on first use); the public key travels with every seal, and
verification checks against the configured key so a forged seal with its own key fails."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from amanat.platform.crypto.secret_files import create_once


class Ed25519SealSigner:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._public = base64.b64encode(raw).decode("ascii")

    @classmethod
    def from_file(cls, path: Path, *, create: bool) -> Ed25519SealSigner:
        if not path.exists():
            if not create:
                raise FileNotFoundError(f"audit seal key {path} does not exist")
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            # Processes starting together all end up with the one key that won.
            create_once(path, pem)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    @property
    def public_key(self) -> str:
        return self._public

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode("ascii")

    def verify(self, public_key: str, message: bytes, signature: str) -> bool:
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
            key.verify(base64.b64decode(signature), message)
        except (InvalidSignature, ValueError):
            return False
        return True
