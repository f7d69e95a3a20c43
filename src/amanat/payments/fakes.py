"""In-memory fakes of payments' ports, and a scriptable rail, for fast service tests.

Why this exists: :class:`~amanat.payments.service.PaymentService` and the rail jobs are
tested against these in milliseconds (tests/unit/payments/); the SQL stores keep the same
promises and are tested against a database (tests/integration/payments/). Each fake does
what its store promises a service: optimistic versions, holds that cover or refuse with
:class:`InsufficientFunds` and change nothing, balanced journals, duplicate rail events
seen once. The ledger keeps one balance slice per account whatever its shard count (the
service never depends on which slice holds what). See amanat.platform.fakes for the unit
of work and its rollback.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from amanat.kernel.clock import Clock, FrozenClock
from amanat.kernel.pagination import Page
from amanat.payments.domain.ledger import InsufficientFunds, Journal, Shard
from amanat.payments.domain.payments import TERMINAL, Payment, PaymentStatus, PaymentType
from amanat.payments.ports import (
    LedgerRepository,
    PartnerLimits,
    PaymentRepository,
    PaymentsTx,
    RailEventRepository,
)
from amanat.payments.rail import (
    Acceptance,
    InvalidCallbackSignature,
    RailAdapter,
    RailCallback,
    RailError,
    RailStatus,
    Submission,
)
from amanat.payments.service import PaymentsConfig, PaymentService
from amanat.platform.fakes import (
    FakeDatabase,
    FakeFieldEncryptor,
    FakeProtectionTx,
    FakeTransactions,
    InMemoryOutbox,
    InMemoryStore,
    protection_database,
)
from amanat.platform.protection.service import DataProtectionService

# -- payments ---------------------------------------------------------------------------


class InMemoryPayments(InMemoryStore):
    """Payments and their recorded transitions. ``stranded`` looks at the outbox."""

    _links = ("_outbox",)

    def __init__(self, outbox: InMemoryOutbox) -> None:
        self._outbox = outbox
        self.payments: dict[str, Payment] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}

    def _record(self, payment: Payment, from_status: PaymentStatus | None, cause: str) -> None:
        self.history.setdefault(payment.id, []).append(
            {
                "from": from_status.value if from_status else None,
                "to": payment.status.value,
                "version": payment.version,
                "cause": cause[:200],
                "at": payment.updated_at,
            }
        )

    async def add(
        self, payment: Payment, *, client_id: str | None, parent_id: str | None = None
    ) -> None:
        if payment.id in self.payments:
            raise ValueError(f"payment {payment.id} exists")
        # What the SQL row keeps of a new payment, read back as the store reads it.
        stored = replace(
            payment,
            metadata=json.loads(json.dumps(payment.metadata)),
            failure=None,
            rail_reference=None,
            rail_sequence=0,
            refunded_amount=0,
            parent_id=parent_id,
            client_id=client_id,
            submitted_at=None,
        )
        self.payments[payment.id] = stored
        self._record(stored, None, "created")

    async def add_many(self, created: list[tuple[Payment, str | None, str, datetime]]) -> None:
        for payment, client_id, kind, run_at in created:
            await self.add(payment, client_id=client_id)
            await self._outbox.enqueue(kind, payment.id, {}, run_at)

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        return self.payments.get(payment_id)

    async def save_transition(self, before: Payment, after: Payment, cause: str) -> bool:
        stored = self.payments.get(after.id)
        if stored is None or stored.version != before.version:
            return False
        self.payments[after.id] = replace(
            stored,
            status=after.status,
            version=after.version,
            updated_at=after.updated_at,
            failure=after.failure,
            rail_reference=after.rail_reference,
            rail_sequence=after.rail_sequence,
        )
        self._record(self.payments[after.id], before.status, cause)
        return True

    async def transitions(self, payment_id: str) -> list[dict[str, Any]]:
        return [dict(t) for t in self.history.get(payment_id, [])]

    async def mark_submitted(self, payment_id: str, at: datetime) -> bool:
        stored = self.payments.get(payment_id)
        if (
            stored is None
            or stored.status is not PaymentStatus.PENDING
            or stored.submitted_at is not None
        ):
            return False
        self.payments[payment_id] = replace(stored, submitted_at=at)
        return True

    def _refunded_change(self, payment_id: str, delta: int, at: datetime, cause: str) -> None:
        stored = self.payments[payment_id]
        changed = replace(
            stored,
            refunded_amount=stored.refunded_amount + delta,
            version=stored.version + 1,
            updated_at=at,
        )
        self.payments[payment_id] = changed
        self._record(changed, changed.status, cause)

    async def add_refunded(
        self, payment_id: str, amount: int, at: datetime, *, reserved: int = 0
    ) -> bool:
        stored = self.payments.get(payment_id)
        if (
            stored is None
            or stored.status is not PaymentStatus.SUCCEEDED
            or stored.amount.amount - stored.refunded_amount - reserved < amount
        ):
            return False
        self._refunded_change(payment_id, amount, at, f"refund of {amount} made")
        return True

    async def return_refunded(self, payment_id: str, amount: int, at: datetime) -> None:
        if payment_id in self.payments:
            self._refunded_change(payment_id, -amount, at, f"failed refund of {amount} returned")

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
        found = sorted(
            (
                p
                for p in self.payments.values()
                if p.partner_id == partner_id
                and p.type.value in types
                and (before is None or (p.created_at, p.id) < before)
                and (not status or p.status.value == status)
                and (created_gte is None or p.created_at >= created_gte)
                and (created_lt is None or p.created_at < created_lt)
                and (not parent_id or p.parent_id == parent_id)
            ),
            key=lambda p: (p.created_at, p.id),
            reverse=True,
        )
        return Page(items=found[:limit], has_more=len(found) > limit)

    async def in_flight_incoming(self, partner_id: str) -> int:
        return sum(
            p.amount.amount
            for p in self.payments.values()
            if p.partner_id == partner_id
            and p.type is PaymentType.COLLECTION
            and p.status in (PaymentStatus.PENDING, PaymentStatus.AWAITING_APPROVAL)
        )

    async def unresolved(self, older_than: datetime) -> int:
        return sum(
            1
            for p in self.payments.values()
            if p.status in (PaymentStatus.PROCESSING, PaymentStatus.AWAITING_APPROVAL)
            and p.updated_at < older_than
        )

    async def stranded(self, older_than: datetime, limit: int) -> tuple[Payment, ...]:
        with_job = {j.subject_id for j in self._outbox.pending()}
        found = sorted(
            (
                p
                for p in self.payments.values()
                if p.status not in TERMINAL and p.updated_at < older_than and p.id not in with_job
            ),
            key=lambda p: p.updated_at,
        )
        return tuple(found[:limit])


# -- the ledger -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FakeHold:
    account_id: str
    amount: int
    currency: str
    status: str  # active | posted | voided


@dataclass(slots=True)
class FakeAccount:
    kind: str
    currency: str
    shards: int
    posted: int = 0  # the credit-normal running balance (liabilities, equity)
    held: int = 0


@dataclass
class _AllShards:
    shards: dict[str, list[Shard]]
    complete: bool = True

    async def wait_for_all(self) -> dict[str, list[Shard]]:
        return self.shards


class InMemoryLedger(InMemoryStore):
    """Accounts with a running balance and holds, journals and their entries."""

    def __init__(self) -> None:
        self.accounts: dict[str, FakeAccount] = {}
        self.holds: dict[str, FakeHold] = {}
        self.journals: dict[str, Journal] = {}
        self.posted_at: dict[str, datetime] = {}

    def _account(self, account_id: str) -> FakeAccount:
        found = self.accounts.get(account_id)
        if found is None:
            # SQL would update no row (or break a foreign key): a service bug either way.
            raise LookupError(f"no ledger account {account_id!r}")
        return found

    def entries_total(self, account_id: str) -> int:
        return sum(
            p.amount for j in self.journals.values() for p in j.postings if p.account == account_id
        )

    async def ensure_account(
        self, account_id: str, kind: str, currency: str, shards: int, at: datetime
    ) -> tuple[int, bool]:
        found = self.accounts.get(account_id)
        if found is not None:
            return found.shards, False
        self.accounts[account_id] = FakeAccount(kind, currency, shards)
        return shards, True

    async def shard_counts(self, account_ids: Sequence[str]) -> dict[str, int]:
        return {a: self.accounts[a].shards for a in account_ids if a in self.accounts}

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
        if hold_id in self.holds:
            raise ValueError(f"hold {hold_id} exists")
        account = self.accounts.get(account_id)
        if account is None or account.posted - account.held < amount:
            raise InsufficientFunds("The available balance does not cover this amount.")
        account.held += amount
        self.holds[hold_id] = FakeHold(account_id, amount, currency, "active")
        return 0

    async def lock_shards(self, account_ids: list[str]) -> dict[str, list[Shard]]:
        """One shard per account: the fake keeps a single running balance."""
        return {
            account_id: [Shard(0, self.accounts[account_id].posted, self.accounts[account_id].held)]
            for account_id in sorted(set(account_ids))
            if account_id in self.accounts
        }

    async def lock_free_shards(self, shard_counts: dict[str, int]) -> _AllShards:
        """Nothing else runs at the same time here: every shard is free."""
        return _AllShards(await self.lock_shards(list(shard_counts)))

    async def hold_many(
        self,
        holds_: list[tuple[str, str, int, int, str, datetime]],
        shards: list[tuple[str, Shard]],
    ) -> None:
        for hold_id, account_id, _shard, amount, currency, _at in holds_:
            if hold_id in self.holds:
                raise ValueError(f"hold {hold_id} exists")
            self.holds[hold_id] = FakeHold(account_id, amount, currency, "active")
        for account_id, shard in shards:
            account = self._account(account_id)
            account.posted, account.held = shard.posted, shard.held

    async def close_hold(self, hold_id: str, *, post: bool, at: datetime) -> int | None:
        hold = self.holds.get(hold_id)
        if hold is None or hold.status != "active":
            return None
        account = self._account(hold.account_id)
        account.held -= hold.amount
        if post:
            account.posted -= hold.amount
        self.holds[hold_id] = replace(hold, status="posted" if post else "voided")
        return hold.amount

    async def credit(
        self, account_id: str, amount: int, *, spread: bool, shard_count: int | None = None
    ) -> None:
        self._account(account_id).posted += amount

    async def post(self, journal: Journal, at: datetime) -> None:
        if journal.id in self.journals:
            raise ValueError(f"journal {journal.id} exists")
        for posting in journal.postings:
            self._account(posting.account)
        self.journals[journal.id] = journal
        self.posted_at[journal.id] = at

    async def movements(
        self, account_id: str, after: datetime, until: datetime
    ) -> list[tuple[str, str, str, int, str, datetime]]:
        return [
            (j.id, j.kind, j.reference, p.amount, p.currency, self.posted_at[j.id])
            for j in self.journals.values()
            if after < self.posted_at[j.id] <= until
            for p in j.postings
            if p.account == account_id
        ]

    async def has_account(self, account_id: str) -> bool:
        return account_id in self.accounts

    async def posted_total(self, account_id: str, until: datetime) -> int:
        return sum(
            p.amount
            for j in self.journals.values()
            if self.posted_at[j.id] <= until
            for p in j.postings
            if p.account == account_id
        )

    async def accounts_moved(self, prefix: str, after: datetime, until: datetime) -> list[str]:
        return sorted(
            {
                p.account
                for j in self.journals.values()
                if after < self.posted_at[j.id] <= until
                for p in j.postings
                if p.account.startswith(prefix)
            }
        )

    async def balance(self, account_id: str) -> tuple[int, int]:
        found = self.accounts.get(account_id)
        return (found.posted, found.held) if found else (0, 0)

    async def check(self) -> list[str]:
        """The SQL store's check: journals and the ledger sum to zero, and every liability's
        running balance and holds agree with its entries and active holds."""
        problems: list[str] = []
        totals: dict[str, int] = defaultdict(int)
        for journal in self.journals.values():
            sums: dict[str, int] = defaultdict(int)
            for p in journal.postings:
                sums[p.currency] += p.amount
                totals[p.currency] += p.amount
            problems += [
                f"journal {journal.id} does not sum to zero in {c}" for c, t in sums.items() if t
            ]
        problems += [f"the ledger sums to {t} {c}, not zero" for c, t in totals.items() if t]
        for account_id, account in self.accounts.items():
            if account.kind != "liability":
                continue
            entries = self.entries_total(account_id)
            active = sum(
                h.amount
                for h in self.holds.values()
                if h.account_id == account_id and h.status == "active"
            )
            if -entries != account.posted:
                problems.append(
                    f"{account_id}: entries say {-entries}, balance says {account.posted}"
                )
            if active != account.held:
                problems.append(
                    f"{account_id}: active holds {active}, balance holds {account.held}"
                )
        return problems


# -- rail events ------------------------------------------------------------------------


class InMemoryRailEvents(InMemoryStore):
    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.rejected: list[dict[str, Any]] = []

    async def remember(
        self,
        event_id: str,
        end_to_end_id: str,
        status: str,
        sequence: int,
        outcome: str,
        at: datetime,
    ) -> bool:
        if event_id in self.events:
            return False
        self.events[event_id] = {
            "end_to_end_id": end_to_end_id,
            "status": status,
            "sequence": sequence,
            "outcome": outcome,
            "received_at": at,
        }
        return True

    async def reject(
        self, rail: str, reason: str, source_ip: str | None, body_sha256: str, at: datetime
    ) -> None:
        self.rejected.append(
            {
                "rail": rail,
                "reason": reason[:200],
                "source_ip": source_ip,
                "body_sha256": body_sha256,
                "received_at": at,
            }
        )


# -- limits -----------------------------------------------------------------------------


class FakePartnerLimits:
    """Per-partner limits by id; a partner not named has none (the default applies)."""

    def __init__(self, limits: Mapping[str, int | None] | None = None) -> None:
        self.limits: dict[str, int | None] = dict(limits or {})

    async def per_transaction_limit(self, partner_id: str) -> int | None:
        return self.limits.get(partner_id)


# -- the rail ---------------------------------------------------------------------------

ACCEPT = "accept"
"""A scripted outcome of :meth:`FakeRail.submit`: take the transfer (the default)."""


@dataclass(slots=True)
class FakeTransfer:
    submission: Submission
    rail_reference: str
    status: str = "accepted"
    sequence: int = 1
    reason_code: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class FakeRail:
    """A scriptable rail, idempotent on the end-to-end id like the real one.

    ``submit`` takes each transfer (status ``accepted``, sequence 1) unless an outcome
    was scripted with :meth:`script_submit` (a :class:`RailError` to raise, or
    :data:`ACCEPT`), consumed one per call. ``status`` answers what the rail holds (None
    for a transfer it never got or :meth:`forget`-ed), or raises what
    :meth:`script_status` queued. :meth:`move` moves a transfer on (settled, rejected...).
    """

    clock: Clock = field(default_factory=FrozenClock)
    transfers: dict[str, FakeTransfer] = field(default_factory=dict)
    submissions: list[Submission] = field(default_factory=list)
    status_calls: list[str] = field(default_factory=list)
    # The title fetch's directory: identifier -> holder's name.
    titles: dict[str, str] = field(default_factory=dict)
    _submit_script: list[RailError | str] = field(default_factory=list)
    _status_script: list[RailError] = field(default_factory=list)

    def script_submit(self, *outcomes: RailError | str) -> None:
        self._submit_script.extend(outcomes)

    def script_status(self, *failures: RailError) -> None:
        self._status_script.extend(failures)

    def move(
        self,
        end_to_end_id: str,
        status: str,
        *,
        reason_code: str | None = None,
        reason: str | None = None,
    ) -> RailStatus:
        transfer = self.transfers[end_to_end_id]
        transfer.status = status
        transfer.sequence += 1
        transfer.reason_code = reason_code
        transfer.reason = reason
        return self._status_of(transfer)

    def forget(self, end_to_end_id: str) -> None:
        self.transfers.pop(end_to_end_id, None)

    def _status_of(self, transfer: FakeTransfer) -> RailStatus:
        return RailStatus(
            end_to_end_id=transfer.submission.end_to_end_id,
            status=transfer.status,
            reason_code=transfer.reason_code,
            reason=transfer.reason,
            sequence=transfer.sequence,
            updated_at=self.clock.now(),
            kind=transfer.submission.kind,
        )

    async def submit(self, sub: Submission) -> Acceptance:
        self.submissions.append(sub)
        outcome = self._submit_script.pop(0) if self._submit_script else ACCEPT
        if isinstance(outcome, RailError):
            raise outcome
        known = self.transfers.get(sub.end_to_end_id)
        if known is None:
            known = FakeTransfer(sub, f"RAAST{len(self.submissions):08d}")
            self.transfers[sub.end_to_end_id] = known
        return Acceptance(sub.end_to_end_id, known.rail_reference)

    async def status(self, end_to_end_id: str) -> RailStatus | None:
        self.status_calls.append(end_to_end_id)
        if self._status_script:
            raise self._status_script.pop(0)
        transfer = self.transfers.get(end_to_end_id)
        return None if transfer is None else self._status_of(transfer)

    async def account_title(self, *, iban: str | None, raast_id: str | None) -> str | None:
        return self.titles.get(iban or raast_id or "")

    def verify_callback(self, headers: Mapping[str, str], body: bytes) -> RailCallback:
        """Accepts a JSON body (``event_id``, ``end_to_end_id``, ``status``, ``sequence``,
        optional ``reason_code``/``reason``) when ``x-fake-signature`` is ``valid``."""
        if headers.get("x-fake-signature") != "valid":
            raise InvalidCallbackSignature("bad fake signature", reason="mismatch")
        data = json.loads(body)
        return RailCallback(
            event_id=data["event_id"],
            end_to_end_id=data["end_to_end_id"],
            status=data["status"],
            reason_code=data.get("reason_code"),
            reason=data.get("reason"),
            sequence=int(data["sequence"]),
            occurred_at=self.clock.now(),
            raw=data,
        )


# -- the transaction and a service over fakes ---------------------------------------------


class FakePaymentsTx(FakeProtectionTx):
    """What ``PaymentsTx`` names, over a database from :func:`payments_database`."""

    @property
    def payments(self) -> InMemoryPayments:
        return self.database.store("payments", InMemoryPayments)

    @property
    def ledger(self) -> InMemoryLedger:
        return self.database.store("ledger", InMemoryLedger)

    @property
    def rail_events(self) -> InMemoryRailEvents:
        return self.database.store("rail_events", InMemoryRailEvents)


def payments_database() -> FakeDatabase:
    database = protection_database(ledger=InMemoryLedger(), rail_events=InMemoryRailEvents())
    database.add("payments", InMemoryPayments(database.outbox))
    return database


@dataclass(slots=True)
class FakePayments:
    """A :class:`PaymentService` over fakes, with everything a test looks at."""

    clock: FrozenClock
    database: FakeDatabase
    transactions: FakeTransactions[FakePaymentsTx]
    cipher: FakeFieldEncryptor
    protection: DataProtectionService
    limits: FakePartnerLimits
    service: PaymentService

    @property
    def payments(self) -> InMemoryPayments:
        return self.database.store("payments", InMemoryPayments)

    @property
    def ledger(self) -> InMemoryLedger:
        return self.database.store("ledger", InMemoryLedger)

    @property
    def outbox(self) -> InMemoryOutbox:
        return self.database.outbox


def fake_payments(
    *,
    clock: FrozenClock | None = None,
    config: PaymentsConfig | None = None,
    limits: Mapping[str, int | None] | None = None,
) -> FakePayments:
    clock = clock or FrozenClock()
    database = payments_database()
    transactions = FakeTransactions(database, FakePaymentsTx)
    cipher = FakeFieldEncryptor()
    protection = DataProtectionService(transactions, clock, cipher)
    partner_limits = FakePartnerLimits(limits)
    service = PaymentService(
        transactions, clock, protection, config or PaymentsConfig(), partner_limits
    )
    return FakePayments(clock, database, transactions, cipher, protection, partner_limits, service)


# mypy checks each fake against its Protocol here.
_payments: type[PaymentRepository] = InMemoryPayments
_ledger: type[LedgerRepository] = InMemoryLedger
_rail_events: type[RailEventRepository] = InMemoryRailEvents
_limits: type[PartnerLimits] = FakePartnerLimits
_rail: type[RailAdapter] = FakeRail
_tx: type[PaymentsTx] = FakePaymentsTx
