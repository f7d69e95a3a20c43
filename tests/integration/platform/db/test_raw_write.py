"""Rows written through asyncpg directly (PostgreSQL, inside a transaction) are exactly the
rows SQLAlchemy writes; anywhere else it is SQLAlchemy's write; they commit and roll back
with the transaction around them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB

from amanat.bootstrap import Container
from amanat.kernel.errors import Contention
from amanat.platform.db import raw_write, sqlite_direct
from amanat.platform.db.dialect import insert_if_absent
from amanat.platform.db.raw_write import RawWriteMany
from amanat.platform.idempotency.tables import idempotency_keys

AT = datetime(2026, 12, 5, 9, 30, 15, 123456, tzinfo=UTC)
_ALL = idempotency_keys.select().order_by(idempotency_keys.c.id)
_INSERT = RawWriteMany(idempotency_keys.insert())
_COMPLETE = RawWriteMany(
    idempotency_keys.update().where(idempotency_keys.c.id == sa.bindparam("p_id"))
)


def _row(prefix: str, n: int, **changes: object) -> dict[str, Any]:
    return {
        "id": f"cli_{prefix}:key-{n}",
        "client_id": f"cli_{prefix}",
        "key": f"key-{n}",
        "request_hash": "ab" * 32,
        "method": "POST",
        "path": "/v1/payments",
        "status": "in_progress",
        "response_status": None,
        "response_body": None,
        "response_headers": {"Location": "/v1/payments/pay_1", "n": [1, 2], "é": None},
        "created_at": AT,
        "locked_until": AT + timedelta(seconds=30),
        "expires_at": AT + timedelta(days=1),
        "resource_id": None,
        "replays": n,
        "last_replayed_at": None if n % 2 else AT + timedelta(seconds=n),
    } | changes


def _completed(prefix: str, n: int) -> dict[str, Any]:
    return {
        "p_id": f"cli_{prefix}:key-{n}",
        "status": "completed",
        "response_status": 201,
        "response_body": f"sealed-{n}",
        "response_headers": {},
        "locked_until": None,
        "resource_id": f"pay_{n}",
    }


def _without_prefix(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.key, *tuple(r)[2:]) for r in rows]


async def test_rows_are_written_as_sqlalchemy_writes_them(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    drivers: list[object] = []
    found = raw_write._transaction_driver
    direct = sqlite_direct.execute_many

    async def spy(conn: Any) -> Any:
        driver = await found(conn)
        drivers.append(driver)
        return driver

    async def spy_direct(*args: Any) -> None:
        drivers.append("sqlite3")
        await direct(*args)

    monkeypatch.setattr(raw_write, "_transaction_driver", spy)
    monkeypatch.setattr(sqlite_direct, "execute_many", spy_direct)
    async with container.db.write() as conn:
        await conn.execute(sa.select(1))  # the transaction has begun
        await _INSERT.execute(conn, [_row("raw", n) for n in (1, 2, 3)])
        await _COMPLETE.execute(conn, [_completed("raw", n) for n in (1, 3)])
    monkeypatch.undo()
    async with container.db.write() as conn:
        await conn.execute(idempotency_keys.insert(), [_row("sqla", n) for n in (1, 2, 3)])
        await conn.execute(
            _COMPLETE.statement,
            [_completed("sqla", n) | {"resource_id": f"pay_{n}"} for n in (1, 3)],
        )
    async with container.db.read() as conn:
        rows = (await conn.execute(_ALL)).all()
    raw = [r for r in rows if r.client_id == "cli_raw"]
    via_sqlalchemy = [r for r in rows if r.client_id == "cli_sqla"]
    assert len(raw) == 3
    assert _without_prefix(raw) == _without_prefix(via_sqlalchemy)
    assert raw[0].response_headers == {}
    assert raw[1].response_headers == {"Location": "/v1/payments/pay_1", "n": [1, 2], "é": None}
    assert raw[1].created_at == AT and raw[1].created_at.tzinfo is not None
    if TEST_DB == "postgresql":
        assert drivers and all(d is not None for d in drivers), "asyncpg directly"
    else:
        assert drivers == ["sqlite3", "sqlite3"], "SQLite: sqlite3 directly (sqlite_direct)"


async def test_they_roll_back_with_the_transaction(container: Container) -> None:
    with pytest.raises(RuntimeError):
        async with container.db.write() as conn:
            await conn.execute(sa.select(1))
            await _INSERT.execute(conn, [_row("gone", 1)])
            raise RuntimeError("after the rows")
    async with container.db.read() as conn:
        assert (await conn.execute(_ALL)).all() == []


async def test_a_transactions_first_statement_and_autocommit_write_their_rows(
    container: Container,
) -> None:
    async with container.db.write() as conn:
        # No statement yet: on PostgreSQL SQLAlchemy has not sent BEGIN (SQLite's is sent
        # by begin()); it is sent first, and the rows land in the transaction.
        await _INSERT.execute(conn, [_row("first", 1)])
    async with container.db.lookup() as conn:
        # No transaction at all: SQLAlchemy's own write, which begins one.
        await _INSERT.execute(conn, [_row("second", 1)])
        await conn.commit()
    async with container.db.read() as conn:
        assert [r.id for r in (await conn.execute(_ALL)).all()] == [
            "cli_first:key-1",
            "cli_second:key-1",
        ]


async def test_a_rejected_row_fails_as_through_sqlalchemy_and_writes_nothing(
    container: Container,
) -> None:
    async with container.db.write() as conn:
        await conn.execute(sa.select(1))
        await _INSERT.execute(conn, [_row("dup", 1)])
    for rows in ([_row("dup", 2), _row("dup", 1)], [_row("dup", 3, client_id=None)]):
        # Either driver's error is raised as SQLAlchemy raises it, parameters hidden.
        with pytest.raises(sa.exc.IntegrityError) as raised:
            async with container.db.write() as conn:
                await conn.execute(sa.select(1))
                await _INSERT.execute(conn, rows)
        assert "cli_dup" not in str(raised.value), "parameters hidden, as SQLAlchemy's"
        if TEST_DB == "postgresql":
            driver_error = raised.value.orig.driver_exception  # type: ignore[union-attr]
            assert isinstance(driver_error, asyncpg.IntegrityConstraintViolationError)
    async with container.db.read() as conn:
        assert [r.id for r in (await conn.execute(_ALL)).all()] == ["cli_dup:key-1"]


def test_a_statement_that_needs_sqlalchemy_at_execution_is_never_raw() -> None:
    metadata = sa.MetaData()
    table = sa.Table(
        "t",
        metadata,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("n", sa.Integer, default=lambda: 7),  # a Python-side default
    )

    class _Conn:
        from sqlalchemy.dialects.postgresql import asyncpg as _pg

        dialect = _pg.dialect()

    with_default = RawWriteMany(table.insert())
    assert with_default._compile(_Conn(), ("id",)) is None  # type: ignore[arg-type]
    assert with_default._compile(_Conn(), ("id", "n")) is not None  # type: ignore[arg-type]


@pytest.mark.skipif(TEST_DB != "postgresql", reason="lock_timeout: PostgreSQL")
async def test_a_write_that_waits_too_long_for_a_lock_is_contention(
    container: Container,
) -> None:
    async with container.db.write() as conn:
        await conn.execute(idempotency_keys.insert(), [_row("held", 1)])
    async with container.db.write() as holder:
        await holder.execute(
            idempotency_keys.update()
            .where(idempotency_keys.c.id == "cli_held:key-1")
            .values(replays=5)
        )
        with pytest.raises(Contention):
            async with container.db.write() as conn:
                await conn.exec_driver_sql("SET LOCAL lock_timeout = 50")
                await _COMPLETE.execute(conn, [_completed("held", 1)])


async def test_returning_gives_the_rows_inserted_and_skips_the_taken(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An INSERT … ON CONFLICT DO NOTHING RETURNING (a payout batch's key claims): the
    ids of the rows it inserted, none for a key already taken, as SQLAlchemy returns them,
    read through the driver directly."""
    direct: list[str] = []
    fetch_each, transaction_driver = sqlite_direct.fetch_each, raw_write._transaction_driver

    async def spy_sqlite(*args: Any) -> Any:
        direct.append("sqlite3")
        return await fetch_each(*args)

    async def spy_pg(conn: Any) -> Any:
        driver = await transaction_driver(conn)
        direct.append("asyncpg" if driver is not None else "sqlalchemy")
        return driver

    async with container.db.write() as conn:
        await conn.execute(idempotency_keys.insert(), [_row("claim", 2)])
    monkeypatch.setattr(sqlite_direct, "fetch_each", spy_sqlite)
    monkeypatch.setattr(raw_write, "_transaction_driver", spy_pg)
    async with container.db.write() as conn:
        # The transaction's first statement, as a payout batch's claims are: on PostgreSQL
        # BEGIN has not been sent yet, and goes first.
        claim = RawWriteMany(
            insert_if_absent(conn, idempotency_keys).returning(
                idempotency_keys.c.id, idempotency_keys.c.created_at
            )
        )
        returned = await claim.execute_returning(conn, [_row("claim", n) for n in (1, 2, 3)])
        await claim.execute(conn, [_row("claim", 4)])  # its rows not wanted: still written
    monkeypatch.undo()
    assert returned == [("cli_claim:key-1", AT), ("cli_claim:key-3", AT)]
    assert returned[0][1].tzinfo is not None, "values through the column's type"
    assert direct == (["sqlite3"] * 2 if TEST_DB == "sqlite" else ["asyncpg"] * 2)
    async with container.db.read() as conn:
        stored = [(r.id, r.replays) for r in (await conn.execute(_ALL)).all()]
    assert stored == [(f"cli_claim:key-{n}", n) for n in (1, 2, 3, 4)]
