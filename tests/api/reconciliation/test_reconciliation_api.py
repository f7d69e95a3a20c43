"""Reconciliation as operations meets it, one behaviour a test: a faulty or unsafe file
refused whole with nothing applied, imports that are idempotent and overlap safely, a
half that arrives late clearing its break, each kind of break with its cause, each
resolution with its audit record and a clean ledger, who may do what, the exceptions
queue as CSV, and the two CSV sources matching by end-to-end id."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tests.api.identity.test_operator_api import audit_records, audit_rows, login, problem_code
from tests.support.oauth import ACTOR, RegisteredClient, fetch_token, make_client
from tests.support.operators import NewClient, create_account
from tests.support.settled_payments import settled_collection, settled_payout
from tests.support.statements import Entry, camt053

from amanat.auth.domain import Caller
from amanat.bootstrap import Container
from amanat.kernel.clock import FrozenClock
from amanat.kernel.ids import new_id
from amanat.platform.audit.domain import SYSTEM
from amanat.reconciliation.services.reconciliation import ReconciliationService

DAY = "2026-11-24"  # a Tuesday: the payments settle on it (Asia/Karachi)
NEXT_DAY = "2026-11-25"  # the bank's statement of the day after
LATER_DAY = "2026-11-26"
MORNING = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 11:00 in Karachi
IMPORTS = "/operator/v1/reconciliation/imports"
BREAKS = "/operator/v1/reconciliation/breaks"
MATCHES = "/operator/v1/reconciliation/matches"
TOP_UP = 1_000_000


@pytest.fixture(autouse=True)
def _morning(clock: FrozenClock) -> None:
    clock.set(MORNING)


# -- helpers ------------------------------------------------------------------------------


class Shop:
    """A merchant with money on its balance and a token to spend it."""

    def __init__(self, registered: RegisteredClient, auth: dict[str, str]) -> None:
        self.registered = registered
        self.auth = auth
        self.made = 0

    @property
    def partner_id(self) -> str:
        return self.registered.partner.id


async def _shop(client: httpx.AsyncClient, container: Container, name: str = "Shop") -> Shop:
    registered = await make_client(container, name=name)
    await container.payments.top_up(Caller(registered.partner.id, None, ACTOR), TOP_UP)
    token = await fetch_token(client, registered)
    return Shop(registered, {"Authorization": f"Bearer {token['access_token']}"})


async def _collection(
    client: httpx.AsyncClient, container: Container, shop: Shop, amount: int
) -> str:
    shop.made += 1
    return await settled_collection(client, container, shop.auth, amount, shop.made)


async def _payout(client: httpx.AsyncClient, container: Container, shop: Shop, amount: int) -> str:
    shop.made += 1
    return await settled_payout(client, container, shop.auth, amount, shop.made)


def _credit(reference: str, payment_id: str, amount: int, booked: str = NEXT_DAY) -> Entry:
    return Entry(reference, "CRDT", amount, booked, DAY, [(payment_id, amount)])


def _debit(reference: str, payment_id: str, amount: int, booked: str = NEXT_DAY) -> Entry:
    return Entry(reference, "DBIT", amount, booked, DAY, [(payment_id, amount)])


async def _anchor(
    client: httpx.AsyncClient, container: Container, shop: Shop, booked: str = NEXT_DAY
) -> Entry:
    """An entry for a payment of its own, reported as made: a statement that has it covers
    its dates (a statement with no entry covers no date)."""
    payment_id = await _collection(client, container, shop, 1_000)
    return _credit(f"ANCHOR-{payment_id}", payment_id, 1_000, booked=booked)


async def _operations(client: httpx.AsyncClient, container: Container) -> str:
    account = await create_account(container, "operations")
    return await login(client, container, account)


async def _import(
    client: httpx.AsyncClient,
    csrf: str,
    body: bytes,
    *,
    source: str = "bank_statement",
    content_type: str = "application/xml",
    file_name: str = "statement.xml",
) -> httpx.Response:
    return await client.post(
        IMPORTS,
        params={"source": source, "file_name": file_name},
        content=body,
        headers={"X-CSRF-Token": csrf, "Content-Type": content_type},
    )


async def _imported(client: httpx.AsyncClient, csrf: str, body: bytes, **kw: Any) -> dict[str, Any]:
    response = await _import(client, csrf, body, **kw)
    assert response.status_code == 201, response.text
    summary: dict[str, Any] = response.json()
    return summary


async def _breaks(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(BREAKS, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _imports(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(IMPORTS)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _matches(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(MATCHES, params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def _resolve(
    client: httpx.AsyncClient, csrf: str, break_id: str, resolution: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"{BREAKS}/{break_id}/resolve",
        json={"resolution": resolution, "reason": body.pop("reason", "Checked with the bank")}
        | body,
        headers={"X-CSRF-Token": csrf},
    )


async def _available(client: httpx.AsyncClient, shop: Shop) -> int:
    response = await client.get("/v1/balance", headers=shop.auth)
    assert response.status_code == 200, response.text
    available: int = response.json()["available"]
    return available


async def _ledger_is_clean(container: Container) -> None:
    async with container.transactions.read() as tx:
        assert await tx.ledger.check() == []


def _unknown_payment_id() -> str:
    return new_id("payment")  # well-formed, and amanat never made it


# -- a file is refused whole --------------------------------------------------------------


async def test_a_camt_file_with_faults_is_refused_whole_with_every_fault_located(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    paid_in = await _collection(client, container, shop, 50_000)
    paid_out = await _payout(client, container, shop, 20_000)
    csrf = await _operations(client, container)
    good = camt053(
        "STMT-1",
        NEXT_DAY,
        [_credit("E-1", paid_in, 50_000), _debit("E-2", paid_out, 20_000)],
    )
    # The first entry's amount (not its detail's) is no amount; the second says neither
    # credit nor debit.
    faulty = good.replace(b'<Amt Ccy="PKR">500.00</Amt>', b'<Amt Ccy="PKR">5OO.00</Amt>', 1)
    faulty = faulty.replace(b"<CdtDbtInd>DBIT</CdtDbtInd>", b"<CdtDbtInd>DEBIT</CdtDbtInd>", 1)
    assert faulty.count(b"5OO.00") == 1 and faulty.count(b">DEBIT<") == 1

    refused = await _import(client, csrf, faulty)

    assert refused.status_code == 422 and problem_code(refused) == "statement_rejected"
    errors = refused.json()["errors"]
    pointers = [e["pointer"] for e in errors]
    assert len(errors) == 2, errors
    assert re.fullmatch(r"line \d+, Stmt\[1\]/Ntry\[1\]/Amt", pointers[0]), pointers
    assert re.fullmatch(r"line \d+, Stmt\[1\]/Ntry\[2\]/CdtDbtInd", pointers[1]), pointers
    assert all(e["message"] for e in errors)
    # Nothing of it was applied: no import, no record matched, no break.
    assert await _imports(client) == []
    assert await _breaks(client, status="open") == []
    assert await _breaks(client, status="resolved") == []
    assert await _matches(client) == []
    # ... and nothing of it remembered: the corrected file imports in full.
    fixed = await _imported(client, csrf, good)
    assert fixed["records"] == 2 and fixed["matched"] == 2 and fixed["breaks_opened"] == 0


async def test_an_unknown_source_is_refused_and_nothing_imported(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 10_000)
    csrf = await _operations(client, container)
    statement = camt053("STMT-1", NEXT_DAY, [_credit("E-1", payment_id, 10_000)])

    refused = await _import(client, csrf, statement, source="swift_mt940")

    assert refused.status_code == 422, refused.text
    assert await _imports(client) == []
    assert await _matches(client) == []


@pytest.mark.parametrize(
    "prologue",
    [
        '<!DOCTYPE Document [<!ENTITY ccy "PKR">]>',
        '<!DOCTYPE Document [<!ENTITY ccy SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/camt.dtd">',
        '<!DOCTYPE Document [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY ccy "&b;&b;&b;&b;&b;&b;&b;&b;">]>',
    ],
    ids=["internal-entity", "external-entity", "external-dtd", "entity-expansion"],
)
async def test_an_xml_with_a_doctype_or_entity_is_refused_and_nothing_imported(
    client: httpx.AsyncClient, container: Container, prologue: str
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 10_000)
    csrf = await _operations(client, container)
    statement = camt053("STMT-1", NEXT_DAY, [_credit("E-1", payment_id, 10_000)])
    declaration, rest = statement.split(b"\n", 1)
    if "ccy" in prologue:  # the entity is used where the statement names its currency
        rest = rest.replace(b"<Ccy>PKR</Ccy>", b"<Ccy>&ccy;</Ccy>")
    hostile = declaration + b"\n" + prologue.encode() + b"\n" + rest

    refused = await _import(client, csrf, hostile)

    assert refused.status_code == 422 and problem_code(refused) == "statement_rejected"
    assert "DOCTYPE" in str(refused.json()["errors"])
    assert await _imports(client) == []
    assert await _matches(client) == []
    assert await _breaks(client) == []


# -- idempotency --------------------------------------------------------------------------


async def test_the_same_file_twice_changes_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    reported = await _collection(client, container, shop, 30_000)
    missing = await _collection(client, container, shop, 40_000)
    csrf = await _operations(client, container)
    statement = camt053("STMT-1", NEXT_DAY, [_credit("E-1", reported, 30_000)])
    first = await _imported(client, csrf, statement)
    assert first["matched"] == 1 and first["breaks_opened"] == 1
    breaks_before = await _breaks(client)
    matches_before = await _matches(client)

    again = await _import(client, csrf, statement, file_name="renamed.xml")

    assert again.status_code == 200, again.text
    body = again.json()
    assert body["already_imported"] is True and body["id"] == first["id"]
    assert body["open_breaks"] == {"unmatched_internal": 1}
    assert [i["id"] for i in await _imports(client)] == [first["id"]]
    assert await _matches(client) == matches_before
    after = await _breaks(client)
    assert [(b["id"], b["payment_id"]) for b in after] == [
        (b["id"], b["payment_id"]) for b in breaks_before
    ]
    assert after[0]["payment_id"] == missing
    (imported,) = await audit_rows(container, "reconciliation.imported")
    assert imported["target_id"] == first["id"]


async def test_an_overlapping_statement_adds_only_the_new_record(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    first_payment = await _collection(client, container, shop, 30_000)
    second_payment = await _payout(client, container, shop, 12_000)
    csrf = await _operations(client, container)
    old_entry = _credit("E-1", first_payment, 30_000)
    await _imported(client, csrf, camt053("STMT-1", NEXT_DAY, [old_entry]))

    overlapping = camt053(
        "STMT-1-REISSUED", NEXT_DAY, [old_entry, _debit("E-2", second_payment, 12_000)]
    )
    summary = await _imported(client, csrf, overlapping)

    assert summary["records"] == 2 and summary["new_records"] == 1
    assert summary["matched"] == 1  # only the new one: the old one was matched before
    assert summary["open_breaks"] == {}
    assert await _breaks(client) == []
    matched = {a["payment_id"] for m in await _matches(client) for a in m["allocations"]}
    assert matched == {first_payment, second_payment}
    assert len(await _imports(client)) == 2


# -- a half that arrives late ---------------------------------------------------------------


async def test_a_payment_reported_in_a_later_statement_clears_its_break(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    on_time = await _collection(client, container, shop, 25_000)
    late = await _collection(client, container, shop, 35_000)
    csrf = await _operations(client, container)
    first = await _imported(
        client, csrf, camt053("STMT-1", NEXT_DAY, [_credit("E-1", on_time, 25_000)])
    )
    assert first["breaks_opened"] == 1
    (opened,) = await _breaks(client)
    assert opened["kind"] == "unmatched_internal" and opened["payment_id"] == late
    assert opened["partner_id"] == shop.partner_id and opened["suggested_cause"]

    second = await _imported(
        client,
        csrf,
        camt053("STMT-2", LATER_DAY, [_credit("E-2", late, 35_000, booked=LATER_DAY)]),
    )

    assert second["matched"] == 1 and second["breaks_cleared"] == 1
    assert second["breaks_opened"] == 0 and second["open_breaks"] == {}
    assert await _breaks(client) == []
    cleared = (await client.get(f"{BREAKS}/{opened['id']}")).json()
    assert cleared["status"] == "resolved" and cleared["resolution"] == "cleared"
    assert cleared["journal_id"] is None  # clearing posts nothing
    (found,) = await _matches(client, import_id=second["id"])
    assert found["outcome"] == "matched" and found["external_ids"] == ["E-2"]
    assert found["allocations"] == [{"payment_id": late, "amount": 35_000}]
    await _ledger_is_clean(container)


async def test_a_record_that_arrives_before_its_payment_settles_matches_at_the_rematch(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    anchor = await _anchor(client, container, shop)
    shop.made += 1
    created = await client.post(
        "/v1/payments",
        json={
            "type": "collection",
            "amount": 45_000,
            "currency": "PKR",
            "debtor": {"raast_id": "03001234567", "name": "Bilal Ahmed"},
            "reference": "ORDER-EARLY",
        },
        headers=shop.auth | {"Idempotency-Key": "early"},
    )
    assert created.status_code == 201, created.text
    early = created.json()["id"]  # the bank has it; amanat's callback has not come yet
    csrf = await _operations(client, container)
    first = await _imported(
        client, csrf, camt053("STMT-1", NEXT_DAY, [anchor, _credit("E-EARLY", early, 45_000)])
    )
    assert first["open_breaks"] == {"unmatched_external": 1}
    (opened,) = await _breaks(client)
    assert opened["external_id"] == "E-EARLY"

    await container.payments.apply_rail_status(early, "approved", sequence=3, cause="t")
    matched, breaks_opened, cleared = await container.get(ReconciliationService).rematch(
        SYSTEM, "bank_statement"
    )

    assert (matched, breaks_opened, cleared) == (1, 0, 1)
    assert await _breaks(client) == []
    resolved = (await client.get(f"{BREAKS}/{opened['id']}")).json()
    assert resolved["resolution"] == "cleared"
    (found,) = [m for m in await _matches(client) if m["external_ids"] == ["E-EARLY"]]
    assert found["import_id"] is None and found["created_by"] == SYSTEM.id
    assert found["allocations"] == [{"payment_id": early, "amount": 45_000}]
    assert await container.get(ReconciliationService).rematch(SYSTEM, "bank_statement") == (
        0,
        0,
        0,
    )


async def test_a_payment_is_not_a_break_until_a_statement_covers_its_date(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    unreported = await _collection(client, container, shop, 10_000)
    same_day = await _anchor(client, container, shop, booked=DAY)
    csrf = await _operations(client, container)

    # The bank's dates may be a day off: a statement of the settlement date itself is not
    # yet evidence that a payment is missing.
    early = await _imported(client, csrf, camt053("STMT-0", DAY, [same_day]))
    assert early["matched"] == 1 and early["breaks_opened"] == 0
    assert await _breaks(client) == []

    later = await _imported(
        client, csrf, camt053("STMT-1", NEXT_DAY, [await _anchor(client, container, shop)])
    )
    assert later["breaks_opened"] == 1
    (missing,) = await _breaks(client)
    assert missing["payment_id"] == unreported and missing["kind"] == "unmatched_internal"


async def test_a_payment_settled_in_two_parts_is_matched_when_the_second_arrives(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 100_000)
    csrf = await _operations(client, container)

    first = await _imported(
        client, csrf, camt053("STMT-1", NEXT_DAY, [_credit("PART-1", payment_id, 40_000)])
    )

    assert first["matched"] == 1 and first["open_breaks"] == {"unmatched_internal": 1}
    (part,) = await _matches(client, import_id=first["id"])
    assert part["outcome"] == "partially_matched"
    assert part["allocations"] == [{"payment_id": payment_id, "amount": 40_000}]
    (rest,) = await _breaks(client)
    assert rest["payment_id"] == payment_id and rest["amount"] == 60_000
    assert rest["suggested_cause"]

    second = await _imported(
        client,
        csrf,
        camt053("STMT-2", LATER_DAY, [_credit("PART-2", payment_id, 60_000, booked=LATER_DAY)]),
    )

    assert second["matched"] == 1 and second["breaks_cleared"] == 1
    assert second["open_breaks"] == {}
    (completed,) = await _matches(client, import_id=second["id"])
    assert completed["outcome"] == "matched"
    assert completed["allocations"] == [{"payment_id": payment_id, "amount": 60_000}]
    assert await _breaks(client) == []
    # A third report of a part is one too many.
    third = await _imported(
        client,
        csrf,
        camt053(
            "STMT-3", "2026-11-27", [_credit("PART-3", payment_id, 1_000, booked="2026-11-27")]
        ),
    )
    assert third["open_breaks"] == {"duplicate": 1}


async def test_importing_moves_no_merchant_money(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    reported = await _collection(client, container, shop, 10_000)
    await _collection(client, container, shop, 20_000)  # missing from the statement
    csrf = await _operations(client, container)
    before = await _available(client, shop)

    await _imported(
        client,
        csrf,
        camt053(
            "STMT-1",
            NEXT_DAY,
            [
                Entry("E-1", "CRDT", 10_000, NEXT_DAY, DAY, [(reported, 10_000)]),
                _credit("E-STRANGE", _unknown_payment_id(), 3_000),
            ],
        ),
    )

    assert len(await _breaks(client)) == 2
    assert await _available(client, shop) == before
    await _ledger_is_clean(container)


async def test_an_older_statement_imported_late_does_not_clear_a_break(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    missing = await _collection(client, container, shop, 10_000)
    csrf = await _operations(client, container)
    await _imported(
        client, csrf, camt053("STMT-1125", NEXT_DAY, [await _anchor(client, container, shop)])
    )
    (opened,) = await _breaks(client)
    assert opened["payment_id"] == missing

    # The bank re-sends the statement of the Monday before, which amanat never received.
    older = await _imported(
        client,
        csrf,
        camt053(
            "STMT-1123",
            "2026-11-23",
            [
                Entry(
                    "E-MONDAY",
                    "CRDT",
                    5_000,
                    "2026-11-23",
                    "2026-11-23",
                    [(_unknown_payment_id(), 5_000)],
                )
            ],
        ),
    )

    assert older["breaks_cleared"] == 0
    still = (await client.get(f"{BREAKS}/{opened['id']}")).json()
    assert still["status"] == "open", still


# -- each kind of break ----------------------------------------------------------------------


async def test_an_entry_for_a_payment_amanat_never_made_is_unmatched_external(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    known = await _collection(client, container, shop, 10_000)
    stranger = _unknown_payment_id()
    csrf = await _operations(client, container)

    summary = await _imported(
        client,
        csrf,
        camt053(
            "STMT-1",
            NEXT_DAY,
            [_credit("E-1", known, 10_000), _credit("E-STRANGE", stranger, 77_700)],
        ),
    )

    assert summary["matched"] == 1 and summary["open_breaks"] == {"unmatched_external": 1}
    (found,) = await _breaks(client)
    assert found["kind"] == "unmatched_external" and found["external_id"] == "E-STRANGE"
    assert found["payment_id"] is None and found["partner_id"] is None
    assert found["amount"] == 77_700 and found["currency"] == "PKR"
    assert stranger in found["suggested_cause"]


async def test_a_different_amount_booked_is_an_amount_mismatch_naming_both_values(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 10_000)
    csrf = await _operations(client, container)

    summary = await _imported(
        client,
        csrf,
        camt053(
            "STMT-1",
            NEXT_DAY,
            [Entry("E-1", "CRDT", 12_000, NEXT_DAY, DAY, [(payment_id, 12_000)])],
        ),
    )

    assert summary["matched"] == 0 and summary["open_breaks"] == {"amount_mismatch": 1}
    (found,) = await _breaks(client)
    assert found["kind"] == "amount_mismatch"
    assert found["payment_id"] == payment_id and found["external_id"] == "E-1"
    assert found["partner_id"] == shop.partner_id
    assert {"field": "amount", "ours": "10000", "theirs": "12000"} in found["differences"]
    assert found["suggested_cause"]


async def test_the_same_payment_in_two_entries_is_a_duplicate(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _payout(client, container, shop, 15_000)
    csrf = await _operations(client, container)

    summary = await _imported(
        client,
        csrf,
        camt053(
            "STMT-1",
            NEXT_DAY,
            [_debit("E-1", payment_id, 15_000), _debit("E-1-AGAIN", payment_id, 15_000)],
        ),
    )

    assert summary["matched"] == 1 and summary["open_breaks"] == {"duplicate": 1}
    (found,) = await _breaks(client)
    assert found["kind"] == "duplicate" and found["payment_id"] == payment_id
    assert found["external_id"] in {"E-1", "E-1-AGAIN"}
    assert found["amount"] == 15_000 and found["suggested_cause"]


async def test_a_payment_reported_again_in_a_later_statement_is_a_duplicate(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 15_000)
    csrf = await _operations(client, container)
    await _imported(client, csrf, camt053("STMT-1", NEXT_DAY, [_credit("E-1", payment_id, 15_000)]))

    summary = await _imported(
        client,
        csrf,
        camt053("STMT-2", LATER_DAY, [_credit("E-9", payment_id, 15_000, booked=LATER_DAY)]),
    )

    assert summary["open_breaks"] == {"duplicate": 1}
    (found,) = await _breaks(client)
    assert found["kind"] == "duplicate" and found["external_id"] == "E-9"
    assert found["payment_id"] == payment_id and found["suggested_cause"]


async def test_a_break_on_a_payment_tells_its_merchant(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 10_000)
    csrf = await _operations(client, container)
    anchor = await _anchor(client, container, shop)
    await _imported(client, csrf, camt053("STMT-1", NEXT_DAY, [anchor]))
    (opened,) = await _breaks(client)

    events = await client.get(
        "/v1/events", params={"type": "reconciliation.break_opened"}, headers=shop.auth
    )

    assert events.status_code == 200, events.text
    (event,) = events.json()["data"]
    assert event["data"]["object"]["id"] == opened["id"]
    assert event["data"]["object"]["payment_id"] == payment_id


# -- resolving ------------------------------------------------------------------------------


async def _audited(container: Container, break_id: str, resolution: str) -> dict[str, Any]:
    """The break's one audit record; its payload as the service wrote it."""
    rows = await audit_rows(container, "reconciliation.break_resolved")
    (row,) = [r for r in rows if r["target_id"] == break_id]
    assert row["actor_type"] == "operator" and row["actor_id"]
    (record,) = await audit_records(container, "reconciliation.break_resolved", break_id)
    assert record.payload["resolution"] == resolution
    return record.payload


async def test_a_manual_match_pairs_a_record_with_a_payment_and_clears_both_breaks(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 40_000)
    csrf = await _operations(client, container)
    # The bank garbled the end-to-end id: neither side finds the other.
    garbled = _unknown_payment_id()
    await _imported(
        client, csrf, camt053("STMT-1", NEXT_DAY, [_credit("E-GARBLED", garbled, 40_000)])
    )
    opened = {b["kind"]: b for b in await _breaks(client)}
    assert set(opened) == {"unmatched_internal", "unmatched_external"}
    record_break = opened["unmatched_external"]
    balance_before = await _available(client, shop)

    wrong = await _resolve(
        client, csrf, record_break["id"], "manual_match", counterpart=_unknown_payment_id()
    )
    assert wrong.status_code == 409 and problem_code(wrong) == "resolution_refused"
    resolved = await _resolve(
        client,
        csrf,
        record_break["id"],
        "manual_match",
        counterpart=payment_id,
        reason="Bank confirms E-GARBLED is this collection",
    )

    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved" and body["resolution"] == "manual_match"
    assert body["match_id"] and body["journal_id"] is None
    other = (await client.get(f"{BREAKS}/{opened['unmatched_internal']['id']}")).json()
    assert other["status"] == "resolved" and other["match_id"] == body["match_id"]
    assert await _breaks(client) == []
    (manual,) = [m for m in await _matches(client) if m["rule"] == "manual"]
    assert manual["external_ids"] == ["E-GARBLED"]
    assert manual["allocations"] == [{"payment_id": payment_id, "amount": 40_000}]
    assert await _available(client, shop) == balance_before  # nothing posted
    row = await _audited(container, record_break["id"], "manual_match")
    assert "E-GARBLED is this collection" in str(row)
    await _ledger_is_clean(container)
    # A later statement does not reopen either half.
    anchor = await _anchor(client, container, shop, booked=LATER_DAY)
    later = await _imported(client, csrf, camt053("STMT-2", LATER_DAY, [anchor]))
    assert later["matched"] == 1
    assert later["breaks_opened"] == 0 and await _breaks(client) == []


async def test_a_manual_match_from_the_payment_side_names_the_record(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    await _payout(client, container, shop, 22_000)
    csrf = await _operations(client, container)
    await _imported(
        client,
        csrf,
        camt053("STMT-1", NEXT_DAY, [_debit("E-GARBLED", _unknown_payment_id(), 22_000)]),
    )
    opened = {b["kind"]: b for b in await _breaks(client)}

    resolved = await _resolve(
        client,
        csrf,
        opened["unmatched_internal"]["id"],
        "manual_match",
        counterpart="E-GARBLED",
    )

    assert resolved.status_code == 200, resolved.text
    assert await _breaks(client) == []
    await _audited(container, opened["unmatched_internal"]["id"], "manual_match")
    await _ledger_is_clean(container)


async def test_an_adjustment_posts_the_difference_to_the_merchants_balance(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 10_000)
    csrf = await _operations(client, container)
    await _imported(
        client,
        csrf,
        camt053(
            "STMT-1",
            NEXT_DAY,
            [Entry("E-1", "CRDT", 12_000, NEXT_DAY, DAY, [(payment_id, 12_000)])],
        ),
    )
    (mismatch,) = await _breaks(client)
    before = await _available(client, shop)

    resolved = await _resolve(
        client, csrf, mismatch["id"], "adjustment", reason="Payer sent 20 more; merchant keeps it"
    )

    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["resolution"] == "adjustment" and body["journal_id"]
    assert await _available(client, shop) == before + 2_000
    row = await _audited(container, mismatch["id"], "adjustment")
    assert row["journal_id"] == body["journal_id"]
    assert row["charged_to"] == shop.partner_id
    assert await _breaks(client) == []
    await _ledger_is_clean(container)


async def test_an_adjustment_of_a_record_no_payment_explains_needs_a_partner(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    csrf = await _operations(client, container)
    await _imported(
        client,
        csrf,
        camt053("STMT-1", NEXT_DAY, [_credit("E-STRANGE", _unknown_payment_id(), 7_500)]),
    )
    (stranger,) = await _breaks(client)
    before = await _available(client, shop)

    refused = await _resolve(client, csrf, stranger["id"], "adjustment")

    assert refused.status_code == 409 and problem_code(refused) == "resolution_refused"
    assert (await client.get(f"{BREAKS}/{stranger['id']}")).json()["status"] == "open"
    assert await audit_rows(container, "reconciliation.break_resolved") == []
    assert await _available(client, shop) == before
    await _ledger_is_clean(container)

    resolved = await _resolve(
        client,
        csrf,
        stranger["id"],
        "adjustment",
        partner_id=shop.partner_id,
        reason="The shop's customer paid it outside amanat",
    )

    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["journal_id"]
    assert await _available(client, shop) == before + 7_500
    row = await _audited(container, stranger["id"], "adjustment")
    assert row["charged_to"] == shop.partner_id
    await _ledger_is_clean(container)


async def test_an_adjustment_is_audited_against_the_merchant_it_charged(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    other = await _shop(client, container, name="Other shop")
    payment_id = await _collection(client, container, shop, 10_000)
    csrf = await _operations(client, container)
    await _imported(
        client,
        csrf,
        camt053(
            "STMT-1",
            NEXT_DAY,
            [Entry("E-1", "CRDT", 12_000, NEXT_DAY, DAY, [(payment_id, 12_000)])],
        ),
    )
    (mismatch,) = await _breaks(client)
    before = await _available(client, shop)
    other_before = await _available(client, other)

    # Naming another merchant for a payment's break is refused, and changes nothing ...
    misnamed = await _resolve(
        client, csrf, mismatch["id"], "adjustment", partner_id=other.partner_id
    )
    assert misnamed.status_code == 409 and problem_code(misnamed) == "resolution_refused"
    assert await _available(client, shop) == before
    resolved = await _resolve(client, csrf, mismatch["id"], "adjustment")

    # ... the payment's merchant takes it (the docs: "the payment's") ...
    assert resolved.status_code == 200, resolved.text
    assert await _available(client, shop) == before + 2_000
    assert await _available(client, other) == other_before
    # ... and the audit chain says so.
    row = await _audited(container, mismatch["id"], "adjustment")
    assert row["charged_to"] == shop.partner_id


async def test_an_adjustment_to_a_partner_that_does_not_exist_is_refused(
    client: httpx.AsyncClient, container: Container
) -> None:
    csrf = await _operations(client, container)
    await _imported(
        client,
        csrf,
        camt053("STMT-1", NEXT_DAY, [_credit("E-STRANGE", _unknown_payment_id(), 7_500)]),
    )
    (stranger,) = await _breaks(client)

    refused = await _resolve(
        client, csrf, stranger["id"], "adjustment", partner_id=new_id("partner")
    )

    assert refused.status_code in (404, 409, 422), refused.text
    assert (await client.get(f"{BREAKS}/{stranger['id']}")).json()["status"] == "open"


async def test_a_debit_adjustment_never_takes_a_balance_below_zero(
    client: httpx.AsyncClient, container: Container
) -> None:
    registered = await make_client(container, name="Thin shop")  # no top-up
    token = await fetch_token(client, registered)
    shop = Shop(registered, {"Authorization": f"Bearer {token['access_token']}"})
    missing = await _collection(client, container, shop, 10_000)
    await _payout(client, container, shop, 9_000)  # 1,000 left
    csrf = await _operations(client, container)
    anchor = await _anchor(client, container, shop)
    await _imported(client, csrf, camt053("STMT-1", NEXT_DAY, [anchor]))
    opened = {b["payment_id"]: b for b in await _breaks(client)}
    assert missing in opened  # the bank never received it: take it back from the shop
    before = await _available(client, shop)
    assert before < 10_000

    refused = await _resolve(client, csrf, opened[missing]["id"], "adjustment")

    # insufficient_funds is 422 across the API (payments/problems.py); the route's own
    # docstring says 409, which is the mistake.
    assert refused.status_code == 422 and problem_code(refused) == "insufficient_funds"
    assert await _available(client, shop) == before
    assert (await client.get(f"{BREAKS}/{opened[missing]['id']}")).json()["status"] == "open"
    assert await audit_rows(container, "reconciliation.break_resolved") == []
    await _ledger_is_clean(container)


async def test_a_write_off_posts_the_difference_against_the_platform(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 9_900)
    csrf = await _operations(client, container)
    anchor = await _anchor(client, container, shop)
    await _imported(client, csrf, camt053("STMT-1", NEXT_DAY, [anchor]))
    (missing,) = await _breaks(client)
    assert missing["payment_id"] == payment_id
    before = await _available(client, shop)

    resolved = await _resolve(
        client, csrf, missing["id"], "write_off", reason="Payer's bank reversed it; absorbed"
    )

    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved" and body["resolution"] == "write_off"
    assert body["journal_id"] and body["reason"] == "Payer's bank reversed it; absorbed"
    assert await _available(client, shop) == before  # the platform absorbs it
    row = await _audited(container, missing["id"], "write_off")
    assert row["journal_id"] == body["journal_id"]
    assert "reversed it" in str(row)
    await _ledger_is_clean(container)
    again = await _resolve(client, csrf, missing["id"], "write_off")
    assert again.status_code == 409 and problem_code(again) == "break_already_resolved"
    # A later statement does not reopen it.
    anchor = await _anchor(client, container, shop, booked=LATER_DAY)
    later = await _imported(client, csrf, camt053("STMT-2", LATER_DAY, [anchor]))
    assert later["matched"] == 1
    assert later["breaks_opened"] == 0 and await _breaks(client) == []


async def test_a_write_off_of_a_duplicate_takes_the_repeat_back(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _payout(client, container, shop, 15_000)
    csrf = await _operations(client, container)
    await _imported(
        client,
        csrf,
        camt053(
            "STMT-1",
            NEXT_DAY,
            [_debit("E-1", payment_id, 15_000), _debit("E-1-AGAIN", payment_id, 15_000)],
        ),
    )
    (duplicate,) = await _breaks(client)

    resolved = await _resolve(client, csrf, duplicate["id"], "write_off")

    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["journal_id"]
    await _audited(container, duplicate["id"], "write_off")
    await _ledger_is_clean(container)


# -- who may ---------------------------------------------------------------------------------


async def test_an_auditor_reads_breaks_but_may_not_import(
    client: httpx.AsyncClient, container: Container, new_client: NewClient
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 10_000)
    csrf = await _operations(client, container)
    anchor = await _anchor(client, container, shop)
    await _imported(client, csrf, camt053("STMT-1", NEXT_DAY, [anchor]))
    (opened,) = await _breaks(client)
    statement = camt053("STMT-2", LATER_DAY, [_credit("E-1", payment_id, 10_000)])

    auditor = new_client()
    auditor_csrf = await login(auditor, container, await create_account(container, "auditor"))
    listed = await auditor.get(BREAKS)
    assert listed.status_code == 200 and [b["id"] for b in listed.json()["data"]] == [opened["id"]]
    assert (await auditor.get(f"{BREAKS}.csv")).status_code == 200
    assert (await auditor.get(IMPORTS)).status_code == 200
    refused = await _import(auditor, auditor_csrf, statement)
    assert refused.status_code == 403 and problem_code(refused) == "forbidden"
    resolve = await _resolve(auditor, auditor_csrf, opened["id"], "write_off")
    assert resolve.status_code == 403 and problem_code(resolve) == "forbidden"
    assert len(await _imports(client)) == 1

    stranger = new_client()
    for response in (
        await stranger.get(BREAKS),
        await stranger.get(IMPORTS),
        await _import(stranger, "no-session", statement),
    ):
        assert response.status_code == 401, response.text
    assert len(await _imports(client)) == 1


# -- the queue as CSV -------------------------------------------------------------------------


async def test_the_exceptions_queue_downloads_as_csv_one_row_per_open_break(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    missing = await _collection(client, container, shop, 10_000)
    mismatched = await _collection(client, container, shop, 20_000)
    csrf = await _operations(client, container)
    await _imported(
        client,
        csrf,
        camt053(
            "STMT-1",
            NEXT_DAY,
            [
                Entry("E-1", "CRDT", 21_000, NEXT_DAY, DAY, [(mismatched, 21_000)]),
                _credit("E-STRANGE", _unknown_payment_id(), 5_000),
            ],
        ),
    )
    opened = await _breaks(client)
    assert len(opened) == 3

    response = await client.get(f"{BREAKS}.csv")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["id"] for r in rows) == sorted(b["id"] for b in opened)
    by_kind = {r["kind"]: r for r in rows}
    assert set(by_kind) == {"unmatched_internal", "amount_mismatch", "unmatched_external"}
    assert by_kind["unmatched_internal"]["payment_id"] == missing
    assert by_kind["amount_mismatch"]["amount"] == "21000"
    assert "ours 20000, theirs 21000" in by_kind["amount_mismatch"]["differences"]
    assert all(r["status"] == "open" and r["suggested_cause"] for r in rows)

    await _resolve(client, csrf, by_kind["unmatched_internal"]["id"], "write_off")
    after = list(csv.DictReader(io.StringIO((await client.get(f"{BREAKS}.csv")).text)))
    assert len(after) == 2


# -- the CSV sources --------------------------------------------------------------------------


def _rail_report(rows: list[tuple[str, str, str, int]]) -> bytes:
    lines = ["transfer_id,end_to_end_id,direction,amount,currency,settled_at,settlement_date,"]
    lines[0] += "batch_id,fee"
    for transfer_id, e2e, direction, amount in rows:
        lines.append(
            f"{transfer_id},{e2e},{direction},{amount // 100}.{amount % 100:02d},PKR,"
            f"{DAY}T06:00:00.000Z,{DAY},,"
        )
    return ("\r\n".join(lines) + "\r\n").encode()


async def test_the_rails_settlement_report_imports_and_matches_by_end_to_end_id(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    paid_in = await _collection(client, container, shop, 150_000)
    paid_out = await _payout(client, container, shop, 25_050)
    csrf = await _operations(client, container)
    report = _rail_report(
        [
            ("RRN261124000001", paid_in, "credit", 150_000),
            ("RRN261124000002", paid_out, "debit", 25_050),
        ]
    )

    summary = await _imported(
        client,
        csrf,
        report,
        source="sandbox_rail",
        content_type="text/csv",
        file_name=f"settlement-{DAY}.csv",
    )

    assert summary["source"] == "sandbox_rail" and summary["format"] == "sandbox_rail"
    assert summary["records"] == 2 and summary["matched"] == 2
    assert summary["open_breaks"] == {}
    found = await _matches(client, source="sandbox_rail")
    assert {(m["rule"], tuple(m["external_ids"])) for m in found} == {
        ("end_to_end_id", ("RRN261124000001",)),
        ("end_to_end_id", ("RRN261124000002",)),
    }
    assert {a["payment_id"]: a["amount"] for m in found for a in m["allocations"]} == {
        paid_in: 150_000,
        paid_out: 25_050,
    }
    # Each source is reconciled on its own: the bank still owes its confirmation.
    anchor = await _anchor(client, container, shop)
    bank = await _imported(client, csrf, camt053("STMT-1", NEXT_DAY, [anchor]))
    assert bank["open_breaks"] == {"unmatched_internal": 2}
    assert await _breaks(client, source="sandbox_rail") == []


async def test_the_rails_report_with_a_faulty_row_is_refused_whole(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    paid_in = await _collection(client, container, shop, 150_000)
    csrf = await _operations(client, container)
    report = _rail_report(
        [("RRN1", paid_in, "credit", 150_000), ("RRN2", _unknown_payment_id(), "sideways", 100)]
    )

    refused = await _import(client, csrf, report, source="sandbox_rail", content_type="text/csv")

    assert refused.status_code == 422 and problem_code(refused) == "statement_rejected"
    assert [e["pointer"] for e in refused.json()["errors"]] == ["line 3"]
    assert await _imports(client) == [] and await _matches(client) == []


async def test_a_bank_csv_statement_imports_and_matches_by_the_id_in_its_description(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    paid_in = await _collection(client, container, shop, 150_000)
    paid_out = await _payout(client, container, shop, 212_345)
    refunded_elsewhere = await _collection(client, container, shop, 9_000)
    csrf = await _operations(client, container)
    statement = (
        "Transaction Date,Value Date,Description,Reference,Debit,Credit,Balance\r\n"
        f'25/11/2026,24/11/2026,RAAST IN {paid_in} Bilal Ahmed,ORDER-1,,"1,500.00",'
        '"1,500.00"\r\n'
        f'25/11/2026,24/11/2026,RAAST OUT / {paid_out},PAYOUT-2,"2,123.45",,"-623.45"\r\n'
        "25/11/2026,25/11/2026,SMS ALERT CHARGES,,,,0.00\r\n"
    ).encode()
    # A row with neither a debit nor a credit is a fault: the whole file is refused.
    refused = await _import(
        client, csrf, statement, source="bank_csv", content_type="text/csv", file_name="b.csv"
    )
    assert refused.status_code == 422 and problem_code(refused) == "statement_rejected"
    assert [e["pointer"] for e in refused.json()["errors"]] == ["line 4"]
    assert await _imports(client) == []

    statement = statement.replace(b"SMS ALERT CHARGES,,,", b'SMS ALERT CHARGES,,"1.00",')
    summary = await _imported(
        client, csrf, statement, source="bank_csv", content_type="text/csv", file_name="b.csv"
    )

    assert summary["source"] == "bank_csv" and summary["records"] == 3
    assert summary["matched"] == 2
    assert summary["open_breaks"] == {"unmatched_internal": 1, "unmatched_external": 1}
    found = await _matches(client, source="bank_csv")
    assert {m["rule"] for m in found} == {"end_to_end_id"}
    assert {a["payment_id"]: a["amount"] for m in found for a in m["allocations"]} == {
        paid_in: 150_000,
        paid_out: 212_345,
    }
    breaks = {b["kind"]: b for b in await _breaks(client, source="bank_csv")}
    assert breaks["unmatched_internal"]["payment_id"] == refunded_elsewhere
    assert breaks["unmatched_external"]["amount"] == 100
    assert breaks["unmatched_external"]["external_id"].startswith("d:")
    # The same export again changes nothing.
    again = await _import(
        client, csrf, statement, source="bank_csv", content_type="text/csv", file_name="b.csv"
    )
    assert again.status_code == 200 and again.json()["already_imported"] is True


async def test_an_overlapping_bank_csv_export_adds_only_its_new_rows(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    first_payment = await _collection(client, container, shop, 150_000)
    second_payment = await _collection(client, container, shop, 50_000)
    csrf = await _operations(client, container)
    header = "Transaction Date,Value Date,Description,Reference,Debit,Credit,Balance\r\n"
    row_1 = f'25/11/2026,24/11/2026,RAAST IN {first_payment},,,"1,500.00","1,500.00"\r\n'
    row_2 = f'25/11/2026,24/11/2026,RAAST IN {second_payment},,,500.00,"2,000.00"\r\n'
    await _imported(
        client, csrf, (header + row_1).encode(), source="bank_csv", content_type="text/csv"
    )

    summary = await _imported(
        client,
        csrf,
        (header + row_1 + row_2).encode(),
        source="bank_csv",
        content_type="text/csv",
    )

    assert summary["records"] == 2 and summary["new_records"] == 1
    assert summary["matched"] == 1 and summary["open_breaks"] == {}
    matched = {
        a["payment_id"] for m in await _matches(client, source="bank_csv") for a in m["allocations"]
    }
    assert matched == {first_payment, second_payment}


# -- what a file may not carry, and what a duplicate may be -----------------------------------


async def test_a_file_in_another_currency_a_wild_date_or_an_over_long_id_is_refused_whole(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 50_000)
    csrf = await _operations(client, container)
    header = "transfer_id,end_to_end_id,direction,amount,currency,settled_at,settlement_date,"
    rows = [
        header + "batch_id,fee",
        f"T1,{payment_id},credit,1000.00,USD,{DAY}T06:00:00.000Z,{DAY},,",
        f"T2,{payment_id},credit,500.00,PKR,2099-12-31T06:00:00.000Z,2099-12-31,,",
        f"T3,{'E' * 80},credit,500.00,PKR,{DAY}T06:00:00.000Z,{DAY},,",
    ]
    refused = await _import(
        client,
        csrf,
        ("\r\n".join(rows) + "\r\n").encode(),
        source="sandbox_rail",
        content_type="text/csv",
    )
    assert refused.status_code == 422 and problem_code(refused) == "statement_rejected"
    pointers = [e["pointer"] for e in refused.json()["errors"]]
    assert pointers == ["line 2", "line 3", "line 4"], refused.json()["errors"]
    assert await _imports(client) == [] and await _breaks(client) == []
    await _ledger_is_clean(container)


async def test_an_over_long_transfer_id_is_kept_by_its_digest(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _collection(client, container, shop, 50_000)
    csrf = await _operations(client, container)
    report = _rail_report([("T" * 150, payment_id, "credit", 50_000)])
    summary = await _imported(client, csrf, report, source="sandbox_rail", content_type="text/csv")
    assert summary["matched"] == 1
    (match,) = await _matches(client)
    assert match["external_ids"][0].startswith("h:") and len(match["external_ids"][0]) == 66


async def test_a_duplicate_report_can_be_dismissed_and_nothing_else_can(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _payout(client, container, shop, 15_000)
    missing = await _payout(client, container, shop, 7_000)
    csrf = await _operations(client, container)
    await _imported(
        client,
        csrf,
        camt053(
            "STMT-1",
            NEXT_DAY,
            [_debit("E-1", payment_id, 15_000), _debit("E-1-AGAIN", payment_id, 15_000)],
        ),
    )
    breaks = {b["kind"]: b for b in await _breaks(client)}
    assert set(breaks) == {"duplicate", "unmatched_internal"}
    assert breaks["unmatched_internal"]["payment_id"] == missing
    refused = await _resolve(client, csrf, breaks["unmatched_internal"]["id"], "dismiss")
    assert refused.status_code == 409 and problem_code(refused) == "resolution_refused"
    before = await _available(client, shop)

    dismissed = await _resolve(
        client, csrf, breaks["duplicate"]["id"], "dismiss", reason="The bank's export repeats it"
    )

    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["resolution"] == "dismiss" and dismissed.json()["journal_id"] is None
    assert await _available(client, shop) == before
    row = await _audited(container, breaks["duplicate"]["id"], "dismiss")
    assert row["reason"] == "The bank's export repeats it"
    await _ledger_is_clean(container)


async def test_the_partner_hears_of_its_own_payment_only(
    client: httpx.AsyncClient, container: Container
) -> None:
    shop = await _shop(client, container)
    payment_id = await _payout(client, container, shop, 15_000)
    csrf = await _operations(client, container)
    await _imported(client, csrf, camt053("STMT-1", NEXT_DAY, [_debit("E-1", payment_id, 16_000)]))
    events = await client.get(
        "/v1/events", params={"type": "reconciliation.break_opened"}, headers=shop.auth
    )
    (event,) = events.json()["data"]
    told = event["data"]["object"]
    assert told["payment_id"] == payment_id and told["amount"] == 15_000
    assert told["kind"] == "amount_mismatch" and told["explanation"]
    assert "16" not in str(told["explanation"]) and "E-1" not in str(told)
