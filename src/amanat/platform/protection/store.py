"""Data keys and data subjects in SQL (implements the services' ports)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.platform.crypto.field_cipher import SUBJECT as SUBJECT_PURPOSE
from amanat.platform.db.metadata import metadata
from amanat.platform.db.raw_read import RawRead
from amanat.platform.invalidation.notify import announce
from amanat.platform.protection.ports import (
    DATA_KEYS_CHANGED,
    PER_IDENTIFIER,
    DataKey,
    EncryptedColumn,
    SubjectRecord,
)
from amanat.platform.protection.tables import data_keys, data_subjects


def _data_key(row: Any) -> DataKey:
    return DataKey(
        id=row.id,
        purpose=row.purpose,
        wrapped_key=row.wrapped_key,
        master_key_id=row.master_key_id,
        status=row.status,
        created_at=row.created_at,
        retired_at=row.retired_at,
    )


def _column(column: EncryptedColumn) -> tuple[sa.Table, sa.Column[Any], sa.Column[Any]]:
    table = metadata.tables[column.table]
    return table, table.c[column.id_column], table.c[column.column]


# Every payout runs these; built once (see the package docstring).
_ALL_KEYS = data_keys.select().order_by(data_keys.c.created_at, data_keys.c.id)
_KEYS_FOR = _ALL_KEYS.where(data_keys.c.purpose == sa.bindparam("p_purpose"))


def _find_by(column: sa.Column[Any]) -> sa.Select[Any]:
    return (
        data_subjects.select()
        .where(column == sa.bindparam("p_bidx"))
        .order_by(data_subjects.c.created_at.desc())
        .limit(PER_IDENTIFIER)
    )


_BLIND_INDEXES = {
    "iban": data_subjects.c.iban_bidx,
    "raast_id": data_subjects.c.raast_id_bidx,
    "cnic": data_subjects.c.cnic_bidx,
}
_FIND_ANYWHERE = {field: _find_by(column) for field, column in _BLIND_INDEXES.items()}
_FIND_FOR_PARTNER = {
    field: stmt.where(data_subjects.c.partner_id == sa.bindparam("p_partner"))
    for field, stmt in _FIND_ANYWHERE.items()
}


def _find_many_by(column: sa.Column[Any], *, arrays: bool = False) -> sa.Select[Any]:
    """The same lookup for many (partner, blind index) pairs at once: the pairs' partners
    and indexes each in one IN list, each pair's newest ``PER_IDENTIFIER`` records. Rows of a
    partner under another pair's index are dropped in Python (few: an index is one
    person's identifier). ``arrays``: each list one PostgreSQL array parameter (``=
    ANY``), so the statement is the same whatever the lists' lengths and can be read
    through asyncpg directly (raw_read.py); else expanding IN lists (SQLite)."""
    if arrays:
        strings = postgresql.ARRAY(sa.String)
        wanted = (
            column == sa.any_(sa.bindparam("p_bidxs", type_=strings)),
            data_subjects.c.partner_id == sa.any_(sa.bindparam("p_partners", type_=strings)),
        )
    else:
        wanted = (
            column.in_(sa.bindparam("p_bidxs", expanding=True)),
            data_subjects.c.partner_id.in_(sa.bindparam("p_partners", expanding=True)),
        )
    ranked = (
        sa.select(
            data_subjects,
            sa.func.row_number()
            .over(
                partition_by=(data_subjects.c.partner_id, column),
                order_by=(data_subjects.c.created_at.desc(), data_subjects.c.id.desc()),
            )
            .label("rank_in_pair"),
        )
        .where(*wanted)
        .subquery()
    )
    return (
        sa.select(*(ranked.c[c.name] for c in data_subjects.columns))
        .where(ranked.c.rank_in_pair <= PER_IDENTIFIER)
        .order_by(ranked.c.created_at.desc(), ranked.c.id.desc())
    )


_FIND_MANY = {field: _find_many_by(column) for field, column in _BLIND_INDEXES.items()}
_FIND_MANY_PG = {
    field: RawRead(_find_many_by(column, arrays=True)) for field, column in _BLIND_INDEXES.items()
}


class SqlDataKeyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_key(self, key: DataKey) -> None:
        await self._conn.execute(
            data_keys.insert(),
            {
                "id": key.id,
                "purpose": key.purpose,
                "wrapped_key": key.wrapped_key,
                "master_key_id": key.master_key_id,
                "status": key.status,
                "created_at": key.created_at,
                "retired_at": key.retired_at,
            },
        )
        if key.purpose != SUBJECT_PURPOSE:  # one per data subject: nobody caches those
            await announce(self._conn, DATA_KEYS_CHANGED)

    async def get_key(self, key_id: str) -> DataKey | None:
        row = (await self._conn.execute(data_keys.select().where(data_keys.c.id == key_id))).first()
        return _data_key(row) if row else None

    async def get_keys(self, key_ids: Sequence[str]) -> list[DataKey]:
        if not key_ids:
            return []
        stmt = data_keys.select().where(data_keys.c.id.in_(key_ids))
        return [_data_key(row) for row in (await self._conn.execute(stmt)).all()]

    async def keys(self, purpose: str | None = None) -> list[DataKey]:
        if purpose is None:
            result = await self._conn.execute(_ALL_KEYS)
        else:
            result = await self._conn.execute(_KEYS_FOR, {"p_purpose": purpose})
        return [_data_key(r) for r in result.all()]

    async def set_status(self, key_id: str, status: str, at: datetime | None) -> None:
        await self._conn.execute(
            data_keys.update().where(data_keys.c.id == key_id).values(status=status, retired_at=at)
        )
        await announce(self._conn, DATA_KEYS_CHANGED, key_id)

    async def shred(self, key_id: str, at: datetime) -> None:
        await self._conn.execute(
            data_keys.update()
            .where(data_keys.c.id == key_id)
            .values(wrapped_key=None, status="shredded", retired_at=at)
        )
        await announce(self._conn, DATA_KEYS_CHANGED, key_id)

    async def count_rows(self, column: EncryptedColumn, key_id: str) -> int:
        table, _id, value = _column(column)
        stmt = sa.select(sa.func.count()).select_from(table).where(value.like(f"v1.{key_id}.%"))
        return int((await self._conn.execute(stmt)).scalar_one())

    async def rows_with_key(
        self, column: EncryptedColumn, key_id: str, limit: int
    ) -> list[tuple[str, str]]:
        _table, row_id, value = _column(column)
        stmt = (
            sa.select(row_id, value)
            .where(value.like(f"v1.{key_id}.%"))
            .order_by(row_id)
            .limit(limit)
        )
        return [(str(r[0]), str(r[1])) for r in (await self._conn.execute(stmt)).all()]

    async def replace_value(self, column: EncryptedColumn, row_id: str, old: str, new: str) -> bool:
        table, id_col, value = _column(column)
        result = await self._conn.execute(
            table.update().where(id_col == row_id, value == old).values({value.name: new})
        )
        return bool(result.rowcount)


def _subject(row: Any) -> SubjectRecord:
    return SubjectRecord(
        id=row.id,
        partner_id=row.partner_id,
        key_id=row.key_id,
        name_enc=row.name_enc,
        iban_enc=row.iban_enc,
        raast_id_enc=row.raast_id_enc,
        cnic_enc=row.cnic_enc,
        iban_bidx=row.iban_bidx,
        raast_id_bidx=row.raast_id_bidx,
        cnic_bidx=row.cnic_bidx,
        bank_code=row.bank_code,
        iban_last4=row.iban_last4,
        created_at=row.created_at,
        erased_at=row.erased_at,
    )


class SqlSubjectRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, subject: SubjectRecord) -> None:
        await self._conn.execute(
            data_subjects.insert(),
            {
                "id": subject.id,
                "partner_id": subject.partner_id,
                "key_id": subject.key_id,
                "name_enc": subject.name_enc,
                "iban_enc": subject.iban_enc,
                "raast_id_enc": subject.raast_id_enc,
                "cnic_enc": subject.cnic_enc,
                "iban_bidx": subject.iban_bidx,
                "raast_id_bidx": subject.raast_id_bidx,
                "cnic_bidx": subject.cnic_bidx,
                "bank_code": subject.bank_code,
                "iban_last4": subject.iban_last4,
                "created_at": subject.created_at,
                "erased_at": None,
            },
        )

    async def get(self, subject_id: str) -> SubjectRecord | None:
        row = (
            await self._conn.execute(data_subjects.select().where(data_subjects.c.id == subject_id))
        ).first()
        return _subject(row) if row else None

    async def find(self, partner_id: str | None, field: str, bidx: str) -> list[SubjectRecord]:
        if partner_id is None:
            result = await self._conn.execute(_FIND_ANYWHERE[field], {"p_bidx": bidx})
        else:
            result = await self._conn.execute(
                _FIND_FOR_PARTNER[field], {"p_bidx": bidx, "p_partner": partner_id}
            )
        return [_subject(r) for r in result.all()]

    async def find_many(
        self, field: str, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[SubjectRecord]]:
        found: dict[tuple[str, str], list[SubjectRecord]] = {pair: [] for pair in pairs}
        if not pairs:
            return found
        params = {
            "p_bidxs": sorted({bidx for _, bidx in pairs}),
            "p_partners": sorted({partner for partner, _ in pairs}),
        }
        if self._conn.dialect.name == "postgresql":
            rows = await _FIND_MANY_PG[field].all(self._conn, params)
        else:
            rows = list((await self._conn.execute(_FIND_MANY[field], params)).all())
        index = _BLIND_INDEXES[field].name
        for row in rows:
            mine = found.get((row.partner_id, getattr(row, index)))
            if mine is not None:
                mine.append(_subject(row))
        return found

    async def mark_erased(self, subject_id: str, at: datetime) -> None:
        # Blind indexes go too: an erased person must not be findable by their CNIC.
        await self._conn.execute(
            data_subjects.update()
            .where(data_subjects.c.id == subject_id)
            .values(erased_at=at, iban_bidx=None, raast_id_bidx=None, cnic_bidx=None)
        )


class DataSubjectRows:
    """Retention class ``data_subjects``: people not erased yet, oldest first. They are
    crypto-shredded by the retention service, never deleted as rows."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def due(self, cutoff: datetime, fetch: int) -> list[str]:
        rows = (
            await self._conn.execute(
                sa.select(data_subjects.c.id)
                .where(data_subjects.c.created_at < cutoff, data_subjects.c.erased_at.is_(None))
                .order_by(data_subjects.c.created_at)
                .limit(fetch)
            )
        ).all()
        return [str(r[0]) for r in rows]

    async def delete(self, ids: list[str]) -> int:
        raise ValueError("data_subjects is not deleted by rows")
