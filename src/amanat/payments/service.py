"""The money path's use cases: payouts, collections, refunds, balance, rail outcomes.

Every change happens in one transaction with its ledger postings, holds, outbox job and
audit record. Nothing talks to the rail here: submissions are outbox jobs that the worker
runs (see payments/jobs.py and platform/jobs/runtime.py), and rail outcomes come back through
:meth:`PaymentService.apply_rail_status`, from callbacks or status enquiries alike.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from amanat.auth.domain import Caller
from amanat.kernel.clock import Clock, format_timestamp
from amanat.kernel.errors import Conflict, DomainError, InvalidInput, NotFound
from amanat.kernel.ids import new_id
from amanat.kernel.metadata import check_metadata
from amanat.kernel.money import Money
from amanat.kernel.pagination import Page
from amanat.kernel.pakistan import parse_iban, parse_raast_id
from amanat.payments import views
from amanat.payments.domain import ledger
from amanat.payments.domain.events import BalanceToppedUp, PaymentChanged, payment_event_type
from amanat.payments.domain.ledger import InsufficientFunds
from amanat.payments.domain.payments import (
    AccountScheme,
    Failure,
    Party,
    Payment,
    PaymentStatus,
    PaymentType,
    apply_rail_status,
)
from amanat.payments.errors import (
    LimitExceeded,
    PayeeCheckRequired,
    PaymentNotCancelable,
    RefundExceedsRemaining,
    RefundNotSupported,
)
from amanat.payments.ports import DisputeClaims, PartnerLimits, PayeeCheckRecords, PaymentsTx
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.crypto.field_cipher import FieldContext
from amanat.platform.db.ports import TransactionFactory
from amanat.platform.protection.ports import HolderLookup
from amanat.platform.protection.service import DataProtectionService

PAYMENT_UPDATED = "payment.updated"
# Metadata set by amanat only: a payout paid with a bank customer's money (open banking).
CUSTOMER_FUNDING = "bank_customer_funding"
RESERVED_METADATA_PREFIXES = ("obie_", CUSTOMER_FUNDING)

SUBMIT = "rail.submit"
ENQUIRE = "rail.enquire"


def _refuse_reserved(metadata: dict[str, Any]) -> None:
    reserved = [
        k for k in metadata if isinstance(k, str) and k.startswith(RESERVED_METADATA_PREFIXES)
    ]
    if reserved:
        raise InvalidInput(
            f"metadata keys starting with {' or '.join(RESERVED_METADATA_PREFIXES)} are "
            "amanat's own.",
            code="validation_error",
            reason="metadata_reserved_key",
        )


@dataclass(frozen=True, slots=True)
class PaymentsConfig:
    default_limit: int = 100_000_000  # PKR 1,000,000.00 per transaction
    balance_shards: int = 8
    collection_ttl: timedelta = timedelta(minutes=15)
    enquire_after: timedelta = timedelta(seconds=30)
    sandbox: bool = True
    # The sandbox test value (docs/sandbox-rail.md, "held_pending"): a payment whose amount
    # in paisa ends in these two digits is sent to the rail only after ``sandbox_hold``.
    sandbox_hold_suffix: int = 11
    sandbox_hold: timedelta = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class AccountIn:
    """Where money goes to or comes from, as the partner gave it."""

    iban: str | None
    raast_id: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class PayoutRequest:
    """A payout checked as far as it can be without the database (amount, account,
    metadata, limit), waiting to be created in a batch (payments/batching.py)."""

    caller: Caller
    payment_id: str
    amount: int
    currency: str
    creditor: AccountIn
    scheme: AccountScheme
    account_value: str
    reference: str | None
    description: str | None
    metadata: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PlannedPayout:
    """A payout of a batch as it will be written if its merchant's balance covers it
    (:meth:`PaymentService.plan_payouts`). ``new_holder``: its creditor's customer record
    does not exist yet; it is created, under the payment's ``counterparty.subject_id``,
    with the first of the batch's payouts to that person that is written."""

    request: PayoutRequest
    payment: Payment
    new_holder: bool


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    available: int
    held: int
    pending: int
    posted: int


@dataclass(frozen=True, slots=True)
class LedgerMovement:
    """One journal's effect on a partner's balance: ``amount`` > 0 added to it."""

    journal_id: str
    kind: str
    reference: str
    amount: int
    currency: str
    at: datetime


class PaymentService:
    def __init__(
        self,
        transactions: TransactionFactory[PaymentsTx],
        clock: Clock,
        protection: DataProtectionService,
        config: PaymentsConfig,
        limits: PartnerLimits,
        payee_checks: PayeeCheckRecords | None = None,
        dispute_claims: DisputeClaims | None = None,
    ) -> None:
        self._tx = transactions
        self._dispute_claims = dispute_claims
        self._clock = clock
        self._protection = protection
        self.config = config
        self._limits = limits
        self._payee_checks = payee_checks
        self._accounts: dict[str, int] = {}

    # -- creating -----------------------------------------------------------------------

    async def _party(self, caller: Caller, account: AccountIn) -> Party:
        field, value = _scheme_of(account)
        found = await self._protection.find_holder(
            field, value, account.name, partner_id=caller.partner_id
        )
        record = (
            found
            if found is not None
            else await self._protection.create_subject(
                caller.actor,
                caller.partner_id,
                name=account.name,
                iban=account.iban,
                raast_id=account.raast_id,
            )
        )
        return Party(
            subject_id=record.id,
            bank_code=record.bank_code,
            iban_last4=record.iban_last4,
            kind=field,
        )

    async def _check_payee(self, caller: Caller, account: AccountIn) -> None:
        """For a partner that requires it, the account must have had a payee check with
        a match or close match lately (``POST /v1/payee_checks``)."""
        partner = caller.partner
        if partner is None or not partner.require_payee_check or self._payee_checks is None:
            return
        scheme, value = _scheme_of(account)
        field = "iban" if scheme is AccountScheme.IBAN else "raast_id"
        if not await self._payee_checks.confirmed_recently(partner.id, field, value):
            raise PayeeCheckRequired(
                "Your payouts need a payee check of this account first: POST "
                "/v1/payee_checks with its name, and pay after a match or close match "
                "(it counts for 24 hours)."
            )

    async def check_limit(self, caller: Caller, amount: int) -> None:
        """Raise :class:`LimitExceeded` if ``amount`` is over the caller's per-transaction
        limit (for a use case that promises a payment before it makes one)."""
        await self._check_limit(caller, amount)

    async def _check_limit(self, caller: Caller, amount: int) -> None:
        known = caller.partner
        if known is not None and known.id == caller.partner_id:
            configured = known.per_transaction_limit
        else:
            configured = await self._limits.per_transaction_limit(caller.partner_id)
        limit = configured or self.config.default_limit
        if amount > limit:
            raise LimitExceeded(
                f"The amount exceeds your per-transaction limit of {Money(limit, 'PKR')}.",
                reason="per_transaction_limit",
            )

    async def _ensure(
        self, tx: PaymentsTx, account: str, kind: str, currency: str, shards: int
    ) -> int:
        """The account's shard count, creating the account on first use. Accounts are never
        deleted, so one seen committed is remembered and costs no query again; one created
        by this transaction is not, as the transaction may still roll back."""
        known = self._accounts.get(account)
        if known is not None:
            return known
        count, created = await tx.ledger.ensure_account(
            account, kind, currency, shards, self._clock.now()
        )
        if not created:
            self._accounts[account] = count
        return count

    async def recall_accounts(self, requests: Iterable[PayoutRequest]) -> None:
        """Remember, in one read, the shard counts of the merchants' accounts of these
        payouts that exist and are not remembered yet: a batch of payouts of many merchants
        new to this process (its first minutes after a start) would otherwise look each one
        up in turn inside its transaction. Call it outside any transaction (the batcher
        does, before it opens the batch's): its read is then a transaction of its own, so
        what it remembers is committed and cannot be rolled back."""
        wanted = (ledger.merchant_account(r.caller.partner_id) for r in requests)
        unknown = [a for a in dict.fromkeys(wanted) if a not in self._accounts]
        if not unknown:
            return
        async with self._tx.read() as tx:
            self._accounts.update(await tx.ledger.shard_counts(unknown))

    async def _merchant_account(
        self, tx: PaymentsTx, partner_id: str, currency: str
    ) -> tuple[str, int]:
        account = ledger.merchant_account(partner_id)
        shards = await self._ensure(
            tx, account, ledger.AccountKind.LIABILITY.value, currency, self.config.balance_shards
        )
        return account, shards

    async def _new(
        self,
        caller: Caller,
        kind: PaymentType,
        amount: int,
        currency: str,
        party: Party,
        *,
        reference: str | None,
        description: str | None,
        metadata: dict[str, Any],
        expires_at: datetime | None = None,
    ) -> Payment:
        metadata = check_metadata(metadata)
        payment_id = new_id("refund" if kind is PaymentType.REFUND else "payment")
        sealed = (
            await self._protection.seal(
                description, table="payments", column="description", row_id=payment_id
            )
            if description
            else None
        )
        return _payment(
            payment_id,
            caller.partner_id,
            kind,
            Money(amount, currency),
            party,
            reference=reference,
            sealed_description=sealed,
            metadata=metadata,
            created_at=self._clock.now(),
            expires_at=expires_at,
        )

    async def create_payout(
        self,
        caller: Caller,
        *,
        amount: int,
        currency: str,
        creditor: AccountIn,
        reference: str | None,
        description: str | None,
        metadata: dict[str, Any],
        funded_by: str | None = None,
    ) -> Payment:
        """``funded_by``: the funding id of :meth:`fund_from_bank_customer` when a bank
        customer's money pays for it (open banking); such a payout cannot be canceled by
        the partner, and if it ends unpaid its amount leaves the partner's balance again,
        in that same transaction, for the customer."""
        _refuse_reserved(metadata)
        if funded_by is not None:
            metadata = {**metadata, CUSTOMER_FUNDING: funded_by}
        return await self._open(
            caller,
            PaymentType.PAYOUT,
            amount,
            currency,
            creditor,
            reference=reference,
            description=description,
            metadata=metadata,
            expires_at=None,
        )

    async def create_collection(
        self,
        caller: Caller,
        *,
        amount: int,
        currency: str,
        debtor: AccountIn,
        reference: str | None,
        description: str | None,
        metadata: dict[str, Any],
        expires_in: timedelta | None,
    ) -> Payment:
        expires_at = self._clock.now() + (expires_in or self.config.collection_ttl)
        return await self._open(
            caller,
            PaymentType.COLLECTION,
            amount,
            currency,
            debtor,
            reference=reference,
            description=description,
            metadata=metadata,
            expires_at=expires_at,
        )

    async def _open(
        self,
        caller: Caller,
        kind: PaymentType,
        amount: int,
        currency: str,
        account: AccountIn,
        *,
        reference: str | None,
        description: str | None,
        metadata: dict[str, Any],
        expires_at: datetime | None,
    ) -> Payment:
        """A new payout or collection: checked, (for payouts) funds held, queued for the
        rail and audited, all in one transaction."""
        if not Money(amount, currency).is_positive:
            raise InvalidInput("amount must be positive.", code="invalid_amount")
        if kind is PaymentType.PAYOUT:
            await self._check_payee(caller, account)
        party = await self._party(caller, account)
        payment = await self._new(
            caller,
            kind,
            amount,
            currency,
            party,
            reference=reference,
            description=description,
            metadata=metadata,
            expires_at=expires_at,
        )
        async with self._tx.write() as tx:
            await self._check_limit(caller, amount)
            merchant, shards = await self._merchant_account(tx, caller.partner_id, currency)
            if kind is PaymentType.PAYOUT:
                await tx.ledger.reserve(
                    merchant, payment.id, amount, currency, payment.created_at, shard_count=shards
                )
            await tx.payments.add(payment, client_id=caller.client_id)
            await tx.outbox.enqueue(SUBMIT, payment.id, {}, self._submit_at(payment))
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "payment.created",
                target_type="payment",
                target_id=payment.id,
                payload={"type": kind.value, "amount": amount, "currency": currency},
            )
        return payment

    # -- payouts in batches (payments/batching.py) ------------------------------------

    async def prepare_payout(
        self,
        caller: Caller,
        *,
        amount: int,
        currency: str,
        creditor: AccountIn,
        reference: str | None,
        description: str | None,
        metadata: dict[str, Any],
    ) -> PayoutRequest:
        """Every check :meth:`create_payout` makes before it needs the ledger, in its order
        and with its errors (an account that does not parse is refused before the
        metadata, the metadata before the limit)."""
        if not Money(amount, currency).is_positive:
            raise InvalidInput("amount must be positive.", code="invalid_amount")
        scheme, value = _scheme_of(creditor)
        # As the holder lookup parses it: the same refusal, before anything is written.
        parse_iban(value) if scheme is AccountScheme.IBAN else parse_raast_id(value)
        _refuse_reserved(metadata)
        checked = check_metadata(metadata)
        await self._check_limit(caller, amount)
        await self._check_payee(caller, creditor)
        return PayoutRequest(
            caller=caller,
            payment_id=new_id("payment"),
            amount=amount,
            currency=currency,
            creditor=creditor,
            scheme=scheme,
            account_value=value,
            reference=reference,
            description=description,
            metadata=checked,
            created_at=self._clock.now(),
        )

    async def plan_payouts(
        self, requests: list[PayoutRequest], *, fields_key: str | None = None
    ) -> list[PlannedPayout | DomainError]:
        """Each payout as :meth:`write_payouts` will create it if the balance covers it, or
        the error of a creditor that cannot be resolved. Nothing is written: the batch
        answers each request before its rows are written (payments/batching.py), so its
        answer is stored in the one write of its key. Creditors are looked up in one read
        per kind of identifier; a creditor with no customer record yet gets its record's
        id now (one for all the batch's payouts to that person), and the record is
        created with the first of their payouts that is written."""
        if not requests:
            return []
        lookups = [_holder_key(r) for r in requests]
        found = await self._protection.find_holders(lookups)
        plans: list[PlannedPayout | DomainError] = []
        drawn: dict[HolderLookup, str] = {}
        for request, lookup in zip(requests, lookups, strict=True):
            holder = found[lookup]
            if isinstance(holder, DomainError):
                plans.append(holder)
                continue
            if fields_key is None:
                fields_key = await self._protection.active_fields_key()
            if holder is None:
                subject_id = drawn.setdefault(lookup, new_id("data_subject"))
                party = _new_party(request, subject_id)
            else:
                party = Party(
                    subject_id=holder.id,
                    bank_code=holder.bank_code,
                    iban_last4=holder.iban_last4,
                    kind=request.scheme,
                )
            payment = await self._batch_payment(request, party, fields_key)
            plans.append(PlannedPayout(request, payment, new_holder=holder is None))
        return plans

    async def write_payouts(
        self, tx: PaymentsTx, plans: list[PlannedPayout]
    ) -> list[Payment | DomainError]:
        """Write the planned payouts the merchants' balances cover, in ``tx``: the holds,
        the payments, their jobs and audit records, and the customer records new to the
        batch. One that is not covered gets :class:`InsufficientFunds` in its place and
        nothing of it is written. The balance shards are locked in one fixed order
        (ledger.lock_shards)."""
        if not plans:  # a batch of retries only: nothing to lock or write
            return []
        requests = [plan.request for plan in plans]
        outcomes: list[Payment | DomainError | None] = [None] * len(plans)
        accounts: dict[tuple[str, str], tuple[str, int]] = {}
        # In one order for every batch: two batches that create the same new accounts
        # must not take their locks the other way round.
        for wanted in sorted({(r.caller.partner_id, r.currency) for r in requests}):
            accounts[wanted] = await self._merchant_account(tx, *wanted)
        locked = await tx.ledger.lock_free_shards(dict(accounts.values()))
        before = locked.shards
        shards, held, refused = _place_holds(requests, outcomes, accounts, before)
        if refused and not locked.complete:
            # The money may be on a shard another transaction held: wait for all of them.
            before = await locked.wait_for_all()
            shards, held, refused = _place_holds(requests, outcomes, accounts, before)
        for i, exc in refused.items():
            outcomes[i] = exc
        changed = {account for account, _ in held.values()}
        created: list[tuple[Payment, str | None, str, datetime]] = []
        holds: list[tuple[str, str, int, int, str, datetime]] = []
        recorded: set[str] = set()
        for i, (account, shard) in held.items():
            request, payment = plans[i].request, plans[i].payment
            subject_id = payment.counterparty.subject_id
            if plans[i].new_holder and subject_id not in recorded:
                recorded.add(subject_id)
                caller, creditor = request.caller, request.creditor
                await self._protection.create_subject(
                    caller.actor,
                    caller.partner_id,
                    name=creditor.name,
                    iban=creditor.iban,
                    raast_id=creditor.raast_id,
                    subject_id=subject_id,
                )
            outcomes[i] = payment
            created.append((payment, request.caller.client_id, SUBMIT, self._submit_at(payment)))
            holds.append(
                (payment.id, account, shard, request.amount, request.currency, payment.created_at)
            )
        await tx.ledger.hold_many(holds, _moved_shards(before, shards, changed))
        await tx.payments.add_many(created)
        for i in held:
            request = requests[i]
            await audit.record(
                tx,
                self._clock,
                request.caller.actor,
                "payment.created",
                target_type="payment",
                target_id=request.payment_id,
                payload={
                    "type": PaymentType.PAYOUT.value,
                    "amount": request.amount,
                    "currency": request.currency,
                },
            )
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(plans)
        return done

    async def _batch_payment(
        self, request: PayoutRequest, party: Party, fields_key: str
    ) -> Payment:
        sealed = (
            await self._protection.cipher.encrypt(
                request.description,
                context=FieldContext("payments", "description", request.payment_id),
                key_id=fields_key,
            )
            if request.description
            else None
        )
        return _payment(
            request.payment_id,
            request.caller.partner_id,
            PaymentType.PAYOUT,
            Money(request.amount, request.currency),
            party,
            reference=request.reference,
            sealed_description=sealed,
            metadata=request.metadata,
            created_at=request.created_at,
            expires_at=None,
        )

    def _submit_at(self, payment: Payment) -> datetime:
        """When to send a new payment to the rail: at once, except the sandbox's held
        test value, which stays pending (cancelable) for a while first."""
        held = (
            self.config.sandbox and payment.amount.amount % 100 == self.config.sandbox_hold_suffix
        )
        return payment.created_at + (self.config.sandbox_hold if held else timedelta(0))

    async def create_refund(
        self,
        caller: Caller,
        payment_id: str,
        *,
        amount: int | None,
        reference: str | None,
        metadata: dict[str, Any],
    ) -> Payment:
        async with self._tx.write() as tx:
            parent = await tx.payments.get(payment_id, for_update=True)
            if parent is None or parent.partner_id != caller.partner_id:
                raise NotFound(f"No payment '{payment_id[:40]}'.")
            if parent.type is not PaymentType.COLLECTION:
                raise RefundNotSupported(
                    f"Refunds apply to collections only; '{parent.id}' is a {parent.type.value}."
                    + (
                        " To send money back, make a new payout."
                        if parent.type is PaymentType.PAYOUT
                        else ""
                    )
                )
            if parent.status is not PaymentStatus.SUCCEEDED:
                raise RefundNotSupported(
                    "Only a succeeded collection can be refunded; this one is "
                    f"{parent.status.value}."
                )
            # Disputes of this collection lock its row too (lock_for_dispute), so what they
            # claim cannot change between this read and the refund.
            disputed = (
                await self._dispute_claims.claimed(tx, parent.id) if self._dispute_claims else 0
            )
            refundable = max(0, parent.refundable - disputed)
            value = amount if amount is not None else refundable
            if value <= 0:
                raise RefundExceedsRemaining(
                    "Nothing is left to refund on this collection"
                    + (" (its disputes cover the rest)." if disputed else ".")
                )
            # Atomic check-and-reduce: two refunds in parallel can never exceed the payment.
            if value > refundable or not await tx.payments.add_refunded(
                parent.id, value, self._clock.now(), reserved=disputed
            ):
                raise RefundExceedsRemaining(
                    f"Only {refundable} {parent.amount.currency} minor units remain "
                    "refundable" + (" (disputes take the rest)." if disputed else ".")
                )
            await self._refunded_amount_changed(tx, parent.id)
            refund = await self._new(
                caller,
                PaymentType.REFUND,
                value,
                parent.amount.currency,
                parent.counterparty,
                reference=reference,
                description=None,
                metadata=metadata,
            )
            refund = replace(refund, parent_id=parent.id, client_id=caller.client_id)
            account, shards = await self._merchant_account(
                tx, caller.partner_id, parent.amount.currency
            )
            await tx.ledger.reserve(
                account,
                refund.id,
                value,
                parent.amount.currency,
                refund.created_at,
                shard_count=shards,
            )
            await tx.payments.add(refund, client_id=caller.client_id, parent_id=parent.id)
            await tx.outbox.enqueue(SUBMIT, refund.id, {}, refund.created_at)
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "refund.created",
                target_type="refund",
                target_id=refund.id,
                payload={"payment_id": parent.id, "amount": value},
            )
        return refund

    async def cancel(self, caller: Caller, payment_id: str) -> Payment:
        async with self._tx.write() as tx:
            payment = await tx.payments.get(payment_id, for_update=True)
            if (
                payment is None
                or payment.partner_id != caller.partner_id
                or payment.type is PaymentType.REFUND
            ):
                raise NotFound(f"No payment '{payment_id[:40]}'.")
            if payment.status is not PaymentStatus.PENDING:
                raise PaymentNotCancelable(
                    "Only a payment not yet sent to the rail can be canceled; this one is "
                    f"already {payment.status.value}."
                )
            if CUSTOMER_FUNDING in payment.metadata:
                raise PaymentNotCancelable(
                    "A bank customer authorised this payment (open banking); it goes to the "
                    "rail as they approved it and cannot be canceled by the partner."
                )
            if payment.submitted_at is not None:
                raise PaymentNotCancelable(
                    "This payment was already handed to the rail, so it can no longer be "
                    "canceled (its status is still pending until the rail answers); its "
                    "outcome arrives as an event."
                )
            canceled = payment.to(PaymentStatus.CANCELED, at=self._clock.now())
            if not await tx.payments.save_transition(payment, canceled, "canceled by partner"):
                raise Conflict("The payment changed meanwhile; fetch it and retry.")
            await self._publish_change(tx, canceled)
            await self._settle_side_effects(tx, canceled)
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "payment.canceled",
                target_type="payment",
                target_id=payment.id,
            )
        return canceled

    # -- reading ------------------------------------------------------------------------

    async def get(self, partner_id: str, payment_id: str, *, refund: bool = False) -> Payment:
        async with self._tx.lookup() as tx:
            payment = await tx.payments.get(payment_id)
        wanted = (
            payment is not None
            and payment.partner_id == partner_id
            and ((payment.type is PaymentType.REFUND) == refund)
        )
        if payment is None or not wanted:
            raise NotFound(f"No {'refund' if refund else 'payment'} '{payment_id[:40]}'.")
        return payment

    async def current(self, payment_id: str) -> Payment | None:
        """The payment as stored now, whoever owns it (for the worker, never a partner)."""
        async with self._tx.read() as tx:
            return await tx.payments.get(payment_id)

    async def check_ledger(self) -> list[str]:
        """Every way the balances disagree with the immutable entries (empty: none)."""
        async with self._tx.read() as tx:
            return await tx.ledger.check()

    async def unresolved_count(self, older_than: timedelta) -> int:
        """Payments processing or awaiting approval, unchanged for ``older_than``."""
        async with self._tx.read() as tx:
            return await tx.payments.unresolved(self._clock.now() - older_than)

    async def list(
        self,
        partner_id: str,
        *,
        refunds: bool,
        limit: int,
        before: tuple[datetime, str] | None,
        status: str | None,
        created_gte: datetime | None,
        created_lt: datetime | None,
        type_: str | None = None,
        parent_id: str | None = None,
    ) -> Page[Payment]:
        types = ["refund"] if refunds else ([type_] if type_ else ["payout", "collection"])
        async with self._tx.lookup() as tx:
            return await tx.payments.list(
                partner_id,
                types=types,
                limit=limit,
                before=before,
                status=status,
                created_gte=created_gte,
                created_lt=created_lt,
                parent_id=parent_id,
            )

    async def description(self, payment: Payment) -> str | None:
        if payment.description is None:
            return None
        return await self._protection.unseal(
            payment.description, table="payments", column="description", row_id=payment.id
        )

    async def balance(self, partner_id: str, currency: str = "PKR") -> Balance:
        async with self._tx.read() as tx:
            posted, held = await tx.ledger.balance(ledger.merchant_account(partner_id))
            pending = await tx.payments.in_flight_incoming(partner_id)
        return Balance(
            currency=currency, available=posted - held, held=held, pending=pending, posted=posted
        )

    async def top_up(self, caller: Caller, amount: int, currency: str = "PKR") -> Balance:
        if not self.config.sandbox:
            raise Conflict("Top-ups exist only in the sandbox.")
        if not Money(amount, currency).is_positive:
            raise InvalidInput("amount must be positive.", code="invalid_amount")
        now = self._clock.now()
        async with self._tx.write() as tx:
            account, shards = await self._merchant_account(tx, caller.partner_id, currency)
            await self._ensure(tx, ledger.SANDBOX_FUNDING, "equity", currency, 1)
            top_up_id = new_id("top_up")
            await tx.ledger.post(
                ledger.sandbox_top_up(
                    new_id("journal"), top_up_id, caller.partner_id, amount, currency
                ),
                now,
            )
            await tx.ledger.credit(account, amount, spread=True, shard_count=shards)
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "balance.topped_up",
                target_type="partner",
                target_id=caller.partner_id,
                payload={"amount": amount, "currency": currency, "top_up_id": top_up_id},
            )
            posted, held = await tx.ledger.balance(account)
            pending = await tx.payments.in_flight_incoming(caller.partner_id)
            tx.publish(
                BalanceToppedUp(
                    partner_id=caller.partner_id,
                    top_up_id=top_up_id,
                    balance={
                        "object": "balance",
                        "currency": currency,
                        "available": posted - held,
                        "pending": pending,
                        "held": held,
                        "as_of": format_timestamp(now),
                        "top_up": {"id": top_up_id, "amount": amount},
                    },
                )
            )
        return await self.balance(caller.partner_id, currency)

    async def fund_from_bank_customer(
        self, caller: Caller, amount: int, currency: str, funding_id: str
    ) -> None:
        """The bank's core system debited one of its customers for a payment ``caller``
        initiated (open banking): that money now sits in ``caller``'s balance for the
        payout that follows, in the same unit of work (``transactions.atomic()``)."""
        if not Money(amount, currency).is_positive:
            raise InvalidInput("amount must be positive.", code="invalid_amount")
        async with self._tx.write() as tx:
            account, shards = await self._merchant_account(tx, caller.partner_id, currency)
            await self._ensure(tx, ledger.BANK_CUSTOMER_FUNDS, "asset", currency, 1)
            await tx.ledger.post(
                ledger.customer_funded(
                    new_id("journal"), funding_id, caller.partner_id, amount, currency
                ),
                self._clock.now(),
            )
            await tx.ledger.credit(account, amount, spread=True, shard_count=shards)
            await audit.record(
                tx,
                self._clock,
                caller.actor,
                "balance.funded_by_bank_customer",
                target_type="partner",
                target_id=caller.partner_id,
                payload={"amount": amount, "currency": currency, "funding_id": funding_id},
            )

    # -- settlement and reconciliation (their only way to move money) -------------------

    async def charge_fee(
        self, actor: Actor, partner_id: str, amount: int, currency: str, settlement_id: str
    ) -> tuple[int, str | None]:
        """Take a settlement cycle's fees from the partner's available balance, in the
        caller's unit of work. Takes what the balance covers and returns it with the fee
        journal's id; the caller carries the rest to the next cycle."""
        async with self._tx.write() as tx:
            account, shards = await self._merchant_account(tx, partner_id, currency)
            posted, held = await tx.ledger.balance(account)
            charged = min(amount, posted - held)
            if charged <= 0:
                return 0, None
            await self._ensure(tx, ledger.PLATFORM_FEES, "equity", currency, 1)
            now = self._clock.now()
            hold_id = new_id("journal")
            await tx.ledger.reserve(account, hold_id, charged, currency, now, shard_count=shards)
            await tx.ledger.close_hold(hold_id, post=True, at=now)
            await tx.ledger.post(
                ledger.settlement_fee(hold_id, settlement_id, partner_id, charged, currency), now
            )
            await audit.record(
                tx,
                self._clock,
                actor,
                "balance.fee_charged",
                target_type="partner",
                target_id=partner_id,
                payload={"amount": charged, "currency": currency, "settlement_id": settlement_id},
            )
        return charged, hold_id

    async def post_reconciliation_difference(
        self, delta: int, currency: str, break_id: str, *, charged_to: str | None
    ) -> str:
        """Post a resolved reconciliation break's difference (``delta``: the other side's
        figure minus the ledger's) against the platform (write-off) or a partner's balance
        (adjustment), in the caller's unit of work; returns the journal's id. A partner's
        balance is never taken below zero (InsufficientFunds, nothing posted)."""
        if delta == 0:
            raise InvalidInput("There is no difference to post.", code="invalid_amount")
        now = self._clock.now()
        journal_id = new_id("journal")
        async with self._tx.write() as tx:
            await self._ensure(tx, ledger.RAAST_SETTLEMENT, "asset", currency, 1)
            if charged_to is None:
                await self._ensure(tx, ledger.RECONCILIATION_DIFFERENCES, "equity", currency, 1)
            else:
                account, shards = await self._merchant_account(tx, charged_to, currency)
                if delta > 0:
                    await tx.ledger.credit(account, delta, spread=True, shard_count=shards)
                else:
                    await tx.ledger.reserve(
                        account, journal_id, -delta, currency, now, shard_count=shards
                    )
                    await tx.ledger.close_hold(journal_id, post=True, at=now)
            await tx.ledger.post(
                ledger.reconciliation_difference(
                    journal_id, break_id, delta, currency, charged_to=charged_to
                ),
                now,
            )
        return journal_id

    async def post_bank_charges(self, amount: int, currency: str, match_id: str) -> str:
        """Post what the bank kept from a batch it booked net (reconciliation found it),
        in the caller's unit of work; returns the journal's id."""
        journal_id = new_id("journal")
        async with self._tx.write() as tx:
            await self._ensure(tx, ledger.RAAST_SETTLEMENT, "asset", currency, 1)
            await self._ensure(tx, ledger.BANK_CHARGES, "equity", currency, 1)
            await tx.ledger.post(
                ledger.bank_charges(journal_id, match_id, amount, currency), self._clock.now()
            )
        return journal_id

    # -- disputes (their only way to move money; docs/disputes.md) ----------------------

    async def lock_for_dispute(self, payment_id: str) -> Payment | None:
        """The payment, its row locked until the caller's unit of work ends: a dispute
        being opened and a refund being made of one collection take turns, so the two
        together never return more than it collected."""
        async with self._tx.write() as tx:
            return await tx.payments.get(payment_id, for_update=True)

    async def hold_for_dispute(
        self, partner_id: str, dispute_id: str, amount: int, currency: str
    ) -> tuple[int, str | None]:
        """Move up to ``amount`` of the partner's available balance into its dispute-held
        account (journal ``dispute_hold``), in the caller's unit of work. Holds what the
        balance covers and returns it with the journal's id; ``(0, None)`` when nothing is
        available. The dispute records what was not held as its shortfall."""
        now = self._clock.now()
        async with self._tx.write() as tx:
            account, shards = await self._merchant_account(tx, partner_id, currency)
            held_account = ledger.dispute_held_account(partner_id)
            await self._ensure(tx, held_account, ledger.AccountKind.LIABILITY.value, currency, 1)
            journal_id = new_id("journal")
            taken = 0
            for _ in range(3):
                posted, held = await tx.ledger.balance(account)
                want = min(amount, posted - held)
                if want <= 0:
                    break
                try:
                    await tx.ledger.reserve(
                        account, journal_id, want, currency, now, shard_count=shards
                    )
                except InsufficientFunds:
                    continue  # a payout took some of it a moment ago: look again
                taken = want
                break
            if taken <= 0:
                return 0, None
            await tx.ledger.close_hold(journal_id, post=True, at=now)
            await tx.ledger.credit(held_account, taken, spread=False, shard_count=1)
            await tx.ledger.post(
                ledger.dispute_hold(journal_id, dispute_id, partner_id, taken, currency), now
            )
        return taken, journal_id

    async def release_dispute_hold(
        self, partner_id: str, dispute_id: str, amount: int, currency: str
    ) -> str:
        """Give ``amount`` held for a dispute back to the merchant's balance (journal
        ``dispute_release``), in the caller's unit of work; returns the journal's id."""
        return await self._out_of_dispute_held(
            partner_id, dispute_id, amount, currency, to_merchant=True
        )

    async def reverse_dispute_hold(
        self, partner_id: str, dispute_id: str, amount: int, currency: str
    ) -> str:
        """Send ``amount`` held for a dispute back to the payer, out through the rail's
        settlement account (journal ``dispute_reversal``), in the caller's unit of work."""
        return await self._out_of_dispute_held(
            partner_id, dispute_id, amount, currency, to_merchant=False
        )

    async def return_disputed_payout(
        self, partner_id: str, dispute_id: str, amount: int, currency: str
    ) -> str:
        """A payout dispute was won: the rail returned the amount, which comes back to the
        merchant's balance (journal ``dispute_reversal``), in the caller's unit of work."""
        now = self._clock.now()
        journal_id = new_id("journal")
        async with self._tx.write() as tx:
            await self._ensure(tx, ledger.RAAST_SETTLEMENT, "asset", currency, 1)
            account, shards = await self._merchant_account(tx, partner_id, currency)
            await tx.ledger.credit(account, amount, spread=True, shard_count=shards)
            await tx.ledger.post(
                ledger.disputed_payout_returned(
                    journal_id, dispute_id, partner_id, amount, currency
                ),
                now,
            )
        return journal_id

    async def disputes_held(self, partner_id: str) -> int:
        """What the partner's collections under dispute hold now (out of its balance)."""
        async with self._tx.read() as tx:
            posted, _held = await tx.ledger.balance(ledger.dispute_held_account(partner_id))
        return posted

    async def _out_of_dispute_held(
        self,
        partner_id: str,
        dispute_id: str,
        amount: int,
        currency: str,
        *,
        to_merchant: bool,
    ) -> str:
        now = self._clock.now()
        journal_id = new_id("journal")
        held_account = ledger.dispute_held_account(partner_id)
        async with self._tx.write() as tx:
            # Never more than the dispute-held account holds (InsufficientFunds: a bug).
            await tx.ledger.reserve(held_account, journal_id, amount, currency, now, shard_count=1)
            await tx.ledger.close_hold(journal_id, post=True, at=now)
            if to_merchant:
                account, shards = await self._merchant_account(tx, partner_id, currency)
                await tx.ledger.credit(account, amount, spread=True, shard_count=shards)
                build = ledger.dispute_release
            else:
                await self._ensure(tx, ledger.RAAST_SETTLEMENT, "asset", currency, 1)
                build = ledger.dispute_reversal
            await tx.ledger.post(build(journal_id, dispute_id, partner_id, amount, currency), now)
        return journal_id

    async def partners_with_movements(self, after: datetime, until: datetime) -> Sequence[str]:
        """The partners whose balance moved in ``(after, until]``."""
        prefix = ledger.merchant_account("")
        async with self._tx.read() as tx:
            accounts = await tx.ledger.accounts_moved(prefix, after, until)
        return tuple(account.removeprefix(prefix) for account in accounts)

    async def ledger_movements(
        self, partner_id: str, after: datetime, until: datetime
    ) -> Sequence[LedgerMovement]:
        """What moved the partner's balance in ``(after, until]``, oldest first."""
        async with self._tx.read() as tx:
            rows = await tx.ledger.movements(ledger.merchant_account(partner_id), after, until)
        return tuple(
            LedgerMovement(journal_id, kind, reference, -amount, currency, at)
            for journal_id, kind, reference, amount, currency, at in rows
        )

    async def has_balance(self, partner_id: str) -> bool:
        """Whether the partner has a balance at all (a ledger account of its own)."""
        async with self._tx.read() as tx:
            return await tx.ledger.has_account(ledger.merchant_account(partner_id))

    async def balance_as_of(self, partner_id: str, moment: datetime) -> int:
        """The partner's posted balance at ``moment`` (credit-normal, minor units)."""
        async with self._tx.read() as tx:
            total = await tx.ledger.posted_total(ledger.merchant_account(partner_id), moment)
        return ledger.credit_normal_balance(total)

    # -- the rail's side ----------------------------------------------------------------

    async def claim_submission(self, payment_id: str) -> Payment | None:
        """The worker's right to send this payment to the rail.

        Returns the payment while it is not final: a pending one is marked submitted (it
        can no longer be canceled) and is to be sent; one past submission is to be chased
        by an enquiry, or sent again if the rail lost it. None: it is final."""
        async with self._tx.write() as tx:
            payment = await tx.payments.get(payment_id, for_update=True)
            if payment is None or payment.is_terminal:
                return None
            if payment.status is PaymentStatus.PENDING and payment.submitted_at is None:
                await tx.payments.mark_submitted(payment_id, self._clock.now())
            return payment

    async def requeue_stranded(self, older_than: timedelta, limit: int = 500) -> dict[str, int]:
        """Give every payment in flight that has no job left (a crash between two steps,
        a job lost by hand) the job that moves it on: a pending one is sent (again: the
        same end-to-end id makes that safe), one past submission gets a status enquiry.
        Returns how many jobs of each kind were queued."""
        now = self._clock.now()
        queued = {SUBMIT: 0, ENQUIRE: 0}
        async with self._tx.write() as tx:
            for payment in await tx.payments.stranded(now - older_than, limit):
                kind = SUBMIT if payment.status is PaymentStatus.PENDING else ENQUIRE
                await tx.outbox.enqueue(kind, payment.id, {}, now)
                queued[kind] += 1
        return queued

    async def fail_submission(self, payment_id: str, code: str, message: str) -> None:
        """The rail definitively refused the submission: fail and release the money."""
        async with self._tx.write() as tx:
            payment = await tx.payments.get(payment_id, for_update=True)
            if payment is None or payment.is_terminal:
                return
            failed = payment.to(
                PaymentStatus.FAILED, at=self._clock.now(), failure=Failure(code, message)
            )
            if await tx.payments.save_transition(payment, failed, f"rail refused: {code}"):
                await self._publish_change(tx, failed)
                await self._settle_side_effects(tx, failed)

    async def apply_rail_status(
        self,
        end_to_end_id: str,
        status: str,
        *,
        sequence: int,
        reason_code: str | None = None,
        reason: str | None = None,
        rail_reference: str | None = None,
        cause: str,
    ) -> str:
        """Apply a rail outcome in any order, any number of times; returns what happened."""
        async with self._tx.write() as tx:
            payment = await tx.payments.get(end_to_end_id, for_update=True)
            if payment is None:
                return "unknown payment"
            decision = apply_rail_status(
                payment,
                status,
                sequence=sequence,
                at=self._clock.now(),
                reason_code=reason_code,
                reason=reason,
            )
            if decision.ignored:
                return f"ignored: {decision.ignored}"
            before = payment
            for step in decision.steps:
                if rail_reference and not step.rail_reference:
                    step = _with_reference(step, rail_reference)
                if not await tx.payments.save_transition(before, step, cause):
                    raise Conflict("payment changed concurrently")
                await self._publish_change(tx, step)
                before = step
            await self._settle_side_effects(tx, before)
            return f"{payment.status.value} -> {before.status.value}"

    async def _settle_side_effects(self, tx: PaymentsTx, payment: Payment) -> None:
        """Money moves exactly once per final state: post or void holds, post journals."""
        now = self._clock.now()
        currency = payment.amount.currency
        amount = payment.amount.amount
        account = ledger.merchant_account(payment.partner_id)
        if payment.status is PaymentStatus.SUCCEEDED:
            await self._ensure(tx, ledger.RAAST_SETTLEMENT, "asset", currency, 1)
            if payment.type is PaymentType.COLLECTION:
                await tx.ledger.post(
                    ledger.collection_settled(
                        new_id("journal"), payment.id, payment.partner_id, amount, currency
                    ),
                    now,
                )
                await tx.ledger.credit(account, amount, spread=False)
            elif await tx.ledger.close_hold(payment.id, post=True, at=now) is not None:
                build = (
                    ledger.refund_settled
                    if payment.type is PaymentType.REFUND
                    else ledger.payout_settled
                )
                await tx.ledger.post(
                    build(new_id("journal"), payment.id, payment.partner_id, amount, currency), now
                )
        elif payment.is_terminal and CUSTOMER_FUNDING in payment.metadata:
            # The money was a bank customer's: it leaves the partner's balance now, with
            # the failure, into the bank's clearing account, and is credited back to the
            # customer from there (open banking's return job). Never spendable meanwhile.
            await self._ensure(tx, ledger.BANK_CUSTOMER_FUNDS, "asset", currency, 1)
            if await tx.ledger.close_hold(payment.id, post=True, at=now) is not None:
                await tx.ledger.post(
                    ledger.customer_returned(
                        new_id("journal"), payment.id, payment.partner_id, amount, currency
                    ),
                    now,
                )
        elif payment.is_terminal and payment.type is not PaymentType.COLLECTION:
            released = await tx.ledger.close_hold(payment.id, post=False, at=now)
            parent = payment.parent_id
            if released is not None and payment.type is PaymentType.REFUND and parent:
                await tx.payments.return_refunded(str(parent), amount, now)
                await self._refunded_amount_changed(tx, str(parent))

    async def _publish_change(
        self, tx: PaymentsTx, payment: Payment, *, event_type: str | None = None
    ) -> None:
        """Publish that ``payment`` has a new version (whoever listens runs in ``tx``): by
        default the partner event its status names; ``event_type`` for a change that
        leaves the status as it was."""
        event_type = event_type or payment_event_type(payment)
        if event_type is None:
            return
        description = (
            await self._protection.unseal(
                payment.description, table="payments", column="description", row_id=payment.id
            )
            if payment.description
            else None
        )
        tx.publish(
            PaymentChanged(
                partner_id=payment.partner_id,
                payment_id=payment.id,
                version=payment.version,
                event_type=event_type,
                view=views.payment_view(payment, description),
            )
        )

    async def _refunded_amount_changed(self, tx: PaymentsTx, collection_id: str) -> None:
        """The collection's ``refunded_amount`` moved (a new version): tell the partner."""
        collection = await tx.payments.get(collection_id)
        if collection is not None:
            await self._publish_change(tx, collection, event_type=PAYMENT_UPDATED)


def _place_holds(
    requests: Sequence[PayoutRequest],
    outcomes: Sequence[object],
    accounts: Mapping[tuple[str, str], tuple[str, int]],
    locked: Mapping[str, list[ledger.Shard]],
) -> tuple[dict[str, list[ledger.Shard]], dict[int, tuple[str, int]], dict[int, InsufficientFunds]]:
    """Each still-open request's hold on one of the locked shards of its merchant: the
    shards as the holds leave them, where each request's hold went, and the requests
    the locked shards could not cover."""
    shards = dict(locked)
    held: dict[int, tuple[str, int]] = {}
    refused: dict[int, InsufficientFunds] = {}
    for i, request in enumerate(requests):
        if outcomes[i] is not None:
            continue
        account, _ = accounts[(request.caller.partner_id, request.currency)]
        mine = shards.get(account, [])
        try:
            shards[account], shard = ledger.hold_on(
                mine, request.amount, random.randrange(max(1, len(mine)))
            )
        except InsufficientFunds as exc:
            refused[i] = exc
            continue
        held[i] = (account, shard)
    return shards, held, refused


def _moved_shards(
    before: Mapping[str, list[ledger.Shard]],
    after: Mapping[str, list[ledger.Shard]],
    accounts: set[str],
) -> list[tuple[str, ledger.Shard]]:
    """The shards of these accounts whose values the holds changed, in (account, shard)
    order: a hold moves one shard (all of them only when it had to even them out), so
    writing every locked shard back would be several times the rows."""
    moved: list[tuple[str, ledger.Shard]] = []
    for account in sorted(accounts):
        unchanged = set(before.get(account, ()))
        moved.extend((account, shard) for shard in after[account] if shard not in unchanged)
    return moved


def _scheme_of(account: AccountIn) -> tuple[AccountScheme, str]:
    """Which identifier the account is given by (an IBAN when both are), and its value."""
    scheme, value = (
        (AccountScheme.IBAN, account.iban)
        if account.iban
        else (AccountScheme.RAAST_ID, account.raast_id)
    )
    if value is None:
        raise InvalidInput("Give an iban or a raast_id.", code="validation_error")
    return scheme, value


def _payment(
    payment_id: str,
    partner_id: str,
    kind: PaymentType,
    amount: Money,
    party: Party,
    *,
    reference: str | None,
    sealed_description: str | None,
    metadata: dict[str, Any],
    created_at: datetime,
    expires_at: datetime | None,
) -> Payment:
    """A new payment, pending at version 1, as every path that creates one makes it."""
    return Payment(
        id=payment_id,
        partner_id=partner_id,
        type=kind,
        status=PaymentStatus.PENDING,
        amount=amount,
        counterparty=party,
        reference=reference,
        description=sealed_description,
        metadata=metadata,
        version=1,
        created_at=created_at,
        updated_at=created_at,
        expires_at=expires_at,
    )


def _new_party(request: PayoutRequest, subject_id: str) -> Party:
    """The party of a creditor whose customer record the batch creates: what the record
    will show (DataProtectionService.create_subject derives the same from the IBAN)."""
    iban = parse_iban(request.account_value) if request.scheme is AccountScheme.IBAN else None
    return Party(
        subject_id=subject_id,
        bank_code=iban.bank_code if iban else None,
        iban_last4=iban.last4 if iban else None,
        kind=request.scheme,
    )


def _holder_key(request: PayoutRequest) -> HolderLookup:
    return HolderLookup(
        request.caller.partner_id,
        request.scheme.value,
        request.account_value,
        request.creditor.name,
    )


def _with_reference(payment: Payment, reference: str) -> Payment:
    return replace(payment, rail_reference=reference)
