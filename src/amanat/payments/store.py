"""Payments, the ledger (entries, sharded balances, holds), the outbox and rail events."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from amanat.kernel.money import Money
from amanat.kernel.pagination import Page
from amanat.payments.domain.ledger import InsufficientFunds, Journal, Shard, rebalanced
from amanat.payments.domain.payments import (
    TERMINAL,
    AccountScheme,
    Failure,
    Party,
    Payment,
    PaymentStatus,
    PaymentType,
)
from amanat.payments.tables import (
    balance_shards,
    holds,
    ledger_accounts,
    ledger_entries,
    ledger_journals,
    payment_transitions,
    payments,
    rail_events,
    rejected_callbacks,
)
from amanat.platform.db.dialect import insert_if_absent, locked
from amanat.platform.db.keyed_read import KeyedRead
from amanat.platform.db.raw_read import RawRead
from amanat.platform.db.raw_savepoint import Savepoint, begin_savepoint
from amanat.platform.db.raw_write import RawWriteMany
from amanat.platform.jobs.tables import outbox

# The request path's statements, built once (see the package docstring).
_INSERT_PAYMENTS = payments.insert()
_INSERT_PAYMENT_TRANSITIONS = payment_transitions.insert()
_INSERT_HOLDS = holds.insert()
_INSERT_LEDGER_JOURNALS = ledger_journals.insert()
_INSERT_LEDGER_ENTRIES = ledger_entries.insert()
_INSERT_OUTBOX = outbox.insert()
_PAYMENT_BY_ID = payments.select().where(payments.c.id == sa.bindparam("p_id"))
# GET /v1/payments/{id}, the hot read: outside a transaction, shared by the requests
# asking at the same moment (platform/db/keyed_read.py).
_PAYMENT_BY_KEY = KeyedRead(payments.select(), payments.c.id)
_PAYMENT_BY_ID_FOR_UPDATE = _PAYMENT_BY_ID.with_for_update()  # SQLite omits FOR UPDATE
_SAVE_TRANSITION = payments.update().where(
    payments.c.id == sa.bindparam("p_id"), payments.c.version == sa.bindparam("p_version")
)
_MARK_SUBMITTED = payments.update().where(
    payments.c.id == sa.bindparam("p_id"),
    payments.c.status == PaymentStatus.PENDING.value,
    payments.c.submitted_at.is_(None),
)
_SHARD_COUNT = sa.select(ledger_accounts.c.shards).where(
    ledger_accounts.c.id == sa.bindparam("p_account")
)
_SHARD = sa.and_(
    balance_shards.c.account_id == sa.bindparam("p_account"),
    balance_shards.c.shard == sa.bindparam("p_shard"),
)
_HOLD_ON_SHARD = (
    balance_shards.update()
    .where(_SHARD, balance_shards.c.posted - balance_shards.c.held >= sa.bindparam("p_amount"))
    .values(held=balance_shards.c.held + sa.bindparam("p_amount"))
)
# PostgreSQL's first try: one statement holds the amount on a shard that covers it and
# that no other transaction has locked, starting at a random shard; it never waits.
_FREE_SHARD = (
    sa.select(balance_shards.c.shard)
    .where(
        balance_shards.c.account_id == sa.bindparam("p_account"),
        balance_shards.c.posted - balance_shards.c.held >= sa.bindparam("p_amount"),
    )
    .order_by(
        (balance_shards.c.shard + sa.bindparam("p_offset", type_=sa.Integer))
        % sa.bindparam("p_count", type_=sa.Integer)
    )
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_HOLD_ON_FREE_SHARD = (
    balance_shards.update()
    .where(
        balance_shards.c.account_id == sa.bindparam("p_account"),
        balance_shards.c.shard == _FREE_SHARD,
        balance_shards.c.posted - balance_shards.c.held >= sa.bindparam("p_amount"),
    )
    .values(held=balance_shards.c.held + sa.bindparam("p_amount"))
    .returning(balance_shards.c.shard)
)
_CLOSE_HOLD = (
    holds.update()
    .where(holds.c.id == sa.bindparam("p_id"), holds.c.status == "active")
    .values(status=sa.bindparam("p_status"), closed_at=sa.bindparam("p_at"))
    .returning(holds.c.account_id, holds.c.shard, holds.c.amount)
)
# Settling and crediting need no check (a hold already covers what it posts), so they are
# deferred: one relative UPDATE per shard, applied last (see SqlLedgerRepository).
_MOVE_SHARD = (
    balance_shards.update()
    .where(_SHARD)
    .values(
        posted=balance_shards.c.posted + sa.bindparam("p_posted", type_=sa.BigInteger),
        held=balance_shards.c.held + sa.bindparam("p_held", type_=sa.BigInteger),
    )
)


_LOCK_SHARDS = (
    balance_shards.select()
    .where(balance_shards.c.account_id.in_(sa.bindparam("p_accounts", expanding=True)))
    # One fixed order for every batch: two batches locking overlapping shards queue, they
    # never deadlock.
    .order_by(balance_shards.c.account_id, balance_shards.c.shard)
)
# PostgreSQL's batch lock (lock_free_shards): the accounts as one array, so the statement
# is one prepared statement whatever the batch's size, read through asyncpg in the
# transaction (raw_read.py).
_LOCK_FREE_SHARDS_PG = RawRead(
    balance_shards.select()
    .where(
        balance_shards.c.account_id
        == sa.any_(sa.bindparam("p_accounts", type_=postgresql.ARRAY(sa.String)))
    )
    .order_by(balance_shards.c.account_id, balance_shards.c.shard)
    .with_for_update(skip_locked=True)
)
_SET_SHARD = (
    balance_shards.update()
    .where(_SHARD)
    .values(posted=sa.bindparam("p_posted"), held=sa.bindparam("p_held"))
)
# A payout batch's rows, written through asyncpg directly on PostgreSQL (raw_write.py).
_SET_SHARDS_RAW = RawWriteMany(_SET_SHARD)
_INSERT_HOLDS_RAW = RawWriteMany(_INSERT_HOLDS)
_INSERT_PAYMENTS_RAW = RawWriteMany(_INSERT_PAYMENTS)
_INSERT_PAYMENT_TRANSITIONS_RAW = RawWriteMany(_INSERT_PAYMENT_TRANSITIONS)
_INSERT_OUTBOX_RAW = RawWriteMany(_INSERT_OUTBOX)


def _payment_row(payment: Payment, client_id: str | None, parent_id: str | None) -> dict[str, Any]:
    return {
        "id": payment.id,
        "partner_id": payment.partner_id,
        "client_id": client_id,
        "type": payment.type.value,
        "status": payment.status.value,
        "amount": payment.amount.amount,
        "currency": payment.amount.currency,
        "counterparty_id": payment.counterparty.subject_id,
        "counterparty_kind": payment.counterparty.kind,
        "bank_code": payment.counterparty.bank_code,
        "iban_last4": payment.counterparty.iban_last4,
        "reference": payment.reference,
        "description": payment.description,
        "metadata": payment.metadata,
        "version": payment.version,
        "failure_code": None,
        "failure_message": None,
        "rail_reference": None,
        "rail_sequence": 0,
        "submitted_at": None,
        "expires_at": payment.expires_at,
        "refunded_amount": 0,
        "parent_id": parent_id,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }


def _transition_row(
    payment: Payment, from_status: PaymentStatus | None, cause: str
) -> dict[str, Any]:
    return {
        "payment_id": payment.id,
        "from_status": from_status.value if from_status else None,
        "to_status": payment.status.value,
        "version": payment.version,
        "cause": cause[:200],
        "at": payment.updated_at,
    }


def _outbox_row(kind: str, subject_id: str, run_at: datetime) -> dict[str, Any]:
    """A row as the outbox's own ``enqueue`` writes it (platform/jobs/outbox_store.py)."""
    return {
        "kind": kind,
        "subject_id": subject_id,
        "payload": {},
        "status": "pending",
        "attempts": 0,
        "run_at": run_at,
        "locked_until": None,
        "locked_by": None,
        "last_error": None,
        "created_at": run_at,
        "updated_at": run_at,
    }


def _payment(row: Any) -> Payment:
    return Payment(
        id=row.id,
        partner_id=row.partner_id,
        type=PaymentType(row.type),
        status=PaymentStatus(row.status),
        amount=Money(int(row.amount), row.currency),
        counterparty=Party(
            subject_id=row.counterparty_id,
            bank_code=row.bank_code,
            iban_last4=row.iban_last4,
            kind=AccountScheme(row.counterparty_kind),
        ),
        reference=row.reference,
        description=row.description,
        metadata=dict(row.metadata),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        failure=Failure(row.failure_code, row.failure_message or "") if row.failure_code else None,
        rail_reference=row.rail_reference,
        rail_sequence=row.rail_sequence,
        expires_at=row.expires_at,
        refunded_amount=int(row.refunded_amount),
        parent_id=row.parent_id,
        client_id=row.client_id,
        submitted_at=row.submitted_at,
    )


class SqlPaymentRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self, payment: Payment, *, client_id: str | None, parent_id: str | None = None
    ) -> None:
        await self._conn.execute(_INSERT_PAYMENTS, _payment_row(payment, client_id, parent_id))
        await self.record_transition(payment, None, "created")

    async def add_many(self, created: list[tuple[Payment, str | None, str, datetime]]) -> None:
        """New payments, each ``(payment, client_id, job kind, job run_at)``, with their
        "created" transitions and their first outbox jobs: three statements in all."""
        if not created:
            return
        await _INSERT_PAYMENTS_RAW.execute(
            self._conn, [_payment_row(p, client_id, None) for p, client_id, _, _ in created]
        )
        await _INSERT_PAYMENT_TRANSITIONS_RAW.execute(
            self._conn, [_transition_row(p, None, "created") for p, *_ in created]
        )
        await _INSERT_OUTBOX_RAW.execute(
            self._conn, [_outbox_row(kind, p.id, at) for p, _, kind, at in created]
        )

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        if for_update:
            params = {"p_id": payment_id}
            row = (await self._conn.execute(_PAYMENT_BY_ID_FOR_UPDATE, params)).first()
        else:
            row = await _PAYMENT_BY_KEY.first(self._conn, payment_id)
        return _payment(row) if row else None

    async def save_transition(self, before: Payment, after: Payment, cause: str) -> bool:
        """Optimistic: applies only if the stored version is still ``before.version``."""
        result = await self._conn.execute(
            _SAVE_TRANSITION,
            {
                "p_id": after.id,
                "p_version": before.version,
                "status": after.status.value,
                "version": after.version,
                "updated_at": after.updated_at,
                "failure_code": after.failure.code if after.failure else None,
                "failure_message": after.failure.message if after.failure else None,
                "rail_reference": after.rail_reference,
                "rail_sequence": after.rail_sequence,
            },
        )
        if not result.rowcount:
            return False
        await self.record_transition(after, before.status, cause)
        return True

    async def record_transition(
        self, payment: Payment, from_status: PaymentStatus | None, cause: str
    ) -> None:
        await self._conn.execute(
            _INSERT_PAYMENT_TRANSITIONS, _transition_row(payment, from_status, cause)
        )

    async def transitions(self, payment_id: str) -> list[dict[str, Any]]:
        rows = (
            await self._conn.execute(
                payment_transitions.select()
                .where(payment_transitions.c.payment_id == payment_id)
                .order_by(payment_transitions.c.version)
            )
        ).all()
        return [
            {
                "from": r.from_status,
                "to": r.to_status,
                "version": r.version,
                "cause": r.cause,
                "at": r.at,
            }
            for r in rows
        ]

    async def mark_submitted(self, payment_id: str, at: datetime) -> bool:
        """Claim the right to send to the rail; after this a payment can no longer be
        canceled (it may already be at the rail)."""
        result = await self._conn.execute(_MARK_SUBMITTED, {"p_id": payment_id, "submitted_at": at})
        return bool(result.rowcount)

    async def add_refunded(
        self, payment_id: str, amount: int, at: datetime, *, reserved: int = 0
    ) -> bool:
        """Reduce the refundable remainder atomically; False if it would go below
        ``reserved`` (what disputes of the payment take).
        ``refunded_amount`` is part of the payment as partners see it, so this is a new
        version, recorded in the history like a status change."""
        result = await self._conn.execute(
            payments.update()
            .where(
                payments.c.id == payment_id,
                payments.c.status == PaymentStatus.SUCCEEDED.value,
                payments.c.amount - payments.c.refunded_amount - reserved >= amount,
            )
            .values(
                refunded_amount=payments.c.refunded_amount + amount,
                version=payments.c.version + 1,
                updated_at=at,
            )
        )
        if not result.rowcount:
            return False
        await self._record_refunded_change(payment_id, f"refund of {amount} made")
        return True

    async def return_refunded(self, payment_id: str, amount: int, at: datetime) -> None:
        """A failed refund's amount is refundable again: a new version too."""
        await self._conn.execute(
            payments.update()
            .where(payments.c.id == payment_id)
            .values(
                refunded_amount=payments.c.refunded_amount - amount,
                version=payments.c.version + 1,
                updated_at=at,
            )
        )
        await self._record_refunded_change(payment_id, f"failed refund of {amount} returned")

    async def _record_refunded_change(self, payment_id: str, cause: str) -> None:
        changed = await self.get(payment_id)
        if changed is not None:
            await self.record_transition(changed, changed.status, cause)

    async def list(
        self,
        partner_id: str,
        *,
        types: list[str],
        limit: int,
        before: tuple[datetime, str] | None,
        status: str | None,
        created_gte: datetime | None,
        created_lt: datetime | None,
        parent_id: str | None = None,
    ) -> Page[Payment]:
        stmt = payments.select().where(
            payments.c.partner_id == partner_id, payments.c.type.in_(types)
        )
        if before is not None:
            at, pid = before
            stmt = stmt.where(
                sa.or_(
                    payments.c.created_at < at,
                    sa.and_(payments.c.created_at == at, payments.c.id < pid),
                )
            )
        if status:
            stmt = stmt.where(payments.c.status == status)
        if created_gte:
            stmt = stmt.where(payments.c.created_at >= created_gte)
        if created_lt:
            stmt = stmt.where(payments.c.created_at < created_lt)
        if parent_id:
            stmt = stmt.where(payments.c.parent_id == parent_id)
        stmt = stmt.order_by(payments.c.created_at.desc(), payments.c.id.desc()).limit(limit + 1)
        rows = (await self._conn.execute(stmt)).all()
        return Page(items=[_payment(r) for r in rows[:limit]], has_more=len(rows) > limit)

    async def in_flight_incoming(self, partner_id: str) -> int:
        stmt = sa.select(sa.func.coalesce(sa.func.sum(payments.c.amount), 0)).where(
            payments.c.partner_id == partner_id,
            payments.c.type == PaymentType.COLLECTION.value,
            payments.c.status.in_(
                [PaymentStatus.PENDING.value, PaymentStatus.AWAITING_APPROVAL.value]
            ),
        )
        return int((await self._conn.execute(stmt)).scalar_one())

    async def unresolved(self, older_than: datetime) -> int:
        stmt = (
            sa.select(sa.func.count())
            .select_from(payments)
            .where(
                payments.c.status.in_(
                    [PaymentStatus.PROCESSING.value, PaymentStatus.AWAITING_APPROVAL.value]
                ),
                payments.c.updated_at < older_than,
            )
        )
        return int((await self._conn.execute(stmt)).scalar_one())

    async def stranded(self, older_than: datetime, limit: int) -> tuple[Payment, ...]:
        """Payments in flight that nothing will move: not final, unchanged since
        ``older_than``, and without a pending (or running) outbox job."""
        live_job = sa.exists().where(
            outbox.c.subject_id == payments.c.id, outbox.c.status == "pending"
        )
        stmt = (
            payments.select()
            .where(
                payments.c.status.in_([s.value for s in PaymentStatus if s not in TERMINAL]),
                payments.c.updated_at < older_than,
                ~live_job,
            )
            .order_by(payments.c.updated_at)
            .limit(limit)
        )
        return tuple(_payment(r) for r in (await self._conn.execute(stmt)).all())


def _by_account(rows: Any) -> dict[str, list[Shard]]:
    shards: dict[str, list[Shard]] = {}
    for r in rows:
        shards.setdefault(r.account_id, []).append(Shard(r.shard, int(r.posted), int(r.held)))
    return shards


class FreeShards:
    """The shards :meth:`SqlLedgerRepository.lock_free_shards` locked: ``shards``, and
    ``complete`` when they are all of the accounts' shards."""

    def __init__(
        self,
        ledger: SqlLedgerRepository,
        accounts: list[str],
        shards: dict[str, list[Shard]],
        savepoint: Savepoint | None,
    ) -> None:
        self.shards = shards
        self._ledger = ledger
        self._accounts = accounts
        self._savepoint = savepoint

    @property
    def complete(self) -> bool:
        return self._savepoint is None

    async def wait_for_all(self) -> dict[str, list[Shard]]:
        """Let the shards got go and lock them all, in order, waiting."""
        if self._savepoint is not None:
            await self._savepoint.rollback()
            self._savepoint = None
        self.shards = await self._ledger.lock_shards(self._accounts)
        return self.shards


class SqlLedgerRepository:
    """The ledger's tables on one transaction's connection.

    A settled or voided hold and a credit change balance shards by a known amount with
    no condition to check, so their UPDATEs wait in ``_moves`` and run last, just before
    COMMIT (:meth:`flush_at_commit`, called by the unit of work), one per shard in one
    fixed order. A shard's row lock is then held for one statement and the commit, not
    for the rest of the transaction: rail callbacks settling a busy merchant's payouts
    would otherwise hold its shards through their journal, event and audit inserts, and
    that merchant's new payouts, which lock all its shards, would queue behind each one.
    Anything in this transaction that reads or conditionally changes shards applies the
    waiting moves first, so the transaction always sees its own writes.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._moves: dict[tuple[str, int], tuple[int, int]] = {}

    @property
    def writes_waiting(self) -> bool:
        """Moves not yet applied (they are lost unless the transaction commits)."""
        return bool(self._moves)

    def _move(self, account_id: str, shard: int, posted: int, held: int) -> None:
        before = self._moves.get((account_id, shard), (0, 0))
        self._moves[(account_id, shard)] = (before[0] + posted, before[1] + held)

    async def flush_at_commit(self) -> None:
        """Apply the waiting shard moves, in (account, shard) order."""
        if not self._moves:
            return
        moves, self._moves = sorted(self._moves.items()), {}
        rows = [
            {"p_account": account, "p_shard": shard, "p_posted": posted, "p_held": held}
            for (account, shard), (posted, held) in moves
            if posted or held
        ]
        if rows:
            await self._conn.execute(_MOVE_SHARD, rows)

    async def ensure_account(
        self, account_id: str, kind: str, currency: str, shards: int, at: datetime
    ) -> tuple[int, bool]:
        """Create the account if it is new; returns its number of balance shards and
        whether this transaction created it (then it exists only once this commits)."""
        created = await self._conn.execute(
            insert_if_absent(self._conn, ledger_accounts),
            {
                "id": account_id,
                "kind": kind,
                "currency": currency,
                "shards": shards,
                "created_at": at,
            },
        )
        if created.rowcount:
            await self._conn.execute(
                balance_shards.insert(),
                [
                    {"account_id": account_id, "shard": i, "posted": 0, "held": 0}
                    for i in range(shards)
                ],
            )
            return shards, True
        return await self._shard_count(account_id), False

    async def shard_counts(self, account_ids: Sequence[str]) -> dict[str, int]:
        if not account_ids:
            return {}
        stmt = sa.select(ledger_accounts.c.id, ledger_accounts.c.shards).where(
            ledger_accounts.c.id.in_(account_ids)
        )
        return {row.id: int(row.shards) for row in (await self._conn.execute(stmt)).all()}

    async def _shard_count(self, account_id: str) -> int:
        value = (await self._conn.execute(_SHARD_COUNT, {"p_account": account_id})).scalar()
        return int(value or 1)

    async def reserve(
        self,
        account_id: str,
        hold_id: str,
        amount: int,
        currency: str,
        at: datetime,
        *,
        shard_count: int | None = None,
    ) -> int:
        """Hold ``amount`` on one shard; raises InsufficientFunds and changes nothing.
        ``shard_count``: the account's, when the caller knows it (saves a query)."""
        await self.flush_at_commit()
        count = shard_count or await self._shard_count(account_id)
        start = random.randrange(count)
        if self._conn.dialect.name == "sqlite":
            shard = await self._hold_on_any_shard(account_id, amount, start, count)
        else:
            shard = await self._hold_without_waiting(account_id, amount, start, count)
            if shard is None:
                shard = await self._hold_after_waiting(account_id, amount, start)
        if shard is not None:
            await self._add_hold(hold_id, account_id, shard, amount, currency, at)
            return shard
        # Slow path: enough money in total but spread thin: lock all, even out, retry.
        stmt = (
            balance_shards.select()
            .where(balance_shards.c.account_id == account_id)
            .order_by(balance_shards.c.shard)
        )
        rows = (await self._conn.execute(locked(stmt, self._conn))).all()
        shards = [Shard(r.shard, int(r.posted), int(r.held)) for r in rows]
        if sum(s.available for s in shards) < amount:
            raise InsufficientFunds("The available balance does not cover this amount.")
        for s in rebalanced(shards):
            await self._conn.execute(
                balance_shards.update()
                .where(balance_shards.c.account_id == account_id, balance_shards.c.shard == s.index)
                .values(posted=s.posted)
            )
        best = max(rebalanced(shards), key=lambda s: s.available)
        if best.available < amount:
            # Evening out leaves at most total/N per shard: put it all on one shard.
            total = sum(s.available for s in shards)
            for s in shards:
                posted = s.held + (total if s.index == best.index else 0)
                await self._conn.execute(
                    balance_shards.update()
                    .where(
                        balance_shards.c.account_id == account_id, balance_shards.c.shard == s.index
                    )
                    .values(posted=posted)
                )
        await self._conn.execute(
            balance_shards.update()
            .where(balance_shards.c.account_id == account_id, balance_shards.c.shard == best.index)
            .values(held=balance_shards.c.held + amount)
        )
        await self._add_hold(hold_id, account_id, best.index, amount, currency, at)
        return best.index

    async def lock_shards(self, account_ids: list[str]) -> dict[str, list[Shard]]:
        """The balance shards of these accounts, locked (one SELECT … FOR UPDATE in one
        fixed order on PostgreSQL; SQLite's write lock already covers them)."""
        await self.flush_at_commit()
        rows = (
            await self._conn.execute(
                locked(_LOCK_SHARDS, self._conn), {"p_accounts": sorted(set(account_ids))}
            )
        ).all()
        return _by_account(rows)

    async def lock_free_shards(self, shard_counts: dict[str, int]) -> FreeShards:
        """PostgreSQL: the shards of these accounts that no other transaction holds, locked
        without waiting (SKIP LOCKED) inside a savepoint. A rail callback settling one of
        a busy merchant's payouts holds one of its shards for a moment; a batch then goes
        on with the others instead of queueing behind it. When the shards got do not cover
        the batch, :meth:`FreeShards.wait_for_all` lets them go (the savepoint's rollback)
        and locks every shard in the fixed order, waiting, so no two batches ever hold
        some shards while waiting for others. SQLite: every shard (its write lock covers
        them)."""
        if self._conn.dialect.name == "sqlite":
            accounts = list(shard_counts)
            return FreeShards(self, accounts, await self.lock_shards(accounts), None)
        await self.flush_at_commit()
        savepoint = await begin_savepoint(self._conn, "free_shards")
        rows = await _LOCK_FREE_SHARDS_PG.all(self._conn, {"p_accounts": sorted(shard_counts)})
        got = _by_account(rows)
        if all(len(got.get(a, [])) >= n for a, n in shard_counts.items()):
            await savepoint.commit()  # RELEASE: the locks stay with the transaction
            return FreeShards(self, sorted(shard_counts), got, None)
        return FreeShards(self, sorted(shard_counts), got, savepoint)

    async def hold_many(
        self,
        holds_: list[tuple[str, str, int, int, str, datetime]],
        shards: list[tuple[str, Shard]],
    ) -> None:
        """Active holds ``(hold_id, account, shard, amount, currency, at)`` and the new
        values of the shards they changed, locked by :meth:`lock_shards` in this
        transaction (so absolute values are safe to write)."""
        if self._moves:
            # A move applied between lock_shards and here would be overwritten.
            raise RuntimeError("hold_many after a deferred shard move in one transaction")
        if holds_:
            await _INSERT_HOLDS_RAW.execute(
                self._conn,
                [
                    {
                        "id": hold_id,
                        "account_id": account,
                        "shard": shard,
                        "amount": amount,
                        "currency": currency,
                        "status": "active",
                        "created_at": at,
                        "closed_at": None,
                    }
                    for hold_id, account, shard, amount, currency, at in holds_
                ],
            )
        if not shards:
            return
        # executemany of one cached statement (one round trip on asyncpg); an UPDATE …
        # FROM (VALUES …) was compiled anew for every batch and cost more than it saved.
        await _SET_SHARDS_RAW.execute(
            self._conn,
            [
                {"p_account": account, "p_shard": s.index, "p_posted": s.posted, "p_held": s.held}
                for account, s in shards
            ],
        )

    async def _hold_on_any_shard(
        self, account_id: str, amount: int, start: int, count: int
    ) -> int | None:
        """SQLite: one writer at a time, so no lock order to keep; try each shard in turn."""
        for offset in range(count):
            shard = (start + offset) % count
            result = await self._conn.execute(
                _HOLD_ON_SHARD, {"p_account": account_id, "p_shard": shard, "p_amount": amount}
            )
            if result.rowcount:
                return shard
        return None

    async def _hold_without_waiting(
        self, account_id: str, amount: int, start: int, count: int
    ) -> int | None:
        row = (
            await self._conn.execute(
                _HOLD_ON_FREE_SHARD,
                {
                    "p_account": account_id,
                    "p_amount": amount,
                    "p_offset": count - start,
                    "p_count": count,
                },
            )
        ).first()
        return None if row is None else int(row.shard)

    async def _hold_after_waiting(self, account_id: str, amount: int, start: int) -> int | None:
        """Every shard that covers the amount is locked by another payout: queue on one.

        PostgreSQL keeps the row lock of an UPDATE that waited and then found the row no
        longer matching. Held into the slow path, such a lock would be taken out of shard
        order and could deadlock with another slow path; the savepoint's rollback lets it
        go, so the slow path starts holding no shard."""
        savepoint = await self._conn.begin_nested()
        result = await self._conn.execute(
            _HOLD_ON_SHARD, {"p_account": account_id, "p_shard": start, "p_amount": amount}
        )
        if result.rowcount:
            await savepoint.commit()
            return start
        await savepoint.rollback()
        return None

    async def _add_hold(
        self, hold_id: str, account_id: str, shard: int, amount: int, currency: str, at: datetime
    ) -> None:
        await self._conn.execute(
            _INSERT_HOLDS,
            {
                "id": hold_id,
                "account_id": account_id,
                "shard": shard,
                "amount": amount,
                "currency": currency,
                "status": "active",
                "created_at": at,
                "closed_at": None,
            },
        )

    async def close_hold(self, hold_id: str, *, post: bool, at: datetime) -> int | None:
        """Post (the money left) or void (it stays) an active hold; None if not active."""
        status = "posted" if post else "voided"
        row = (
            await self._conn.execute(_CLOSE_HOLD, {"p_id": hold_id, "p_status": status, "p_at": at})
        ).first()
        if row is None:
            return None
        amount = int(row.amount)
        self._move(row.account_id, int(row.shard), -amount if post else 0, -amount)
        return amount

    async def credit(
        self, account_id: str, amount: int, *, spread: bool, shard_count: int | None = None
    ) -> None:
        """Add to a credit-normal balance: spread over all shards, or onto one."""
        count = shard_count or await self._shard_count(account_id)
        if spread:
            share, remainder = divmod(amount, count)
            for shard in range(count):
                self._move(account_id, shard, share + (remainder if shard == 0 else 0), 0)
            return
        self._move(account_id, random.randrange(count), amount, 0)

    async def post(self, journal: Journal, at: datetime) -> None:
        await self._conn.execute(
            _INSERT_LEDGER_JOURNALS,
            {
                "id": journal.id,
                "kind": journal.kind,
                "reference": journal.reference,
                "created_at": at,
            },
        )
        await self._conn.execute(
            _INSERT_LEDGER_ENTRIES,
            [
                {
                    "journal_id": journal.id,
                    "account_id": p.account,
                    "amount": p.amount,
                    "currency": p.currency,
                    "created_at": at,
                }
                for p in journal.postings
            ],
        )

    async def balance(self, account_id: str) -> tuple[int, int]:
        await self.flush_at_commit()
        row = (
            await self._conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(balance_shards.c.posted), 0),
                    sa.func.coalesce(sa.func.sum(balance_shards.c.held), 0),
                ).where(balance_shards.c.account_id == account_id)
            )
        ).one()
        return int(row[0]), int(row[1])

    async def movements(
        self, account_id: str, after: datetime, until: datetime
    ) -> list[tuple[str, str, str, int, str, datetime]]:
        """Every entry on ``account_id`` in ``(after, until]``, oldest first:
        ``(journal id, journal kind, reference, amount, currency, at)``, amount as posted
        (+ debit, - credit)."""
        await self.flush_at_commit()
        rows = await self._conn.execute(
            sa.select(
                ledger_journals.c.id,
                ledger_journals.c.kind,
                ledger_journals.c.reference,
                ledger_entries.c.amount,
                ledger_entries.c.currency,
                ledger_entries.c.created_at,
            )
            .join(ledger_journals, ledger_journals.c.id == ledger_entries.c.journal_id)
            .where(
                ledger_entries.c.account_id == account_id,
                ledger_entries.c.created_at > after,
                ledger_entries.c.created_at <= until,
            )
            .order_by(ledger_entries.c.created_at, ledger_entries.c.id)
        )
        return [(r.id, r.kind, r.reference, int(r.amount), r.currency, r.created_at) for r in rows]

    async def accounts_moved(self, prefix: str, after: datetime, until: datetime) -> list[str]:
        """The accounts named ``prefix…`` with an entry in ``(after, until]``."""
        await self.flush_at_commit()
        rows = await self._conn.execute(
            sa.select(ledger_entries.c.account_id)
            .where(
                ledger_entries.c.account_id.startswith(prefix, autoescape=True),
                ledger_entries.c.created_at > after,
                ledger_entries.c.created_at <= until,
            )
            .distinct()
            .order_by(ledger_entries.c.account_id)
        )
        return [r[0] for r in rows]

    async def has_account(self, account_id: str) -> bool:
        found = await self._conn.execute(
            sa.select(ledger_accounts.c.id).where(ledger_accounts.c.id == account_id)
        )
        return found.first() is not None

    async def posted_total(self, account_id: str, until: datetime) -> int:
        """The sum of every entry on ``account_id`` up to ``until`` (+ debit, - credit)."""
        await self.flush_at_commit()
        total = (
            await self._conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(ledger_entries.c.amount), 0)).where(
                    ledger_entries.c.account_id == account_id,
                    ledger_entries.c.created_at <= until,
                )
            )
        ).scalar_one()
        return int(total)

    async def check(self) -> list[str]:
        """Recompute from the immutable entries and compare with the running balances."""
        await self.flush_at_commit()
        problems: list[str] = []
        unbalanced = (
            await self._conn.execute(
                sa.select(ledger_entries.c.journal_id, ledger_entries.c.currency)
                .group_by(ledger_entries.c.journal_id, ledger_entries.c.currency)
                .having(sa.func.sum(ledger_entries.c.amount) != 0)
            )
        ).all()
        problems += [f"journal {r[0]} does not sum to zero in {r[1]}" for r in unbalanced]
        total = (
            await self._conn.execute(
                sa.select(ledger_entries.c.currency, sa.func.sum(ledger_entries.c.amount)).group_by(
                    ledger_entries.c.currency
                )
            )
        ).all()
        problems += [f"the ledger sums to {r[1]} {r[0]}, not zero" for r in total if r[1]]
        accounts = (
            await self._conn.execute(
                sa.select(ledger_accounts.c.id).where(ledger_accounts.c.kind == "liability")
            )
        ).all()
        for (account_id,) in accounts:
            entries = (
                await self._conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(ledger_entries.c.amount), 0)).where(
                        ledger_entries.c.account_id == account_id
                    )
                )
            ).scalar_one()
            active = (
                await self._conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(holds.c.amount), 0)).where(
                        holds.c.account_id == account_id, holds.c.status == "active"
                    )
                )
            ).scalar_one()
            posted, held = await self.balance(account_id)
            if -int(entries) != posted:
                problems.append(f"{account_id}: entries say {-int(entries)}, balance says {posted}")
            if int(active) != held:
                problems.append(f"{account_id}: active holds {active}, balance holds {held}")
        return problems


class SqlRailEventRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def remember(
        self,
        event_id: str,
        end_to_end_id: str,
        status: str,
        sequence: int,
        outcome: str,
        at: datetime,
    ) -> bool:
        """False when the event was seen before (a duplicate callback)."""
        result = await self._conn.execute(
            insert_if_absent(self._conn, rail_events),
            {
                "event_id": event_id,
                "end_to_end_id": end_to_end_id,
                "status": status,
                "sequence": sequence,
                "outcome": outcome,
                "received_at": at,
            },
        )
        return bool(result.rowcount)

    async def reject(
        self, rail: str, reason: str, source_ip: str | None, body_sha256: str, at: datetime
    ) -> None:
        await self._conn.execute(
            rejected_callbacks.insert(),
            {
                "rail": rail,
                "reason": reason[:200],
                "source_ip": source_ip,
                "body_sha256": body_sha256,
                "received_at": at,
            },
        )
