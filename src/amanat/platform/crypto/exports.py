"""Encrypting exports for a recipient, in the age format (https://age-encryption.org).

age was chosen over a home-made hybrid scheme because recipients can decrypt with the
standard ``age`` tool (or ``amanat export decrypt``) and keys are one-line strings
(``age1…`` public, ``AGE-SECRET-KEY-1…`` private). pyrage binds the reference Rust
implementation.
"""

from __future__ import annotations

import pyrage


class ExportEncryptionError(Exception):
    pass


def parse_recipients(values: list[str]) -> list[pyrage.x25519.Recipient]:
    recipients = []
    for value in values:
        try:
            recipients.append(pyrage.x25519.Recipient.from_str(value.strip()))
        except Exception:  # noqa: BLE001 - pyrage raises its own error types
            raise ExportEncryptionError(f"not an age recipient: {value[:12]}…") from None
    return recipients


def encrypt_for(data: bytes, recipients: list[str]) -> bytes:
    if not recipients:
        raise ExportEncryptionError("no recipients")
    return bytes(pyrage.encrypt(data, parse_recipients(recipients)))


def decrypt_with(data: bytes, identity: str) -> bytes:
    try:
        key = pyrage.x25519.Identity.from_str(identity.strip())
        return bytes(pyrage.decrypt(data, [key]))
    except Exception as exc:  # noqa: BLE001
        raise ExportEncryptionError(f"cannot decrypt: {type(exc).__name__}") from None


def generate_identity() -> tuple[str, str]:
    """A new (private identity, public recipient) pair."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())
