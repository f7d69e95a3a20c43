"""The sandbox bank: a small core-banking system behind the CoreBanking port, so TPPs can
try account information and payment initiation end to end without a real bank.

Its customers, accounts and months of transactions come from
:mod:`amanat.openbanking.domain.sandbox_bank_data`; stored, every personal field (name,
CNIC, mobile, IBAN, account title, the descriptions and counterparties of transactions)
is sealed under the platform's fields key, with blind indexes to find an account by IBAN
or Raast ID. Every sandbox customer signs in with the public sandbox password
(:mod:`amanat.openbanking.domain.sandbox_credentials`): the
sandbox's people are made up, and ``make run`` prints it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.kernel.clock import Clock
from amanat.kernel.ids import new_id
from amanat.kernel.pagination import Page
from amanat.openbanking.domain.sandbox_bank_data import SeedBank, generate, opening_balance_minor
from amanat.openbanking.domain.sandbox_credentials import SANDBOX_PSU_PASSWORD
from amanat.openbanking.errors import FundsUnavailable
from amanat.openbanking.ports import (
    AccountEntry,
    BankAccount,
    BankBalance,
    BankCustomer,
    BankTransaction,
    TransactionQuery,
)
from amanat.openbanking.tables import bank_accounts, bank_customers, bank_transactions
from amanat.platform.db.dialect import locked
from amanat.platform.protection.service import DataProtectionService
from amanat.platform.unit_of_work.sql import SqlTransactions

# Argon2 at its lightest sound setting: the sandbox's password is public anyway, and a
# slow hash would only slow the hosted page down.
_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
# What a failed sign-in costs, whether or not the username exists (no user enumeration
# by timing).
_DUMMY_HASH = _HASHER.hash("not-a-password")


class SandboxBankRows:
    """The sandbox bank's tables on one transaction's connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def is_seeded(self) -> bool:
        row = (await self._conn.execute(sa.select(bank_customers.c.id).limit(1))).first()
        return row is not None

    async def insert(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self._conn.execute(table.insert(), rows)

    async def customer_by_username(self, username: str) -> Any:
        return (
            await self._conn.execute(
                bank_customers.select().where(bank_customers.c.username == username)
            )
        ).first()

    async def customer(self, customer_id: str) -> Any:
        return (
            await self._conn.execute(
                bank_customers.select().where(bank_customers.c.id == customer_id)
            )
        ).first()

    async def accounts_where(self, condition: Any) -> list[Any]:
        rows = await self._conn.execute(
            bank_accounts.select().where(condition).order_by(bank_accounts.c.id)
        )
        return list(rows)

    async def account_for_update(self, account_id: str) -> Any:
        stmt = locked(bank_accounts.select().where(bank_accounts.c.id == account_id), self._conn)
        return (await self._conn.execute(stmt)).first()

    async def book(self, account_id: str, balance_after: int, row: dict[str, Any]) -> None:
        await self._conn.execute(
            bank_accounts.update()
            .where(bank_accounts.c.id == account_id)
            .values(booked_minor=balance_after)
        )
        await self._conn.execute(bank_transactions.insert(), [row])

    async def transactions(self, query: TransactionQuery) -> list[Any]:
        t = bank_transactions
        stmt = (
            sa.select(t, bank_accounts.c.currency)
            .join(bank_accounts, bank_accounts.c.id == t.c.account_id)
            .where(t.c.account_id.in_(query.account_ids))
        )
        if query.booked_from is not None:
            stmt = stmt.where(t.c.booked_at >= query.booked_from)
        if query.booked_to is not None:
            stmt = stmt.where(t.c.booked_at <= query.booked_to)
        if not (query.credits and query.debits):
            stmt = stmt.where(t.c.credit.is_(query.credits))
        if query.after is not None:
            at, last_id = query.after
            stmt = stmt.where(
                sa.or_(t.c.booked_at < at, sa.and_(t.c.booked_at == at, t.c.id < last_id))
            )
        stmt = stmt.order_by(t.c.booked_at.desc(), t.c.id.desc()).limit(query.limit + 1)
        return list(await self._conn.execute(stmt))


class SandboxBank:
    """:class:`amanat.openbanking.ports.CoreBanking` over the sandbox bank's tables."""

    def __init__(
        self, transactions: SqlTransactions, protection: DataProtectionService, clock: Clock
    ) -> None:
        self._tx = transactions
        self._protection = protection
        self._clock = clock

    # -- seeding ---------------------------------------------------------------------------

    async def seed(self, *, customers: int = 8, months: int = 6, seed: int = 2026) -> bool:
        """Fill an empty sandbox bank; False when it already holds customers."""
        async with self._tx.read() as tx:
            if await tx.sandbox_bank.is_seeded():
                return False
        now = self._clock.now()
        bank = generate(now=now, customers=customers, months=months, seed=seed)
        password_hash = await asyncio.to_thread(_HASHER.hash, SANDBOX_PSU_PASSWORD)
        async with self._tx.write() as tx:
            if await tx.sandbox_bank.is_seeded():
                return False
            rows = await self._rows(tx, bank, password_hash, now)
            for table, values in rows:
                await tx.sandbox_bank.insert(table, values)
        return True

    async def _rows(
        self, tx: Any, bank: SeedBank, password_hash: str, now: datetime
    ) -> list[tuple[sa.Table, list[dict[str, Any]]]]:
        async def seal(table: str, column: str, row_id: str, value: str) -> str:
            return await self._protection.seal_within(
                tx, value, table=table, column=column, row_id=row_id
            )

        bidx_key = await self._protection.blind_index_key()
        cipher = self._protection.cipher
        customer_rows = [
            {
                "id": c.id,
                "username": c.username,
                "password_hash": password_hash,
                "name": await seal("bank_customers", "name", c.id, c.full_name),
                "cnic": await seal("bank_customers", "cnic", c.id, c.cnic),
                "mobile": await seal("bank_customers", "mobile", c.id, c.mobile),
                "city": c.city,
                "created_at": now,
            }
            for c in bank.customers
        ]
        balances: dict[str, int] = {}
        for t in bank.transactions:
            balances[t.account_id] = t.balance_after_minor
        account_rows = [
            {
                "id": a.id,
                "customer_id": a.customer_id,
                "bank_code": a.bank_code,
                "iban": await seal("bank_accounts", "iban", a.id, a.iban),
                "iban_bidx": await cipher.blind_index(bidx_key, "iban", a.iban),
                "iban_last4": a.iban[-4:],
                "raast_id": (
                    await seal("bank_accounts", "raast_id", a.id, a.raast_id)
                    if a.raast_id
                    else None
                ),
                "raast_id_bidx": (
                    await cipher.blind_index(bidx_key, "raast_id", a.raast_id)
                    if a.raast_id
                    else None
                ),
                "title": await seal("bank_accounts", "title", a.id, a.title),
                "currency": a.currency,
                "account_type": a.account_type,
                "subtype": a.subtype,
                "nickname": a.nickname,
                "opened_on": a.opened_on,
                "booked_minor": balances.get(a.id, opening_balance_minor(bank, a.id)),
                "created_at": now,
            }
            for a in bank.accounts
        ]
        transaction_rows = []
        for t in bank.transactions:
            counterparty = (
                json.dumps({"name": t.counterparty_name, "iban": t.counterparty_iban})
                if t.counterparty_name or t.counterparty_iban
                else None
            )
            transaction_rows.append(
                {
                    "id": t.id,
                    "account_id": t.account_id,
                    "booked_at": t.booked_at,
                    "amount_minor": t.amount_minor,
                    "credit": t.credit,
                    "code": t.code,
                    "description": await seal(
                        "bank_transactions", "description", t.id, t.description
                    ),
                    "merchant_name": t.merchant_name,
                    "counterparty": (
                        await seal("bank_transactions", "counterparty", t.id, counterparty)
                        if counterparty
                        else None
                    ),
                    "balance_after_minor": t.balance_after_minor,
                }
            )
        return [
            (bank_customers, customer_rows),
            (bank_accounts, account_rows),
            (bank_transactions, transaction_rows),
        ]

    # -- CoreBanking -------------------------------------------------------------------------

    async def account_title(self, *, iban: str | None, raast_id: str | None) -> str | None:
        key = await self._protection.blind_index_key()
        cipher = self._protection.cipher
        if iban is not None:
            condition = bank_accounts.c.iban_bidx == await cipher.blind_index(key, "iban", iban)
        elif raast_id is not None:
            condition = bank_accounts.c.raast_id_bidx == await cipher.blind_index(
                key, "raast_id", raast_id
            )
        else:
            return None
        async with self._tx.lookup() as tx:
            rows = await tx.sandbox_bank.accounts_where(condition)
        return (await self._account(rows[0])).title if rows else None

    async def debit(self, debit: AccountEntry) -> str:
        return await self._book(debit, credit=False)

    async def credit(self, entry: AccountEntry) -> str:
        return await self._book(entry, credit=True)

    async def _book(self, entry: AccountEntry, *, credit: bool) -> str:
        transaction_id = "btx_" + new_id("payment").split("_", 1)[1]
        counterparty = (
            json.dumps({"name": entry.counterparty_name, "iban": entry.counterparty_iban})
            if entry.counterparty_name or entry.counterparty_iban
            else None
        )
        sealed_description = await self._protection.seal(
            entry.description[:140],
            table="bank_transactions",
            column="description",
            row_id=transaction_id,
        )
        sealed_counterparty = (
            await self._protection.seal(
                counterparty,
                table="bank_transactions",
                column="counterparty",
                row_id=transaction_id,
            )
            if counterparty
            else None
        )
        async with self._tx.write() as tx:
            account = await tx.sandbox_bank.account_for_update(entry.account_id)
            if account is None or account.currency != entry.currency:
                raise FundsUnavailable("The account cannot pay in this currency.")
            if not credit and account.booked_minor < entry.amount_minor:
                raise FundsUnavailable("The account's balance does not cover the payment.")
            change = entry.amount_minor if credit else -entry.amount_minor
            balance_after = account.booked_minor + change
            await tx.sandbox_bank.book(
                entry.account_id,
                balance_after,
                {
                    "id": transaction_id,
                    "account_id": entry.account_id,
                    "booked_at": self._clock.now(),
                    "amount_minor": entry.amount_minor,
                    "credit": credit,
                    "code": "RAAST_RETURN" if credit else "RAAST_OUT",
                    "description": sealed_description,
                    "merchant_name": None,
                    "counterparty": sealed_counterparty,
                    "balance_after_minor": balance_after,
                },
            )
        return transaction_id

    async def _open(self, table: str, column: str, row_id: str, value: str) -> str:
        return await self._protection.unseal(value, table=table, column=column, row_id=row_id)

    async def _customer(self, row: Any) -> BankCustomer:
        return BankCustomer(
            id=row.id,
            username=row.username,
            full_name=await self._open("bank_customers", "name", row.id, row.name),
            mobile=await self._open("bank_customers", "mobile", row.id, row.mobile),
        )

    async def sign_in(self, username: str, password: str) -> BankCustomer | None:
        async with self._tx.lookup() as tx:
            row = await tx.sandbox_bank.customer_by_username(username.strip().lower()[:64])
        stored = row.password_hash if row is not None else _DUMMY_HASH
        try:
            await asyncio.to_thread(_HASHER.verify, stored, password[:256])
        except (VerificationError, InvalidHashError):
            return None
        return await self._customer(row) if row is not None else None

    async def customer(self, customer_id: str) -> BankCustomer | None:
        async with self._tx.lookup() as tx:
            row = await tx.sandbox_bank.customer(customer_id)
        return await self._customer(row) if row is not None else None

    async def _account(self, row: Any) -> BankAccount:
        return BankAccount(
            id=row.id,
            customer_id=row.customer_id,
            bank_code=row.bank_code,
            iban=await self._open("bank_accounts", "iban", row.id, row.iban),
            title=await self._open("bank_accounts", "title", row.id, row.title),
            currency=row.currency,
            account_type=row.account_type,
            subtype=row.subtype,
            nickname=row.nickname,
            opened_on=row.opened_on,
            raast_id=(
                await self._open("bank_accounts", "raast_id", row.id, row.raast_id)
                if row.raast_id
                else None
            ),
        )

    async def accounts_of(self, customer_id: str) -> list[BankAccount]:
        async with self._tx.lookup() as tx:
            rows = await tx.sandbox_bank.accounts_where(bank_accounts.c.customer_id == customer_id)
        return [await self._account(row) for row in rows]

    async def accounts(self, account_ids: tuple[str, ...]) -> list[BankAccount]:
        if not account_ids:
            return []
        async with self._tx.lookup() as tx:
            rows = await tx.sandbox_bank.accounts_where(bank_accounts.c.id.in_(account_ids))
        return [await self._account(row) for row in rows]

    async def balances(self, account_ids: tuple[str, ...]) -> list[BankBalance]:
        if not account_ids:
            return []
        async with self._tx.lookup() as tx:
            rows = await tx.sandbox_bank.accounts_where(bank_accounts.c.id.in_(account_ids))
        now = self._clock.now()
        return [
            BankBalance(
                account_id=row.id,
                currency=row.currency,
                booked_minor=row.booked_minor,
                available_minor=row.booked_minor,
                at=now,
            )
            for row in rows
        ]

    async def transactions(self, query: TransactionQuery) -> Page[BankTransaction]:
        if not query.account_ids:
            return Page([], False)
        async with self._tx.lookup() as tx:
            rows = await tx.sandbox_bank.transactions(query)
        has_more = len(rows) > query.limit
        items = []
        for row in rows[: query.limit]:
            counterparty: dict[str, Any] = {}
            if row.counterparty:
                counterparty = json.loads(
                    await self._open("bank_transactions", "counterparty", row.id, row.counterparty)
                )
            items.append(
                BankTransaction(
                    id=row.id,
                    account_id=row.account_id,
                    booked_at=row.booked_at,
                    amount_minor=row.amount_minor,
                    currency=row.currency,
                    credit=row.credit,
                    code=row.code,
                    description=await self._open(
                        "bank_transactions", "description", row.id, row.description
                    ),
                    merchant_name=row.merchant_name,
                    counterparty_name=counterparty.get("name"),
                    counterparty_iban=counterparty.get("iban"),
                    balance_after_minor=row.balance_after_minor,
                )
            )
        return Page(items, has_more)
