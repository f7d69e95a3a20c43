"""Payouts' group commit (payments/batching.py): concurrent payouts commit together, and
the answers, the money and the idempotency keys are what one payout at a time gives.

Each test checks what a batch must never break: money conserved (holds, balance and the
ledger agree), an uncovered payout dropping out alone, a retried write happening once, a
batch that fails midway leaving nothing half-written, and (PostgreSQL) two batches that
lock the same merchants' shards queueing instead of deadlocking."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.conftest import TEST_DB, _outbound_http
from tests.support.oauth import ACTOR, RegisteredClient, bearer, funded_merchant

from amanat.auth.domain import Caller
from amanat.bootstrap import Container, build_container
from amanat.kernel.clock import FrozenClock
from amanat.payments.batching import PayoutBatcher
from amanat.payments.domain.ledger import InsufficientFunds
from amanat.payments.domain.payments import Payment
from amanat.payments.service import AccountIn, PaymentService, PlannedPayout
from amanat.payments.store import SqlPaymentRepository
from amanat.payments.tables import holds, payments
from amanat.platform.idempotency.service import IdempotencyService
from amanat.platform.idempotency.store import SqlIdempotencyRepository
from amanat.platform.idempotency.tables import idempotency_keys
from amanat.platform.jobs.tables import outbox
from amanat.platform.protection.tables import data_subjects
from amanat.platform.settings import Settings

IBAN = "PK36SCBL0000001123456702"
CREDITOR = AccountIn(iban=IBAN, raast_id=None, name="Ayesha Khan")


def _payout(amount: int, reference: str) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "PKR",
        "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
        "reference": reference,
    }


async def _pay_all(
    client: httpx.AsyncClient, auth: dict[str, str], amounts: list[int], key_prefix: str
) -> list[httpx.Response]:
    """The payouts sent at once, the i-th under key ``{key_prefix}-{i}``."""
    return await asyncio.gather(
        *[
            client.post(
                "/v1/payments",
                json=_payout(amount, f"{key_prefix}{i}"),
                headers=auth | {"Idempotency-Key": f"{key_prefix}-{i}"},
            )
            for i, amount in enumerate(amounts)
        ]
    )


async def _count(container: Container, table: sa.Table, *where: Any) -> int:
    async with container.db.read() as conn:
        stmt = sa.select(sa.func.count()).select_from(table).where(*where)
        return int((await conn.execute(stmt)).scalar_one())


async def _rows_agree(container: Container, created: int) -> None:
    """Every payment has its hold and its submission job, and the ledger reconciles."""
    assert await _count(container, payments) == created
    assert await _count(container, holds, holds.c.status == "active") == created
    assert await _count(container, outbox, outbox.c.kind == "rail.submit") == created
    async with container.transactions.read() as tx:
        assert await tx.ledger.check() == []


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_concurrent_payouts_conserve_money_and_the_uncovered_drop_out_alone(
    client: httpx.AsyncClient, container: Container, seed: int
) -> None:
    balance = 1_000_000
    merchant = await funded_merchant(container, f"Batched {seed}", balance)
    auth = await bearer(client, merchant)
    rng = random.Random(seed)
    amounts = [rng.randrange(10_000, 150_000) for _ in range(24)]
    responses = await _pay_all(client, auth, amounts, "batch")
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 422}, [r.text for r in responses if r.status_code >= 500]
    paid = sum(a for a, r in zip(amounts, responses, strict=True) if r.status_code == 201)
    for amount, response in zip(amounts, responses, strict=True):
        if response.status_code == 422:
            assert response.json()["code"] == "insufficient_funds"
            # Refused only when what was left could not cover it.
            assert amount > balance - paid
        else:
            body = response.json()
            assert body["amount"] == amount and body["status"] == "pending"
    assert paid <= balance
    assert sum(amounts) <= balance or statuses[422] > 0
    await _rows_agree(container, statuses[201])
    answer = (await client.get("/v1/balance", headers=auth)).json()
    assert answer["available"] == balance - paid and answer["held"] == paid
    # Every key keeps its answer, the refusals too; a retry replays it.
    assert await _count(container, idempotency_keys, idempotency_keys.c.status == "completed") == (
        len(amounts)
    )
    for i in (0, len(amounts) - 1):
        again = await client.post(
            "/v1/payments",
            json=_payout(amounts[i], f"batch{i}"),
            headers=auth | {"Idempotency-Key": f"batch-{i}"},
        )
        assert again.headers["idempotent-replayed"] == "true"
        assert (again.status_code, again.json()) == (
            responses[i].status_code,
            responses[i].json(),
        )
    await _rows_agree(container, statuses[201])


async def test_the_same_key_sent_concurrently_creates_one_payment(
    client: httpx.AsyncClient, container: Container
) -> None:
    merchant = await funded_merchant(container, "Retrying", 10_000_000)
    auth = await bearer(client, merchant)
    headers = auth | {"Idempotency-Key": "twice"}
    responses = await asyncio.gather(
        *[client.post("/v1/payments", json=_payout(50_000, "t"), headers=headers) for _ in range(8)]
    )
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    for busy in (r for r in responses if r.status_code == 409):
        assert busy.json()["code"] == "idempotency_key_in_use"
    fresh = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(fresh) == 1
    replay = await client.post("/v1/payments", json=_payout(50_000, "t"), headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] in created
    other = await client.post("/v1/payments", json=_payout(60_000, "t"), headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    await _rows_agree(container, 1)


async def test_retries_in_a_batch_are_answered_from_their_keys_without_running_again(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchant = await funded_merchant(container, "Retried in a batch", 10_000_000)
    auth = await bearer(client, merchant)
    first = [
        await client.post(
            "/v1/payments",
            json=_payout(10_000 + i, f"r{i}"),
            headers=auth | {"Idempotency-Key": f"r-{i}"},
        )
        for i in range(6)
    ]
    assert [r.status_code for r in first] == [201] * 6
    # The batch itself finds the taken keys (on SQLite the route reads them first).
    monkeypatch.setattr(container.get(IdempotencyService), "read_before_claim", False)
    alone: list[str] = []
    real_run = IdempotencyService.run

    async def run(self: IdempotencyService, record: Any, operation: Any) -> Any:
        alone.append(record.key)
        return await real_run(self, record, operation)

    monkeypatch.setattr(IdempotencyService, "run", run)
    retries = [(f"r-{i}", _payout(10_000 + i, f"r{i}")) for i in range(6)]
    reused = [(f"r-{i}", _payout(99_000, "other")) for i in (0, 1)]
    fresh = [(f"n-{i}", _payout(20_000 + i, f"n{i}")) for i in range(4)]
    sent = retries + reused + fresh
    responses = await asyncio.gather(
        *[
            client.post("/v1/payments", json=body, headers=auth | {"Idempotency-Key": key})
            for key, body in sent
        ]
    )
    for i, response in enumerate(responses[:6]):
        assert response.headers.get("idempotent-replayed") == "true", response.text
        assert (response.status_code, response.json()) == (201, first[i].json())
    for response in responses[6:8]:
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "idempotency_key_reused"
    assert [r.status_code for r in responses[8:]] == [201] * 4
    assert "idempotent-replayed" not in responses[8].headers
    # Batches may split the requests, but none went the per-request way.
    assert alone == []
    assert container.get(PayoutBatcher).fallbacks == 0
    await _rows_agree(container, 10)


async def test_a_stored_answer_the_batch_cannot_read_sends_only_that_request_alone(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchant = await funded_merchant(container, "Unreadable answer", 10_000_000)
    auth = await bearer(client, merchant)
    body = _payout(10_000, "u")
    first = await client.post("/v1/payments", json=body, headers=auth | {"Idempotency-Key": "u-1"})
    assert first.status_code == 201
    monkeypatch.setattr(container.get(IdempotencyService), "read_before_claim", False)
    real_answer_of = IdempotencyService.answer_of
    failures = 0

    async def answer_of(self: IdempotencyService, record: Any, existing: Any) -> Any:
        nonlocal failures
        if record.key == "u-1" and not failures:
            failures += 1  # e.g. the answer's data key is out of reach for a moment
            raise RuntimeError("master key service unreachable")
        return await real_answer_of(self, record, existing)

    monkeypatch.setattr(IdempotencyService, "answer_of", answer_of)
    responses = await asyncio.gather(
        client.post("/v1/payments", json=body, headers=auth | {"Idempotency-Key": "u-1"}),
        *[
            client.post(
                "/v1/payments",
                json=_payout(20_000 + i, f"v{i}"),
                headers=auth | {"Idempotency-Key": f"v-{i}"},
            )
            for i in range(5)
        ],
    )
    assert failures == 1
    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    # The retry was answered by the per-request path, with the first answer.
    assert responses[0].headers.get("idempotent-replayed") == "true"
    assert responses[0].json() == first.json()
    assert container.get(PayoutBatcher).fallbacks == 0
    await _rows_agree(container, 6)


async def test_a_batch_that_fails_midway_leaves_nothing_and_each_payout_goes_alone(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    merchant = await funded_merchant(container, "Crashing", 10_000_000)
    auth = await bearer(client, merchant)
    real = SqlPaymentRepository.add_many

    async def written_then_crashed(self: SqlPaymentRepository, *args: Any) -> None:
        await real(self, *args)  # the batch's rows are written...
        raise RuntimeError("crash in the middle of a batch")  # ...and must roll back

    monkeypatch.setattr(SqlPaymentRepository, "add_many", written_then_crashed)
    responses = await asyncio.gather(
        *[
            client.post(
                "/v1/payments",
                json=_payout(10_000 + i, f"c{i}"),
                headers=auth | {"Idempotency-Key": f"crash-{i}"},
            )
            for i in range(10)
        ]
    )
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 10
    batcher = container.get(PayoutBatcher)
    assert batcher.fallbacks >= 1 and batcher.batches == 0
    await _rows_agree(container, 10)
    answer = (await client.get("/v1/balance", headers=auth)).json()
    assert answer["held"] == sum(10_000 + i for i in range(10))


async def _requests(
    container: Container,
    merchant: RegisteredClient,
    amounts: list[int],
    creditor: AccountIn = CREDITOR,
) -> list[Any]:
    caller = Caller(merchant.partner.id, merchant.id, ACTOR)
    return [
        await container.payments.prepare_payout(
            caller,
            amount=amount,
            currency="PKR",
            creditor=creditor,
            reference=None,
            description="rent" if amount % 2 else None,
            metadata={},
        )
        for amount in amounts
    ]


async def _create_payouts(container: Container, tx: Any, requests: list[Any]) -> list[Any]:
    """What a batch does for its claimed keys, without the batcher: each payout planned,
    then those that could be planned written; each one's payment or error in its place."""
    plans = await container.payments.plan_payouts(requests)
    written = iter(
        await container.payments.write_payouts(
            tx, [plan for plan in plans if isinstance(plan, PlannedPayout)]
        )
    )
    return [next(written) if isinstance(plan, PlannedPayout) else plan for plan in plans]


async def test_in_one_transaction_an_uncovered_payout_gets_its_error_and_writes_nothing(
    container: Container,
) -> None:
    merchant = await funded_merchant(container, "One batch", 100_000)
    requests = await _requests(container, merchant, [40_000, 70_000, 60_000, 1])
    async with container.transactions.atomic() as tx:
        outcomes = await _create_payouts(container, tx, requests)
    assert [type(o) for o in outcomes] == [Payment, InsufficientFunds, Payment, InsufficientFunds]
    assert [o.id for o in outcomes if isinstance(o, Payment)] == [
        requests[0].payment_id,
        requests[2].payment_id,
    ]
    await _rows_agree(container, 2)
    stored = await container.payments.get(merchant.partner.id, requests[2].payment_id)
    assert stored.amount.amount == 60_000


@pytest.mark.skipif(TEST_DB != "postgresql", reason="SQLite has one writer at a time")
async def test_two_batches_locking_the_same_shards_queue_and_never_deadlock(
    container: Container,
) -> None:
    """Two batchers stand for two API processes; each batch has payouts of both
    merchants, queued in opposite orders."""
    first = await funded_merchant(container, "Shared A", 100_000_000)
    second = await funded_merchant(container, "Shared B", 100_000_000)
    idempotency = container.get(IdempotencyService)
    batchers = [
        PayoutBatcher(container.transactions, container.payments, idempotency) for _ in range(2)
    ]

    async def pay(batcher: PayoutBatcher, merchant: RegisteredClient, key: str) -> Any:
        caller = Caller(merchant.partner.id, merchant.id, ACTOR)
        record = idempotency.new_record(merchant.id, key, "h" * 64, "POST", "/v1/payments")
        return await batcher.create(
            record,
            lambda exc: (422, {"code": exc.code}),
            lambda: container.payments.prepare_payout(
                caller,
                amount=10_000,
                currency="PKR",
                creditor=CREDITOR,
                reference=None,
                description=None,
                metadata={},
            ),
        )

    for round_ in range(3):
        outcomes = await asyncio.gather(
            *[
                pay(
                    batchers[i % 2],
                    (first, second)[(i // 2 + i % 2) % 2],
                    f"r{round_}-{i}",
                )
                for i in range(24)
            ]
        )
        assert all(o is not None and o[0] == 201 for o in outcomes), outcomes
    assert [b.fallbacks for b in batchers] == [0, 0]
    await _rows_agree(container, 72)


async def test_a_batched_payout_answers_its_description_as_a_retrieve_does(
    client: httpx.AsyncClient, container: Container
) -> None:
    merchant = await funded_merchant(container, "Described", 1_000_000)
    auth = await bearer(client, merchant)
    bodies = [_payout(10_000, "empty") | {"description": ""}, _payout(10_000, "said")]
    bodies[1]["description"] = "salary"
    created = await asyncio.gather(
        *[
            client.post("/v1/payments", json=body, headers=auth | {"Idempotency-Key": f"d-{i}"})
            for i, body in enumerate(bodies)
        ]
    )
    for response in created:
        assert response.status_code == 201, response.text
        fetched = await client.get(f"/v1/payments/{response.json()['id']}", headers=auth)
        assert response.json()["description"] == fetched.json()["description"]
    assert [r.json()["description"] for r in created] == [None, "salary"]


async def test_a_process_new_to_the_merchants_reads_their_accounts_and_keys_once_a_batch(
    container: Container, settings: Settings, clock: FrozenClock
) -> None:
    """After a start or a deploy every merchant is new to a process. A batch of their
    payouts reads their ledger accounts in one statement (before its transaction) and
    their customers' data keys in one more, not one of each per merchant inside the
    batch's transaction."""
    merchants = [await funded_merchant(container, f"Cold {i}", 1_000_000) for i in range(6)]
    for merchant in merchants:  # each merchant's customer exists, under a key of its own
        async with container.transactions.atomic() as tx:
            await _create_payouts(container, tx, await _requests(container, merchant, [10_000]))
    fresh = build_container(settings, clock=clock, http=_outbound_http())
    try:
        statements: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(" ".join(statement.split()))

        sa.event.listen(fresh.db.engine.sync_engine, "before_cursor_execute", seen)
        idempotency = fresh.get(IdempotencyService)
        batcher = PayoutBatcher(fresh.transactions, fresh.payments, idempotency)
        prepared = [(m, r) for m in merchants for r in await _requests(fresh, m, [20_000])]

        async def pay(merchant: RegisteredClient, request: Any, key: str) -> Any:
            async def prepare() -> Any:
                return request

            record = idempotency.new_record(merchant.id, key, "h" * 64, "POST", "/v1/payments")
            return await batcher.create(record, lambda exc: (422, {"code": exc.code}), prepare)

        statements.clear()
        outcomes = await asyncio.gather(
            *[pay(m, r, f"cold-{i}") for i, (m, r) in enumerate(prepared)]
        )
        assert [o[0] if o else o for o in outcomes] == [201] * len(merchants), outcomes
        assert (batcher.batches, batcher.fallbacks) == (1, 0)
        ledger_accounts = [s for s in statements if "ledger_accounts" in s]
        assert len(ledger_accounts) == 1, ledger_accounts  # one read, no INSERT ... ON CONFLICT
        one_key_reads = [s for s in statements if "FROM data_keys WHERE data_keys.id =" in s]
        many_key_reads = [s for s in statements if "FROM data_keys WHERE data_keys.id IN" in s]
        # The single reads are the process's own few keys (the fields key), never one per
        # customer; the customers' keys come in one read.
        assert len(one_key_reads) <= 2, one_key_reads
        assert len(many_key_reads) == 1, many_key_reads
    finally:
        await fresh.close()
    await _rows_agree(container, 12)


async def test_each_key_of_a_batch_is_written_once_with_its_answer(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch knows each request's answer before it writes the payout, so the key is
    claimed with it: one INSERT of completed rows, and a second write only for the
    payouts the balance then did not cover, whose key gets the refusal instead."""
    merchant = await funded_merchant(container, "Written once", 100_000)
    auth = await bearer(client, merchant)
    rewritten: list[str] = []
    real_complete_many = SqlIdempotencyRepository.complete_many

    async def complete_many(self: SqlIdempotencyRepository, answers: list[Any]) -> None:
        rewritten.extend(key for _, key, *_ in answers)
        await real_complete_many(self, answers)

    monkeypatch.setattr(SqlIdempotencyRepository, "complete_many", complete_many)
    amounts = [40_000, 70_000, 50_000, 5_000]
    responses = await _pay_all(client, auth, amounts, "w")
    assert container.get(PayoutBatcher).fallbacks == 0
    statuses = [r.status_code for r in responses]
    assert {201, 422} == set(statuses), [r.text for r in responses]
    # Only the uncovered payouts' keys were written a second time.
    assert sorted(rewritten) == [f"w-{i}" for i, s in enumerate(statuses) if s == 422]
    async with container.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    idempotency_keys.c.key,
                    idempotency_keys.c.status,
                    idempotency_keys.c.response_status,
                    idempotency_keys.c.resource_id,
                    idempotency_keys.c.locked_until,
                )
            )
        ).all()
    stored = {row.key: row for row in rows}
    for i, response in enumerate(responses):
        row = stored[f"w-{i}"]
        assert (row.status, row.response_status, row.locked_until) == (
            "completed",
            response.status_code,
            None,
        )
        created = response.json()["id"] if response.status_code == 201 else None
        assert row.resource_id == created
        if created is not None:
            # The answer was worked out before the payout was written: it must be what
            # was committed, the creditor's new customer record included.
            fetched = (await client.get(f"/v1/payments/{created}", headers=auth)).json()
            stable = ("id", "amount", "creditor", "reference", "description", "created_at")
            assert {k: fetched[k] for k in stable} == {k: response.json()[k] for k in stable}
            customer = response.json()["creditor"]["customer_id"]
            assert await _count(container, data_subjects, data_subjects.c.id == customer) == 1
        # A retry gets the stored answer: the payment, or the refusal.
        again = await client.post(
            "/v1/payments",
            json=_payout(amounts[i], f"w{i}"),
            headers=auth | {"Idempotency-Key": f"w-{i}"},
        )
        assert again.headers["idempotent-replayed"] == "true"
        assert (again.status_code, again.json()) == (response.status_code, response.json())
    await _rows_agree(container, statuses.count(201))


async def test_a_new_creditor_gets_one_customer_record_and_only_when_paid(
    container: Container,
) -> None:
    """A creditor with no customer record yet gets its record's id when the batch plans
    the payouts (the answers name it), and the record is written with the first of them
    the balance covers: once for several payouts to that person, not at all when none is
    covered."""
    merchant = await funded_merchant(container, "New creditor", 100_000)
    newcomer = AccountIn(iban="PK28MEZN0000001234567896", raast_id=None, name="Bilal Ahmed")
    unpaid = AccountIn(iban="PK17HABB0000001234567899", raast_id=None, name="Sana Malik")
    # The first is not covered: its payout is refused; the last never is.
    requests = await _requests(container, merchant, [200_000, 30_000, 20_000], newcomer)
    requests += await _requests(container, merchant, [500_000], unpaid)
    async with container.transactions.atomic() as tx:
        outcomes = await _create_payouts(container, tx, requests)
    assert [type(o) for o in outcomes] == [InsufficientFunds, Payment, Payment, InsufficientFunds]
    paid = [o for o in outcomes if isinstance(o, Payment)]
    assert paid[0].counterparty.subject_id == paid[1].counterparty.subject_id
    assert (paid[0].counterparty.bank_code, paid[0].counterparty.iban_last4) == ("MEZN", "7896")
    async with container.db.read() as conn:
        subjects = (
            await conn.execute(
                sa.select(data_subjects.c.id, data_subjects.c.bank_code, data_subjects.c.iban_last4)
            )
        ).all()
    mine = [tuple(s) for s in subjects if s.id == paid[0].counterparty.subject_id]
    assert mine == [(paid[0].counterparty.subject_id, "MEZN", "7896")]
    assert not [s for s in subjects if s.iban_last4 == "7899"]  # the unpaid creditor's
    await _rows_agree(container, 2)


async def test_once_batches_find_keys_taken_retries_are_answered_from_a_read_alone(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry this process has not answered before goes into a batch. Once a batch has
    found keys taken, the next ones read their keys first: a retry is answered from the
    read, with no payout planned, no claim sent and no write transaction. A batch of new
    payouts alone turns the read off again, so new payouts do not pay for it."""
    merchant = await funded_merchant(container, "Retry storm", 10_000_000)
    auth = await bearer(client, merchant)
    bodies = {f"s-{i}": _payout(10_000 + i, f"s{i}") for i in range(5)}
    first = {}
    for key, body in bodies.items():
        first[key] = await client.post(
            "/v1/payments", json=body, headers=auth | {"Idempotency-Key": key}
        )
        assert first[key].status_code == 201
    monkeypatch.setattr(container.get(IdempotencyService), "read_before_claim", False)
    # The batches' own reading is what this shows: not the read before validation that
    # answers a retry in a storm before it reaches a batch (tests/api/platform/
    # test_replay_memo.py).
    monkeypatch.setattr(IdempotencyService, "expects_retries", property(lambda self: False))
    planned: list[str | None] = []
    claimed: list[str] = []
    read_first: list[list[str]] = []
    real_plan = PaymentService.plan_payouts
    real_claim_many = SqlIdempotencyRepository.claim_many
    real_get_many = SqlIdempotencyRepository.get_many

    async def plan_payouts(self: PaymentService, requests: list[Any], **kw: Any) -> Any:
        planned.extend(r.reference for r in requests)
        return await real_plan(self, requests, **kw)

    async def claim_many(self: SqlIdempotencyRepository, claims: list[Any]) -> Any:
        claimed.extend(record.key for record, *_ in claims)
        return await real_claim_many(self, claims)

    async def get_many(self: SqlIdempotencyRepository, ids: list[str]) -> Any:
        if ids:
            read_first.append(sorted(i.rpartition(":")[2] for i in ids))
        return await real_get_many(self, ids)

    monkeypatch.setattr(PaymentService, "plan_payouts", plan_payouts)
    monkeypatch.setattr(SqlIdempotencyRepository, "claim_many", claim_many)
    monkeypatch.setattr(SqlIdempotencyRepository, "get_many", get_many)

    async def send(key: str, body: dict[str, Any]) -> httpx.Response:
        for seen in (planned, claimed, read_first):
            seen.clear()
        return await client.post("/v1/payments", json=body, headers=auth | {"Idempotency-Key": key})

    def replays(response: httpx.Response, key: str) -> bool:
        return response.headers.get("idempotent-replayed") == "true" and (
            response.status_code,
            response.json(),
        ) == (201, first[key].json())

    # No batch has found a key taken yet: the retry is planned, claimed, found taken.
    assert replays(await send("s-0", bodies["s-0"]), "s-0")
    assert (planned, claimed, read_first) == (["s0"], ["s-0"], [["s-0"]])
    # Now the batch reads first: the retry costs that read and nothing else.
    assert replays(await send("s-1", bodies["s-1"]), "s-1")
    assert (planned, claimed, read_first) == ([], [], [["s-1"]])
    reused = await send("s-2", _payout(99_000, "other"))
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert (planned, claimed, read_first) == ([], [], [["s-2"]])
    # A new payout still reads first (the last batch found a key taken), then is claimed;
    # its batch found nothing taken, so the next new payout pays for no read.
    assert (await send("t-0", _payout(20_000, "t0"))).status_code == 201
    assert (planned, claimed, read_first) == (["t0"], ["t-0"], [["t-0"]])
    assert (await send("t-1", _payout(20_001, "t1"))).status_code == 201
    assert (planned, claimed, read_first) == (["t1"], ["t-1"], [])
    # And the next retry is found by the claim again, as at first.
    assert replays(await send("s-3", bodies["s-3"]), "s-3")
    assert (planned, claimed, read_first) == (["s3"], ["s-3"], [["s-3"]])
    assert container.get(PayoutBatcher).fallbacks == 0
    await _rows_agree(container, 7)
