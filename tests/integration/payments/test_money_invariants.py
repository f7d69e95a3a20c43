"""The money path as a state machine: the real PaymentService over the real database,
driven by Hypothesis against a small in-memory reference model.

Every step is one thing a partner, the worker or the rail can do (top up, pay out, collect,
cancel, refund, claim a submission, fail a submission, a rail outcome in any order and any
number of times, a retried create through the HTTP idempotency layer). After every step the
ledger must reconcile, each merchant's balance must be what the model says, every payment's
recorded history must move only along ``TRANSITIONS``, refunds never exceed their collection,
and an operation that was refused (or a rail event that was ignored) changed nothing.

Hypothesis' stateful API is synchronous, so each test case owns one event loop and one
container over a wiped database.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from tests.conftest import wipe
from tests.support.oauth import ACTOR, fetch_token, make_client

from amanat.app import create_app
from amanat.auth.domain import Caller
from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import FrozenClock
from amanat.kernel.errors import DomainError, NotFound
from amanat.payments.domain.ledger import InsufficientFunds, merchant_account
from amanat.payments.domain.payments import TERMINAL, TRANSITIONS, PaymentStatus, PaymentType
from amanat.payments.errors import (
    LimitExceeded,
    PaymentNotCancelable,
    RefundExceedsRemaining,
    RefundNotSupported,
)
from amanat.payments.service import SUBMIT, AccountIn, Balance
from amanat.payments.tables import (
    balance_shards,
    holds,
    ledger_entries,
    ledger_journals,
    payment_transitions,
    payments,
)
from amanat.platform.jobs.tables import outbox
from amanat.platform.settings import Settings
from amanat.webhooks.tables import events

T = TypeVar("T")
S = PaymentStatus

IBAN = "PK36SCBL0000001123456702"
RAAST_ID = "03001234567"
CURRENCY = "PKR"
SHARDS = 4
LIMIT = 100_000_000  # the default per-transaction limit
# 25 cases on either database; AMANAT_MONEY_EXAMPLES=500 for a long hunt.
EXAMPLES = int(os.environ.get("AMANAT_MONEY_EXAMPLES", "25"))
STEPS = 30

# What each rail status means, per payment type (anything else is not for that type).
RAIL_MEANING: dict[PaymentType, dict[str, PaymentStatus]] = {
    PaymentType.PAYOUT: {"accepted": S.PROCESSING, "settled": S.SUCCEEDED, "rejected": S.FAILED},
    PaymentType.REFUND: {"accepted": S.PROCESSING, "settled": S.SUCCEEDED, "rejected": S.FAILED},
    PaymentType.COLLECTION: {
        "accepted": S.AWAITING_APPROVAL,
        "approved": S.SUCCEEDED,
        "settled": S.SUCCEEDED,
        "declined": S.FAILED,
        "rejected": S.FAILED,
        "expired": S.EXPIRED,
    },
}
# The model's own view of a lifecycle: a payment only ever moves forward.
STAGE = {
    S.PENDING: 0,
    S.PROCESSING: 1,
    S.AWAITING_APPROVAL: 1,
    S.SUCCEEDED: 2,
    S.FAILED: 2,
    S.CANCELED: 2,
    S.EXPIRED: 2,
}
RAIL_STATUSES = ("accepted", "settled", "rejected", "approved", "declined", "expired")
MONEY_TABLES = (
    payments,
    payment_transitions,
    holds,
    balance_shards,
    ledger_journals,
    ledger_entries,
    outbox,
    events,  # a refused operation raises no event either
)

sequences = st.integers(min_value=0, max_value=8)
merchants = st.integers(min_value=0, max_value=1)
top_ups = st.integers(min_value=1, max_value=5_000_000)
# Amounts relative to what the model expects is available, so the boundaries (exactly the
# balance, one more, more than one shard holds) come up often, plus plain amounts.
relative = st.sampled_from(["all", "all+1", "half", "quarter+1", "quarter+1", "over-limit"])
payout_amounts = st.one_of(st.integers(min_value=1, max_value=400_000), relative)
refund_amounts = st.one_of(
    st.none(),
    st.integers(min_value=1, max_value=2_000_000),
    st.sampled_from(["remaining", "remaining+1", "all+1"]),
)
rarely = st.integers(min_value=0, max_value=4).map(lambda n: n == 0)


@dataclass
class Expected:
    """What the model believes about one payment."""

    id: str
    type: PaymentType
    merchant: int
    amount: int
    status: PaymentStatus = S.PENDING
    submitted: bool = False
    sequence: int = 0
    parent: str | None = None


@dataclass
class Model:
    top_ups: list[int] = field(default_factory=lambda: [0, 0])
    payments: dict[str, Expected] = field(default_factory=dict)

    def of(self, merchant: int, *types: PaymentType) -> list[Expected]:
        return [p for p in self.payments.values() if p.merchant == merchant and p.type in types]

    def held(self, merchant: int) -> int:
        outgoing = self.of(merchant, PaymentType.PAYOUT, PaymentType.REFUND)
        return sum(p.amount for p in outgoing if p.status in (S.PENDING, S.PROCESSING))

    def posted(self, merchant: int) -> int:
        out = self.of(merchant, PaymentType.PAYOUT, PaymentType.REFUND)
        collections = self.of(merchant, PaymentType.COLLECTION)
        return (
            self.top_ups[merchant]
            - sum(p.amount for p in out if p.status is S.SUCCEEDED)
            + sum(p.amount for p in collections if p.status is S.SUCCEEDED)
        )

    def available(self, merchant: int) -> int:
        return self.posted(merchant) - self.held(merchant)

    def incoming(self, merchant: int) -> int:
        collections = self.of(merchant, PaymentType.COLLECTION)
        return sum(p.amount for p in collections if p.status in (S.PENDING, S.AWAITING_APPROVAL))

    def refunded(self, collection_id: str) -> int:
        return sum(
            p.amount
            for p in self.payments.values()
            if p.parent == collection_id and p.status in (S.PENDING, S.PROCESSING, S.SUCCEEDED)
        )

    def paid_collections(self) -> list[str]:
        return [
            p.id
            for p in self.payments.values()
            if p.type is PaymentType.COLLECTION and p.status is S.SUCCEEDED
        ]

    def remaining(self, collection_id: str) -> int:
        return self.payments[collection_id].amount - self.refunded(collection_id)


def rail_outcome(payment: Expected, status: str, sequence: int) -> PaymentStatus | None:
    """Where a rail event takes a payment, or None when it must be ignored."""
    if 0 < sequence <= payment.sequence:
        return None  # stale or a duplicate delivery
    target = RAIL_MEANING[payment.type].get(status)
    if target is None or payment.status in TERMINAL:
        return None
    return target if STAGE[target] > STAGE[payment.status] else None


def resolve(spec: int | str | None, available: int, remaining: int = 0) -> int | None:
    if not isinstance(spec, str):
        return spec
    return {
        "all": max(available, 1),
        "all+1": available + 1,
        "half": max(available // 2, 1),
        "quarter+1": available // SHARDS + 1,
        "over-limit": LIMIT + 1,
        "remaining": max(remaining, 1),
        "remaining+1": remaining + 1,
    }[spec]


def legal_history(kind: PaymentType, trail: list[dict[str, Any]]) -> str | None:
    """Why a recorded status history is not a walk along TRANSITIONS (None if it is)."""
    if not trail or (trail[0]["from"], trail[0]["to"]) != (None, S.PENDING.value):
        return f"does not start with creation: {trail[:1]}"
    for before, after in itertools.pairwise(trail):
        if after["from"] != before["to"]:
            return f"jumps from {before['to']} to a step from {after['from']}"
        if after["version"] != before["version"] + 1:
            return f"version {before['version']} -> {after['version']}"
        allowed = TRANSITIONS[kind].get(PaymentStatus(after["from"]), frozenset())
        # A paid collection's refunded_amount moves (a refund made or failed) in place.
        in_place = kind is PaymentType.COLLECTION and after["from"] == after["to"] == "succeeded"
        if PaymentStatus(after["to"]) not in allowed and not in_place:
            return f"illegal step {after['from']} -> {after['to']}"
    return None


@dataclass
class Observation:
    """What the database says after a step."""

    ledger_problems: list[str] = field(default_factory=list)
    balances: list[Balance] = field(default_factory=list)
    shards: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # posted, held
    held_on: Counter[tuple[str, int]] = field(default_factory=Counter)  # active holds by shard
    stored: dict[str, tuple[PaymentStatus, int]] = field(default_factory=dict)
    trails: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refunds: list[tuple[str, int, PaymentStatus]] = field(default_factory=list)  # parent
    holds: dict[str, tuple[str, int]] = field(default_factory=dict)  # status, amount
    journals: Counter[str] = field(default_factory=Counter)  # by reference
    submissions: Counter[str] = field(default_factory=Counter)  # outbox jobs by payment
    versions: dict[str, int] = field(default_factory=dict)  # as stored
    event_versions: dict[str, list[int]] = field(default_factory=dict)  # by object
    newest_event: dict[str, dict[str, Any]] = field(default_factory=dict)  # its object


class MoneyMachine(RuleBasedStateMachine):
    known = Bundle("payments")  # every payment, refund and collection created
    collections = Bundle("collections")

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.container: Container = build_container(settings, clock=FrozenClock())
        self.http: httpx.AsyncClient | None = None
        self.auth: dict[str, str] | None = None
        self.model = Model()
        # Per payment: the version and (status, refunded_amount) the last step left.
        self.last_seen: dict[str, tuple[int, tuple[PaymentStatus, int]]] = {}
        self.keys = 0
        self.run(wipe(self.container))
        self.registered = self.run(make_client(self.container, name="Shop"))
        other = self.run(
            self.container.partners.create_partner(
                ACTOR, name="Other shop", roles=["merchant"], mode="sandbox"
            )
        )
        self.partners = [self.registered.partner.id, other.id]

    # -- plumbing ----------------------------------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def caller(self, merchant: int) -> Caller:
        client_id = self.registered.id if merchant == 0 else None
        return Caller(self.partners[merchant], client_id, ACTOR)

    async def _snapshot(self) -> dict[str, list[str]]:
        state: dict[str, list[str]] = {}
        async with self.container.db.read() as conn:
            for table in MONEY_TABLES:
                rows = (await conn.execute(sa.select(table))).all()
                state[table.name] = sorted(repr(tuple(r)) for r in rows)
        return state

    def snapshot(self) -> dict[str, list[str]]:
        return self.run(self._snapshot())

    def refused(
        self, expected: type[DomainError], operation: Coroutine[Any, Any, Any], what: str
    ) -> None:
        """``operation`` must raise exactly ``expected`` and leave the money untouched."""
        before = self.snapshot()
        with pytest.raises(DomainError) as raised:
            self.run(operation)
        assert type(raised.value) is expected, f"{what}: {raised.value!r}, not {expected.__name__}"
        assert self.snapshot() == before, f"the refused {what} changed something"

    def unchanged(self, operation: Coroutine[Any, Any, T], what: str) -> T:
        before = self.snapshot()
        result = self.run(operation)
        assert self.snapshot() == before, f"{what} changed something"
        return result

    # -- partners and the worker ---------------------------------------------------------

    @initialize(amounts=st.tuples(top_ups, top_ups))
    def opening_balances(self, amounts: tuple[int, int]) -> None:
        for merchant, amount in enumerate(amounts):
            self.top_up(merchant, amount)

    @rule(merchant=merchants, amount=top_ups)
    def top_up(self, merchant: int, amount: int) -> None:
        balance = self.run(self.container.payments.top_up(self.caller(merchant), amount))
        self.model.top_ups[merchant] += amount
        assert balance.available == self.model.available(merchant)

    def _payout_refusal(self, merchant: int, amount: int) -> type[DomainError] | None:
        if amount > LIMIT:
            return LimitExceeded
        if amount > self.model.available(merchant):
            return InsufficientFunds
        return None

    @rule(target=known, merchant=merchants, spec=payout_amounts)
    def create_payout(self, merchant: int, spec: int | str) -> Any:
        amount = resolve(spec, self.model.available(merchant))
        assert amount is not None
        create = self.container.payments.create_payout(
            self.caller(merchant),
            amount=amount,
            currency=CURRENCY,
            creditor=AccountIn(iban=IBAN, raast_id=None, name="Ayesha Khan"),
            reference="INV-1",
            description=None,
            metadata={},
        )
        refusal = self._payout_refusal(merchant, amount)
        if refusal is not None:
            self.refused(refusal, create, f"payout of {amount}")
            return multiple()
        payment = self.run(create)
        assert (payment.status, payment.amount.amount) == (S.PENDING, amount)
        self.model.payments[payment.id] = Expected(payment.id, PaymentType.PAYOUT, merchant, amount)
        return payment.id

    @rule(
        targets=(known, collections),
        merchant=merchants,
        amount=st.integers(min_value=1, max_value=3_000_000),
    )
    def create_collection(self, merchant: int, amount: int) -> str:
        payment = self.run(
            self.container.payments.create_collection(
                self.caller(merchant),
                amount=amount,
                currency=CURRENCY,
                debtor=AccountIn(iban=None, raast_id=RAAST_ID, name="Bilal Ahmed"),
                reference=None,
                description=None,
                metadata={},
                expires_in=None,
            )
        )
        assert payment.status is S.PENDING
        self.model.payments[payment.id] = Expected(
            payment.id, PaymentType.COLLECTION, merchant, amount
        )
        return payment.id

    @rule(payment_id=known, other=rarely)
    def cancel(self, payment_id: str, other: bool) -> None:
        expected = self.model.payments[payment_id]
        merchant = 1 - expected.merchant if other else expected.merchant
        cancel = self.container.payments.cancel(self.caller(merchant), payment_id)
        if other or expected.type is PaymentType.REFUND:
            self.refused(NotFound, cancel, "cancel")
        elif expected.status is not S.PENDING or expected.submitted:
            self.refused(PaymentNotCancelable, cancel, f"cancel of a {expected.status} payment")
        else:
            assert self.run(cancel).status is S.CANCELED
            expected.status = S.CANCELED

    @rule(target=known, collection_id=collections, spec=refund_amounts, other=rarely)
    def refund(self, collection_id: str, spec: int | str | None, other: bool) -> Any:
        return self._refund(collection_id, spec, other)

    @precondition(lambda self: bool(self.model.paid_collections()))
    @rule(target=known, data=st.data(), spec=refund_amounts)
    def refund_a_paid_collection(self, data: st.DataObject, spec: int | str | None) -> Any:
        paid = self.model.paid_collections()
        return self._refund(data.draw(st.sampled_from(paid), label="collection"), spec, False)

    def _refund(self, collection_id: str, spec: int | str | None, other: bool) -> Any:
        parent = self.model.payments[collection_id]
        merchant = 1 - parent.merchant if other else parent.merchant
        remaining = self.model.remaining(collection_id)
        amount = resolve(spec, self.model.available(parent.merchant), remaining)
        value = remaining if amount is None else amount
        create = self.container.payments.create_refund(
            self.caller(merchant), collection_id, amount=amount, reference=None, metadata={}
        )
        refusal: type[DomainError] | None = None
        if other:
            refusal = NotFound
        elif parent.status is not S.SUCCEEDED:
            refusal = RefundNotSupported
        elif value <= 0 or value > remaining:
            refusal = RefundExceedsRemaining
        elif value > self.model.available(parent.merchant):
            refusal = InsufficientFunds
        if refusal is not None:
            self.refused(refusal, create, f"refund of {value} (remaining {remaining})")
            return multiple()
        refund = self.run(create)
        assert (refund.type, refund.status, refund.amount.amount) == (
            PaymentType.REFUND,
            S.PENDING,
            value,
        )
        self.model.payments[refund.id] = Expected(
            refund.id, PaymentType.REFUND, parent.merchant, value, parent=collection_id
        )
        return refund.id

    @rule(payment_id=known)
    def claim_submission(self, payment_id: str) -> None:
        expected = self.model.payments[payment_id]
        claim = self.container.payments.claim_submission(payment_id)
        if expected.status in TERMINAL:
            assert self.unchanged(claim, "claiming a final payment") is None
            return
        if expected.status is not S.PENDING:
            # Past submission and not final: handed back for an enquiry, not marked again.
            in_flight = self.unchanged(claim, "claiming a sent payment")
            assert in_flight is not None and in_flight.status is expected.status
            return
        claimed = self.unchanged(claim, "claiming again") if expected.submitted else self.run(claim)
        assert claimed is not None and claimed.id == payment_id
        expected.submitted = True

    @rule(payment_id=known)
    def fail_submission(self, payment_id: str) -> None:
        expected = self.model.payments[payment_id]
        fail = self.container.payments.fail_submission(payment_id, "AC01", "invalid account")
        if expected.status in TERMINAL:
            self.unchanged(fail, "failing a final payment")
        else:
            self.run(fail)
            expected.status = S.FAILED

    # -- the rail ------------------------------------------------------------------------

    def _rail(self, payment_id: str, status: str, sequence: int) -> None:
        expected = self.model.payments[payment_id]
        target = rail_outcome(expected, status, sequence)
        event = self.container.payments.apply_rail_status(
            payment_id, status, sequence=sequence, cause="hypothesis"
        )
        if target is None:
            outcome = self.unchanged(event, f"ignored rail event {status}#{sequence}")
            assert outcome.startswith("ignored"), outcome
            return
        outcome = self.run(event)
        assert outcome == f"{expected.status.value} -> {target.value}", outcome
        expected.status = target
        expected.sequence = max(expected.sequence, sequence)

    @rule(
        payment_id=known,
        status=st.sampled_from(RAIL_STATUSES),
        sequence=sequences,
        twice=st.booleans(),
    )
    def rail_status(self, payment_id: str, status: str, sequence: int, twice: bool) -> None:
        self._rail(payment_id, status, sequence)
        if twice:  # the same callback delivered again
            self._rail(payment_id, status, sequence)

    @rule(collection_id=collections, sequence=sequences)
    def payer_approves(self, collection_id: str, sequence: int) -> None:
        self._rail(collection_id, "approved", sequence)

    @rule(payment_id=known, status=st.sampled_from(["accepted", "settled", "rejected"]))
    def rail_reports_in_order(self, payment_id: str, status: str) -> None:
        # The common case: the next event, with the next sequence number.
        self._rail(payment_id, status, self.model.payments[payment_id].sequence + 1)

    # -- a retried create through the idempotency layer ------------------------------------

    async def _post_twice(
        self, key: str, body: dict[str, Any]
    ) -> tuple[httpx.Response, httpx.Response]:
        if self.http is None:
            app = create_app(container=self.container)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        if self.auth is None:
            token = await fetch_token(self.http, self.registered)
            self.auth = {"Authorization": f"Bearer {token['access_token']}"}
        headers = self.auth | {"Idempotency-Key": key}
        first = await self.http.post("/v1/payments", json=body, headers=headers)
        second = await self.http.post("/v1/payments", json=body, headers=headers)
        return first, second

    async def _payment_rows(self) -> list[str]:
        async with self.container.db.read() as conn:
            return list((await conn.execute(sa.select(payments.c.id))).scalars())

    @rule(target=known, spec=payout_amounts)
    def retried_payout_over_http(self, spec: int | str) -> Any:
        amount = resolve(spec, self.model.available(0))
        assert amount is not None
        self.keys += 1
        body = {
            "type": "payout",
            "amount": amount,
            "currency": CURRENCY,
            "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
        }
        before_rows = set(self.run(self._payment_rows()))
        before = self.snapshot()
        first, second = self.run(self._post_twice(f"retry-{self.keys}", body))
        assert second.headers.get("idempotent-replayed") == "true", second.headers
        assert (second.status_code, second.json()) == (first.status_code, first.json())
        new = set(self.run(self._payment_rows())) - before_rows
        refusal = self._payout_refusal(0, amount)
        if refusal is not None:
            assert first.status_code == 422, first.text
            assert first.json()["code"] == refusal.code
            assert not new and self.snapshot() == before
            return multiple()
        assert first.status_code == 201, first.text
        payment_id = first.json()["id"]
        assert new == {payment_id}, "a retried create made exactly one payment"
        self.model.payments[payment_id] = Expected(payment_id, PaymentType.PAYOUT, 0, amount)
        return payment_id

    # -- invariants ----------------------------------------------------------------------

    async def _observe(self) -> Observation:
        """Everything the invariants look at, read in one transaction (``atomic()`` lets
        the service's own ``balance()`` join it)."""
        seen = Observation()
        async with self.container.transactions.atomic() as tx:
            seen.ledger_problems = await tx.ledger.check()
            for partner_id in self.partners:
                seen.balances.append(await self.container.payments.balance(partner_id))
            rows = await tx.connection.execute(
                sa.select(balance_shards).where(
                    balance_shards.c.account_id.in_([merchant_account(p) for p in self.partners])
                )
            )
            seen.shards = {(r.account_id, r.shard): (int(r.posted), int(r.held)) for r in rows}
            rows = await tx.connection.execute(
                sa.select(
                    payments.c.id,
                    payments.c.status,
                    payments.c.amount,
                    payments.c.refunded_amount,
                    payments.c.parent_id,
                    payments.c.version,
                )
            )
            for row in rows:
                seen.versions[row.id] = row.version
                status = PaymentStatus(row.status)
                seen.stored[row.id] = (status, int(row.refunded_amount))
                if row.parent_id is not None:
                    seen.refunds.append((row.parent_id, int(row.amount), status))
            for payment_id in self.model.payments:
                seen.trails[payment_id] = await tx.payments.transitions(payment_id)
            for hold in await tx.connection.execute(sa.select(holds)):
                seen.holds[hold.id] = (hold.status, int(hold.amount))
                if hold.status == "active":
                    seen.held_on[(hold.account_id, hold.shard)] += int(hold.amount)
            rows = await tx.connection.execute(sa.select(ledger_journals.c.reference))
            seen.journals = Counter(r.reference for r in rows)
            rows = await tx.connection.execute(
                sa.select(outbox.c.subject_id).where(outbox.c.kind == SUBMIT)
            )
            seen.submissions = Counter(r.subject_id for r in rows)
            rows = await tx.connection.execute(
                sa.select(events.c.id, events.c.object_id, events.c.object_version).where(
                    events.c.object_type.in_(["payment", "refund"])
                )
            )
            newest: dict[str, tuple[int, str]] = {}
            for row in rows:
                seen.event_versions.setdefault(row.object_id, []).append(row.object_version)
                newest[row.object_id] = max(
                    newest.get(row.object_id, (0, "")), (row.object_version, row.id)
                )
            for object_id, (_, event_id) in newest.items():
                stored_event = await tx.events.get(event_id)
                assert stored_event is not None
                opened = await self.container.events.open(stored_event)
                seen.newest_event[object_id] = opened.data
        return seen

    @invariant()
    def money_is_consistent(self) -> None:
        seen = self.run(self._observe())
        self.the_ledger_reconciles(seen)
        self.balances_match_the_model(seen)
        self.statuses_move_only_along_transitions(seen)
        self.refunds_never_exceed_their_collection(seen)
        self.money_moves_exactly_once(seen)
        self.every_change_is_one_version_and_one_event(seen)

    def the_ledger_reconciles(self, seen: Observation) -> None:
        assert seen.ledger_problems == []

    def balances_match_the_model(self, seen: Observation) -> None:
        for merchant, balance in enumerate(seen.balances):
            expected = (
                self.model.posted(merchant),
                self.model.held(merchant),
                self.model.available(merchant),
                self.model.incoming(merchant),
            )
            actual = (balance.posted, balance.held, balance.available, balance.pending)
            assert actual == expected, f"merchant {merchant}: (posted, held, available, pending)"
            assert balance.available >= 0
        for shard, (posted, held) in seen.shards.items():
            assert held == seen.held_on[shard], f"shard {shard}: holds {seen.held_on[shard]}"
            assert posted - held >= 0, f"shard {shard} went below zero: {posted=} {held=}"

    def statuses_move_only_along_transitions(self, seen: Observation) -> None:
        assert set(seen.stored) == set(self.model.payments), "payments appeared or vanished"
        for payment_id, expected in self.model.payments.items():
            status, _ = seen.stored[payment_id]
            assert status is expected.status, f"{payment_id}: {status}, model {expected.status}"
            trail = seen.trails[payment_id]
            problem = legal_history(expected.type, trail)
            assert problem is None, f"{payment_id}: {problem}"
            assert trail[-1]["to"] == status.value

    def every_change_is_one_version_and_one_event(self, seen: Observation) -> None:
        """A payment is created at version 1 (the partner has it from the response, no
        event); every later change (a status, or a collection's refunded_amount) is the
        next version, in the history once and in exactly one event carrying it."""
        for payment_id in self.model.payments:
            version = seen.versions[payment_id]
            visible = seen.stored[payment_id]  # status, refunded_amount
            last_version, last_visible = self.last_seen.get(payment_id, (version, visible))
            if visible == last_visible:
                assert version == last_version, f"{payment_id}: a new version, nothing changed"
            else:
                assert version > last_version, f"{payment_id}: {visible} at the same version"
            self.last_seen[payment_id] = (version, visible)
            if version > 1:
                newest = seen.newest_event[payment_id]
                assert newest["version"] == version, f"{payment_id}: newest event's version"
                assert (newest["status"], newest.get("refunded_amount") or 0) == (
                    visible[0].value,
                    visible[1],
                ), f"{payment_id}: the newest event does not show the payment as stored"
            assert [t["version"] for t in seen.trails[payment_id]] == list(range(1, version + 1)), (
                f"{payment_id}: history versions"
            )
            assert sorted(seen.event_versions.get(payment_id, [])) == list(range(2, version + 1)), (
                f"{payment_id}: event versions, stored version {version}"
            )

    def money_moves_exactly_once(self, seen: Observation) -> None:
        """One submission per payment; an outgoing payment's hold is active while it is in
        flight, posted when it succeeded, voided otherwise; one journal per success."""
        hold_for = {S.PENDING: "active", S.PROCESSING: "active", S.SUCCEEDED: "posted"}
        for payment_id, expected in self.model.payments.items():
            assert seen.submissions[payment_id] == 1, f"{payment_id}: submission jobs"
            succeeded = expected.status is S.SUCCEEDED
            assert seen.journals[payment_id] == int(succeeded), f"{payment_id}: journals"
            if expected.type is PaymentType.COLLECTION:
                assert payment_id not in seen.holds, f"{payment_id}: a collection holds money"
            else:
                wanted = (hold_for.get(expected.status, "voided"), expected.amount)
                assert seen.holds.get(payment_id) == wanted, f"{payment_id}: hold"

    def refunds_never_exceed_their_collection(self, seen: Observation) -> None:
        live = (S.PENDING, S.PROCESSING, S.SUCCEEDED)
        for payment_id, expected in self.model.payments.items():
            if expected.type is not PaymentType.COLLECTION:
                continue
            _, stored = seen.stored[payment_id]
            refunds = sum(
                a for parent, a, st_ in seen.refunds if parent == payment_id and st_ in live
            )
            assert refunds <= expected.amount, (
                f"{payment_id}: refunds {refunds} > {expected.amount}"
            )
            assert stored == refunds == self.model.refunded(payment_id), (
                f"{payment_id}: refunded_amount {stored}, live refunds {refunds}, "
                f"model {self.model.refunded(payment_id)}"
            )

    def teardown(self) -> None:
        try:
            if self.http is not None:
                self.run(self.http.aclose())
            self.run(wipe(self.container))
            self.run(self.container.close())
        finally:
            self.loop.close()


def test_money_invariants_hold_under_any_sequence(settings: Settings) -> None:
    configured = settings.model_copy(
        update={"payments": settings.payments.model_copy(update={"balance_shards": SHARDS})}
    )

    class OverTheTestDatabase(MoneyMachine):
        def __init__(self) -> None:
            super().__init__(configured)

    run_state_machine_as_test(
        OverTheTestDatabase,
        settings=hypothesis_settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
