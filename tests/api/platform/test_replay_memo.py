"""A retried request whose key this process has already read completed is answered from
memory (platform/idempotency/replay_memo.py): the same bytes, the same refusals of a
reused key, no read and no batch; and never once the key has expired, or when the
remembered answer cannot be opened."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.support.oauth import RegisteredClient, bearer, funded_merchant

from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.payments.tables import payments
from amanat.platform.http import lean_routes
from amanat.platform.idempotency.service import IdempotencyService
from amanat.platform.idempotency.store import SqlIdempotencyRepository
from amanat.platform.idempotency.tables import idempotency_keys
from amanat.platform.protection.service import DataProtectionService

IBAN = "PK36SCBL0000001123456702"
PAYOUT = {"amount": 150_000, "currency": "PKR", "creditor": {"iban": IBAN, "name": "A K"}}
CUSTOMER = {"name": "Ayesha Khan", "iban": IBAN}


@pytest.fixture
async def merchant(container: Container) -> RegisteredClient:
    return await funded_merchant(container, "Retrying shop", balance=10_000_000)


@pytest.fixture
async def auth(client: httpx.AsyncClient, merchant: RegisteredClient) -> dict[str, str]:
    return await bearer(client, merchant)


@pytest.fixture
def store_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the idempotency store was asked for a key (read, batch claim, claim)."""
    calls: Counter[str] = Counter()
    for name in ("get", "get_many", "claim_many", "try_insert"):
        real = getattr(SqlIdempotencyRepository, name)

        def counted(self: Any, *args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls[_name] += 1
            return _real(self, *args, **kw)

        monkeypatch.setattr(SqlIdempotencyRepository, name, counted)
    return calls


async def _post(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, body: Any, key: str
) -> httpx.Response:
    return await client.post(path, json=body, headers=auth | {"Idempotency-Key": key})


async def _replays(container: Container, key: str) -> int:
    await container.get(IdempotencyService).flush_replay_counts()
    async with container.db.read() as conn:
        statement = sa.select(idempotency_keys.c.replays).where(idempotency_keys.c.key == key)
        return int((await conn.execute(statement)).scalar_one())


async def _payments(container: Container) -> int:
    async with container.db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(payments))).scalar())


@pytest.mark.parametrize(
    ("path", "body", "other"),
    [
        ("/v1/payments", PAYOUT, PAYOUT | {"amount": 1}),
        ("/v1/customers", CUSTOMER, CUSTOMER | {"name": "Other"}),
    ],
)
async def test_after_one_replay_from_the_store_the_next_ones_need_no_database(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    store_calls: Counter[str],
    path: str,
    body: dict[str, Any],
    other: dict[str, Any],
) -> None:
    created = await _post(client, auth, path, body, "k-1")
    assert created.status_code == 201, created.text
    first = await _post(client, auth, path, body, "k-1")
    assert first.headers["idempotent-replayed"] == "true"
    store_calls.clear()
    for _ in range(3):
        again = await _post(client, auth, path, body, "k-1")
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content and again.json() == created.json()
    assert store_calls == Counter()
    # A remembered key sent with another body is refused as reused, as the store would.
    reused = await _post(client, auth, path, other, "k-1")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert store_calls == Counter()
    # Every replay is counted, those from memory too (written later, many at once).
    assert await _replays(container, "k-1") == 4


async def test_a_remembered_key_that_expired_is_claimed_afresh(
    client: httpx.AsyncClient,
    container: Container,
    merchant: RegisteredClient,
    auth: dict[str, str],
    clock: FrozenClock,
) -> None:
    created = await _post(client, auth, "/v1/payments", PAYOUT, "k-2")
    replay = await _post(client, auth, "/v1/payments", PAYOUT, "k-2")
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(container.get(IdempotencyService).replay_memo) == 1
    clock.advance(hours=24, seconds=1)
    auth = await bearer(client, merchant)  # the first token has expired too
    after = await _post(client, auth, "/v1/payments", PAYOUT, "k-2")
    assert after.status_code == 201, after.text
    assert "idempotent-replayed" not in after.headers
    assert after.json()["id"] != created.json()["id"]
    assert await _payments(container) == 2
    assert len(container.get(IdempotencyService).replay_memo) == 0


async def test_a_remembered_answer_that_cannot_be_opened_is_read_again(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    store_calls: Counter[str],
) -> None:
    created = await _post(client, auth, "/v1/payments", PAYOUT, "k-3")
    await _post(client, auth, "/v1/payments", PAYOUT, "k-3")  # now remembered
    real_unseal = DataProtectionService.unseal
    failures = 0

    async def unseal(self: DataProtectionService, *args: Any, **kw: Any) -> str:
        nonlocal failures
        if not failures:
            failures += 1  # the data key's service out of reach for a moment
            raise RuntimeError("master key service unreachable")
        return await real_unseal(self, *args, **kw)

    monkeypatch.setattr(DataProtectionService, "unseal", unseal)
    store_calls.clear()
    again = await _post(client, auth, "/v1/payments", PAYOUT, "k-3")
    assert failures == 1
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == created.json()
    assert sum(store_calls.values()) >= 1  # answered from the store, not from memory
    assert await _payments(container) == 1


async def test_a_refusal_replays_from_memory_as_from_the_store(
    client: httpx.AsyncClient, auth: dict[str, str], store_calls: Counter[str]
) -> None:
    too_much = PAYOUT | {"amount": 90_000_000}
    refused = await _post(client, auth, "/v1/payments", too_much, "k-4")
    assert refused.status_code == 422 and refused.json()["code"] == "insufficient_funds"
    first = await _post(client, auth, "/v1/payments", too_much, "k-4")
    store_calls.clear()
    again = await _post(client, auth, "/v1/payments", too_much, "k-4")
    assert store_calls == Counter()
    for replay in (first, again):
        assert replay.status_code == 422
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.headers["content-type"] == refused.headers["content-type"]
        assert replay.content == first.content
        assert replay.json() == refused.json()


async def test_a_remembered_key_belongs_to_its_client_and_its_first_request(
    client: httpx.AsyncClient, container: Container, auth: dict[str, str]
) -> None:
    created = await _post(client, auth, "/v1/payments", PAYOUT, "k-5")
    await _post(client, auth, "/v1/payments", PAYOUT, "k-5")  # now remembered
    # The same key on another path: refused, naming the first request.
    other_path = await _post(client, auth, "/v1/customers", CUSTOMER, "k-5")
    assert other_path.status_code == 422, other_path.text
    assert other_path.json()["code"] == "idempotency_key_reused"
    assert "POST /v1/payments" in other_path.json()["detail"]
    # Another client's same key is its own.
    stranger = await bearer(client, await funded_merchant(container, "Another shop"))
    theirs = await _post(client, stranger, "/v1/payments", PAYOUT, "k-5")
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != created.json()["id"]
    assert await _payments(container) == 2


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose body the lean way in validated (platform/http/lean_routes.py)."""
    seen: list[str] = []
    real = lean_routes._endpoint

    async def counted(lean: Any, request: Any, *args: Any) -> Any:
        seen.append(request.url.path)
        return await real(lean, request, *args)

    monkeypatch.setattr(lean_routes, "_endpoint", counted)
    return seen


async def test_an_exact_retry_of_a_remembered_payout_is_answered_before_validation(
    client: httpx.AsyncClient, auth: dict[str, str], validations: list[str]
) -> None:
    """The retry of a request that passed validation and completed is the same request:
    its body is not validated again. Anything less than that retry is validated first,
    as before: a reused key with an invalid body gets the validation error."""
    created = await _post(client, auth, "/v1/payments", PAYOUT, "k-6")
    first = await _post(client, auth, "/v1/payments", PAYOUT, "k-6")  # from the store
    assert validations == ["/v1/payments", "/v1/payments"]
    validations.clear()
    # The same JSON written another way is the same request (canonical fingerprint).
    spaced = b'{"currency": "PKR", "amount": 150000, "creditor": {"name": "A K", "iban": "%s"}}'
    again = await client.post(
        "/v1/payments",
        content=spaced % IBAN.encode(),
        headers=auth | {"Idempotency-Key": '"k-6"', "Content-Type": "application/json"},
    )
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content and again.json() == created.json()
    assert validations == []
    # Another body under the key: validated first. Valid: refused as reused; invalid:
    # the validation error, exactly what the route answered before.
    reused = await _post(client, auth, "/v1/payments", PAYOUT | {"amount": 1}, "k-6")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    broken = await _post(client, auth, "/v1/payments", PAYOUT | {"amount": "ten"}, "k-6")
    assert broken.status_code == 422 and broken.json()["code"] == "validation_error"
    assert validations == ["/v1/payments", "/v1/payments"]
    # A key the retry spells so that it is no key at all: the route's own refusal.
    validations.clear()
    empty = await _post(client, auth, "/v1/payments", PAYOUT, " ")
    assert empty.status_code == 400 and empty.json()["code"] == "idempotency_key_missing"
    assert validations == ["/v1/payments"]


async def test_before_validation_the_caller_is_still_checked_and_limited(
    client: httpx.AsyncClient, auth: dict[str, str], validations: list[str]
) -> None:
    await _post(client, auth, "/v1/payments", PAYOUT, "k-7")
    await _post(client, auth, "/v1/payments", PAYOUT, "k-7")  # now remembered
    validations.clear()
    anonymous = await client.post("/v1/payments", json=PAYOUT, headers={"Idempotency-Key": "k-7"})
    assert anonymous.status_code == 401
    wrong = await _post(
        client, {"Authorization": "Bearer not-a-token"}, "/v1/payments", PAYOUT, "k-7"
    )
    assert wrong.status_code == 401
    replay = await _post(client, auth, "/v1/payments", PAYOUT, "k-7")
    assert replay.headers["idempotent-replayed"] == "true"
    assert "ratelimit" in {name.lower() for name in replay.headers}
    assert validations == []


async def test_a_remembered_key_spelt_past_the_headers_length_is_refused_as_ever(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """The same key as a quoted string whose escapes take the header past its 300
    characters: the header is refused before anything else, on every way in."""
    key = "x" + '"' * 150 + "x"
    assert (await _post(client, auth, "/v1/payments", PAYOUT, key)).status_code == 201
    remembered = await _post(client, auth, "/v1/payments", PAYOUT, key)
    assert remembered.headers["idempotent-replayed"] == "true"
    quoted = '"x' + '\\"' * 150 + 'x"'
    assert len(quoted) > 300
    refused = await _post(client, auth, "/v1/payments", PAYOUT, quoted)
    assert refused.status_code == 422 and refused.json()["code"] == "validation_error"


async def test_in_a_storm_of_retries_a_key_not_remembered_is_read_before_validation(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    store_calls: Counter[str],
    validations: list[str],
) -> None:
    """Once a retry of a key this process did not remember turned out completed, the next
    such retry is read from the store before validation and answered from it: no
    validation, no batch, one read."""
    service = container.get(IdempotencyService)
    created = {}
    for key in ("s-1", "s-2", "s-3"):
        created[key] = await _post(client, auth, "/v1/payments", PAYOUT, key)
        assert created[key].status_code == 201
    assert not service.expects_retries
    validations.clear()
    first = await _post(client, auth, "/v1/payments", PAYOUT, "s-1")  # the usual way
    assert first.headers["idempotent-replayed"] == "true"
    assert validations == ["/v1/payments"]
    assert service.expects_retries
    validations.clear()
    store_calls.clear()
    for key in ("s-2", "s-3"):
        again = await _post(client, auth, "/v1/payments", PAYOUT, key)
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.json() == created[key].json()
    assert validations == []
    assert store_calls == Counter({"get": 2})
    assert await _payments(container) == 3
    assert await _replays(container, "s-3") == 1


async def test_a_new_key_read_before_validation_is_not_read_again_and_ends_the_storm(
    client: httpx.AsyncClient,
    container: Container,
    auth: dict[str, str],
    store_calls: Counter[str],
    validations: list[str],
) -> None:
    service = container.get(IdempotencyService)
    await _post(client, auth, "/v1/payments", PAYOUT, "s-1")
    await _post(client, auth, "/v1/payments", PAYOUT, "s-1")  # a retry: expect more
    assert service.expects_retries
    validations.clear()
    store_calls.clear()
    new = await _post(client, auth, "/v1/payments", PAYOUT, "s-new")
    assert new.status_code == 201 and "idempotent-replayed" not in new.headers
    assert validations == ["/v1/payments"]
    # Read once, before validation; the route's own read (SQLite's) was skipped.
    assert store_calls["get"] == 1
    assert not service.expects_retries
    store_calls.clear()
    # The storm over: a new key is read only where the route always reads it (SQLite).
    assert (await _post(client, auth, "/v1/payments", PAYOUT, "s-new-2")).status_code == 201
    assert store_calls["get"] == (1 if container.db.is_sqlite else 0)
    assert await _payments(container) == 3


async def test_in_a_storm_a_key_reused_for_another_body_is_still_validated_first(
    client: httpx.AsyncClient, auth: dict[str, str], validations: list[str]
) -> None:
    for key in ("s-1", "s-2"):
        await _post(client, auth, "/v1/payments", PAYOUT, key)
    await _post(client, auth, "/v1/payments", PAYOUT, "s-1")  # a retry: expect more
    validations.clear()
    broken = await _post(client, auth, "/v1/payments", PAYOUT | {"amount": "ten"}, "s-2")
    assert broken.status_code == 422 and broken.json()["code"] == "validation_error"
    reused = await _post(client, auth, "/v1/payments", PAYOUT | {"amount": 1}, "s-2")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert validations == ["/v1/payments", "/v1/payments"]
