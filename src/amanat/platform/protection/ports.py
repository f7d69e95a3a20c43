"""Encryption at rest: the field encryptor, data keys and data subjects."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from amanat.platform.crypto.field_cipher import FieldContext
from amanat.platform.unit_of_work.ports import Transaction

# The change-feed topic of every change to a fields or blind-index key (made, rotated,
# retired) and of every shredded key, the key's id as the key: each process re-reads its
# active key and drops the unwrapped key from memory (protection/service.py).
DATA_KEYS_CHANGED = "data_keys"


class FieldEncryptor(Protocol):
    @property
    def master_key_id(self) -> str: ...
    async def new_wrapped_key(self, key_id: str) -> str: ...
    async def new_subject_key(self, key_id: str, wrapping_key_id: str) -> str: ...
    def forget(self, key_id: str) -> None: ...
    async def preload(self, key_ids: Iterable[str]) -> None: ...
    async def encrypt(self, plaintext: str, *, context: FieldContext, key_id: str) -> str: ...
    async def decrypt(self, ciphertext: str, *, context: FieldContext) -> str: ...
    def key_id_of(self, ciphertext: str) -> str: ...
    async def blind_index(self, key_id: str, kind: str, normalized: str) -> str: ...


@dataclass(frozen=True, slots=True)
class DataKey:
    id: str
    purpose: str
    wrapped_key: str | None
    master_key_id: str
    status: str
    created_at: datetime
    retired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    """One column of one table that holds ciphertexts (for rotation and key status)."""

    table: str
    id_column: str
    column: str


class DataKeyRepository(Protocol):
    async def add_key(self, key: DataKey) -> None: ...
    async def get_key(self, key_id: str) -> DataKey | None: ...
    async def get_keys(self, key_ids: Sequence[str]) -> list[DataKey]: ...
    async def keys(self, purpose: str | None = None) -> list[DataKey]: ...
    async def set_status(self, key_id: str, status: str, at: datetime | None) -> None: ...
    async def shred(self, key_id: str, at: datetime) -> None: ...
    async def count_rows(self, column: EncryptedColumn, key_id: str) -> int: ...
    async def rows_with_key(
        self, column: EncryptedColumn, key_id: str, limit: int
    ) -> list[tuple[str, str]]: ...
    async def replace_value(
        self, column: EncryptedColumn, row_id: str, old: str, new: str
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class SubjectRecord:
    id: str
    partner_id: str
    key_id: str
    name_enc: str | None
    iban_enc: str | None
    raast_id_enc: str | None
    cnic_enc: str | None
    iban_bidx: str | None
    raast_id_bidx: str | None
    cnic_bidx: str | None
    bank_code: str | None
    iban_last4: str | None
    created_at: datetime
    erased_at: datetime | None


# A lookup by one identifier reads at most this many records, newest first.
PER_IDENTIFIER = 50


class HolderLookup(NamedTuple):
    """Whose customer, which identifier (``iban``, ``raast_id`` or ``cnic``) and value,
    under which name."""

    partner_id: str
    field: str
    value: str
    name: str | None


class SubjectRepository(Protocol):
    async def add(self, subject: SubjectRecord) -> None: ...
    async def get(self, subject_id: str) -> SubjectRecord | None: ...
    async def find(self, partner_id: str | None, field: str, bidx: str) -> list[SubjectRecord]: ...
    async def find_many(
        self, field: str, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[SubjectRecord]]:
        """Each (partner id, blind index) pair's records, newest first, at most
        ``PER_IDENTIFIER`` of them."""
        ...

    async def mark_erased(self, subject_id: str, at: datetime) -> None: ...


class SecretSealer(Protocol):
    """Encrypts a secret for one column of one row under the current fields key."""

    async def seal(self, value: str, *, table: str, column: str, row_id: str) -> str: ...
    async def unseal(self, value: str, *, table: str, column: str, row_id: str) -> str: ...


class ProtectionTx(Transaction, Protocol):
    @property
    def data_keys(self) -> DataKeyRepository: ...
    @property
    def subjects(self) -> SubjectRepository: ...
